"""The live status page in real headless Chromium (Debian's, driven by playwright's
Python API), over the real events endpoint and a real ServiceGroup (SQLite + db).

Set SG_UPDATE_SCREENSHOT=1 to write docs/img/status-page.png from the agent test.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from starlette.applications import Starlette

from sg.api.app import create_app
from sg.api.settings import ApiSettings
from sg.config import Settings
from sg.group import ServiceGroup
from sg.model import ServiceKey
from tests.support.interop import require_module, require_tool, serve
from tests.support.processes import agent, write_config

playwright_api = require_module("playwright.async_api", "playwright")
Browser = playwright_api.Browser
Page = playwright_api.Page
expect = playwright_api.expect

pytestmark = pytest.mark.slow

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "img" / "status-page.png"
CHROMIUM = "/usr/bin/chromium"
#: Debian's Chromium, quiet: no sandbox (root in a container), no GPU, no calls home.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
REPORT_INTERVAL = 0.2
DOWN_TIME = 1.0
#: Beyond service_down_time: the watch's poll (0.2 s), the event's trip, the page's
#: render and playwright's polling, on a loaded 2-core machine.
MARGIN = 2.0
TOKEN = "page-test-token-0123456789"
#: How often the events stream looks for changes other than the state, in these tests.
REFRESH = 1.0


def status_app(group: ServiceGroup, *, open_reads: bool) -> Starlette:
    """sg-api itself (``/``, ``/static/*`` and ``/v1/events`` from its route table)."""
    api = ApiSettings(tokens=(TOKEN,), open_reads=open_reads)
    return create_app(Settings(), api, group=group, event_options={"refresh": REFRESH})


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    executable = require_tool("chromium", CHROMIUM)
    async with playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS, headless=True)
        try:
            yield browser
        finally:
            await browser.close()


def row(page: Page, host: str, binary: str) -> playwright_api.Locator:
    return page.locator(f'#services tbody tr[data-host="{host}"][data-binary="{binary}"]')


async def texts(page: Page, selector: str) -> list[str]:
    return [t.strip() for t in await page.locator(selector).all_inner_texts()]


async def test_page_with_open_reads_counts_filters_and_follows_changes(tmp_path: Path) -> None:
    store = f"sqlite://{tmp_path}/services.db"
    async with ServiceGroup.from_urls(
        store, report_interval=REPORT_INTERVAL, service_down_time=DOWN_TIME
    ) as group:
        async with group.join("sg-scheduler", "scheduler", host="ctl-1"):
            pass  # left: reads down at once
        await group.set_disabled(ServiceKey("ctl-1", "sg-scheduler"), True, "maintenance")
        async with (
            group.join("sg-compute", "compute", host="node-1", version=7) as hb,
            group.join("sg-compute", "compute", host="node-2"),
            serve(status_app(group, open_reads=True)) as url,
            chromium() as browser,
        ):
            await hb.ready.wait()
            page = await browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            requested: list[str] = []
            page.on("request", lambda request: requested.append(request.url))
            loaded = await page.goto(url)
            assert loaded is not None
            assert "default-src 'self'" in (await loaded.all_headers())["content-security-policy"]
            await expect(page.locator("#conn")).to_have_attribute("data-conn", "live", timeout=10_000)
            assert await page.locator("#token-form").is_hidden()  # open_reads: no token asked
            await expect(row(page, "node-1", "sg-compute")).to_have_attribute(
                "data-state", "up", timeout=10_000
            )
            await expect(row(page, "node-2", "sg-compute")).to_have_attribute(
                "data-state", "up", timeout=10_000
            )

            node1 = row(page, "node-1", "sg-compute")
            assert await node1.locator("td.topic").inner_text() == "compute"
            assert await node1.locator("td.version").inner_text() == "7"
            assert await node1.locator("td.reason").inner_text() == "ok"
            ctl = row(page, "ctl-1", "sg-scheduler")
            assert await ctl.get_attribute("data-state") == "down"
            assert await ctl.locator("td.reason").inner_text() == "left"
            assert await ctl.locator(".flag.disabled").get_attribute("title") == "maintenance"
            assert await page.locator("#count-all").inner_text() == "3"
            assert await page.locator("#count-up").inner_text() == "2"
            assert await page.locator("#count-down").inner_text() == "1"
            assert await page.locator("#count-unknown").inner_text() == "0"

            # Filters: by topic (counts follow it), by state (the table only).
            await page.select_option("#filter-topic", "scheduler")
            assert await texts(page, "#services tbody td.host") == ["ctl-1"]
            assert await page.locator("#count-all").inner_text() == "1"
            await page.select_option("#filter-topic", "")
            await page.select_option("#filter-state", "up")
            assert await texts(page, "#services tbody td.host") == ["node-1", "node-2"]
            await page.click('.count[data-state="down"]')
            assert await texts(page, "#services tbody td.host") == ["ctl-1"]
            await page.click('.count[data-state=""]')

            # A change arrives without a reload: force node-2 down.
            await page.evaluate("window.__sameDocument = true")
            await group.set_forced_down(ServiceKey("node-2", "sg-compute"), True)
            node2 = row(page, "node-2", "sg-compute")
            await expect(node2).to_have_attribute("data-state", "down", timeout=10_000)
            assert await node2.locator("td.reason").inner_text() == "forced_down"
            assert await node2.locator(".flag.forced").count() == 1
            assert await page.locator("#count-down").inner_text() == "2"
            assert await page.evaluate("window.__sameDocument") is True
            assert errors == []
            # Nothing fetched from elsewhere: the page, its two assets and the stream.
            assert all(u.startswith(url + "/") for u in requested), requested
            paths = {u.removeprefix(url) for u in requested}
            assert paths >= {"/", "/static/app.js", "/static/style.css", "/v1/events"}


async def test_page_with_a_token_turns_a_killed_agent_down_within_the_bound(tmp_path: Path) -> None:
    store = f"sqlite://{tmp_path}/services.db"
    victim = write_config(
        tmp_path / "victim.toml",
        store,
        report_interval=REPORT_INTERVAL,
        service_down_time=DOWN_TIME,
        services=(("node-1", "sg-compute", "compute"),),
    )
    survivor = write_config(
        tmp_path / "survivor.toml",
        store,
        report_interval=REPORT_INTERVAL,
        service_down_time=DOWN_TIME,
        services=(("node-2", "sg-compute", "compute"), ("ctl-1", "sg-scheduler", "scheduler")),
    )
    group = ServiceGroup.from_urls(store, report_interval=REPORT_INTERVAL, service_down_time=DOWN_TIME)
    async with group, serve(status_app(group, open_reads=False)) as url, chromium() as browser:
        with agent(victim, tmp_path / "victim.log") as proc, agent(survivor, tmp_path / "survivor.log"):
            page = await browser.new_page(viewport={"width": 1100, "height": 520})
            await page.goto(url)
            # No open_reads: the page asks for the token once, then keeps it for the tab.
            await expect(page.locator("#token-form")).to_be_visible(timeout=10_000)
            assert await page.locator("#conn").get_attribute("data-conn") == "token"
            await page.fill("#token", "wrong-token-000000000000")
            await page.click("#token-form button[type=submit]")
            await expect(page.locator("#token-why")).to_contain_text("refused", timeout=10_000)
            await page.fill("#token", TOKEN)
            await page.click("#token-form button[type=submit]")
            await expect(page.locator("#conn")).to_have_attribute("data-conn", "live", timeout=10_000)
            assert await page.evaluate("sessionStorage.getItem('sg-api-token')") == TOKEN

            node1 = row(page, "node-1", "sg-compute")
            for host, binary in (
                ("node-1", "sg-compute"),
                ("node-2", "sg-compute"),
                ("ctl-1", "sg-scheduler"),
            ):
                await expect(row(page, host, binary)).to_have_attribute("data-state", "up", timeout=20_000)
            await group.set_disabled(ServiceKey("node-2", "sg-compute"), True, "kernel upgrade")
            await page.evaluate("window.__sameDocument = true")

            proc.send_signal(signal.SIGKILL)
            killed = time.monotonic()
            await expect(node1).to_have_attribute(
                "data-state", "down", timeout=(DOWN_TIME + MARGIN + 10) * 1000
            )
            took = time.monotonic() - killed
            print(f"kill -9 to row down on the page: {took:.2f}s (bound {DOWN_TIME + MARGIN:g}s)")
            assert took <= DOWN_TIME + MARGIN, f"row turned down {took:.2f}s after kill -9"
            assert await node1.locator("td.reason").inner_text() == "stale"
            assert await page.evaluate("window.__sameDocument") is True  # no reload happened
            assert await row(page, "node-2", "sg-compute").get_attribute("data-state") == "up"
            assert await page.locator("#count-down").inner_text() == "1"
            assert await page.locator("#count-up").inner_text() == "2"
            # A disable changes no state: the stream's refresh brings it.
            await expect(row(page, "node-2", "sg-compute").locator(".flag.disabled")).to_have_count(
                1, timeout=(REFRESH + MARGIN) * 1000
            )
            shot = tmp_path / "status-page.png"
            await page.screenshot(path=str(shot), full_page=True)
            if os.environ.get("SG_UPDATE_SCREENSHOT"):
                SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
                SCREENSHOT.write_bytes(shot.read_bytes())


async def test_page_reconnects_after_a_server_restart_and_catches_up(tmp_path: Path) -> None:
    store = f"sqlite://{tmp_path}/services.db"
    group = ServiceGroup.from_urls(store, report_interval=REPORT_INTERVAL, service_down_time=DOWN_TIME)
    app = status_app(group, open_reads=True)
    async with group, group.join("sg-compute", "compute", host="node-1") as hb, chromium() as browser:
        await hb.ready.wait()
        page = await browser.new_page()
        node1 = row(page, "node-1", "sg-compute")
        async with serve(app) as url:
            await page.goto(url)
            await expect(node1).to_have_attribute("data-state", "up", timeout=10_000)
            await page.evaluate("window.__sameDocument = true")
        # sg-api is gone: the page says so, and a change happens meanwhile.
        await expect(page.locator("#conn")).to_have_attribute("data-conn", "reconnecting", timeout=10_000)
        await group.set_forced_down(ServiceKey("node-1", "sg-compute"), True)
        port = int(url.rsplit(":", 1)[1])
        async with serve(app, port=port):
            # Back within the page's backoff (at most 15 s); the fresh snapshot has the change.
            await expect(page.locator("#conn")).to_have_attribute("data-conn", "live", timeout=20_000)
            await expect(node1).to_have_attribute("data-state", "down", timeout=5_000)
            assert await node1.locator("td.reason").inner_text() == "forced_down"
            assert await page.evaluate("window.__sameDocument") is True
