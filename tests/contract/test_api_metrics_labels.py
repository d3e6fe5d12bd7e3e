"""sg-api's metric label sets are closed (issue 10, defect 5)."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from sg import ServiceGroup
from sg.api.metrics import METHODS
from sg.api.routes import ROUTES
from tests.support.api import AUTH, beat


def label_values(text: str, family: str, label: str) -> set[str]:
    families = [f for f in text_string_to_metric_families(text) if f.name == family]
    return {s.labels[label] for f in families for s in f.samples}


async def test_invented_methods_and_paths_do_not_grow_metrics(
    mem_client: httpx.AsyncClient, mem_group: ServiceGroup
) -> None:
    """5,000 requests with invented methods made /metrics 8 MB; the label sets are closed."""
    await beat(mem_group, "c1")

    async def scrape() -> str:
        r = await mem_client.get("/metrics", headers=AUTH)
        assert r.status_code == 200
        return r.text

    async def noise(start: int, count: int) -> None:
        for i in range(start, start + count):
            await mem_client.request(f"X{i}", f"/v1/services/nope{i}")
            await mem_client.get(f"/no/such/path/{i}")

    await noise(0, 20)
    await scrape()  # so the scrape's own series exist in the next one
    before = await scrape()
    await noise(20, 300)
    after = await scrape()
    methods = label_values(after, "sg_api_requests", "method")
    routes = label_values(after, "sg_api_requests", "route")
    assert methods <= METHODS | {"other"}, methods
    assert routes <= {r.path for r in ROUTES} | {"other"}, routes
    # The same series before and after 600 more invented requests: only counts changed.
    series = {line.split(" ")[0] for line in after.splitlines() if not line.startswith("#")}
    earlier = {line.split(" ")[0] for line in before.splitlines() if not line.startswith("#")}
    assert series == earlier, series ^ earlier
    assert len(after) < len(before) + 2048
