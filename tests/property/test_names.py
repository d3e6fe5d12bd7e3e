"""Any Unicode host, binary or topic: refused by the model with ``InvalidName`` naming
the field, or a service with it joins, reads up, leaves and reads down on every
driver, against the real servers."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sg import Member, ServiceGroup
from sg.errors import InvalidName
from sg.model import validate_name
from tests.support.portal import portal

# Bias towards what breaks key and path syntaxes: separators, dots, percent signs,
# white space, controls, surrogates, characters above U+FFFF, long strings.
_TRICKY = st.sampled_from(["/", ".", "..", ":", "%", "%2F", " ", "\x00", "\ud800", "\U0001f680", "\ufffe"])
# Printable text of any plane (what the model accepts, leading and trailing white space
# aside), so that most examples reach the servers; plus anything at all.
_PRINTABLE = st.characters(exclude_categories=("Cc", "Cs", "Zl", "Zp"))
NAMES = st.one_of(
    st.text(_PRINTABLE, min_size=1, max_size=12),
    st.lists(st.one_of(_TRICKY, _PRINTABLE), min_size=1, max_size=12).map("".join),
    st.text(_PRINTABLE, min_size=240, max_size=255),
    st.text(max_size=8),
    st.text(min_size=250, max_size=260),
)
FIELDS = ("host", "binary", "topic")


def first_invalid(values: dict[str, str]) -> str | None:
    for name in FIELDS:
        try:
            validate_name(name, values[name])
        except InvalidName:
            return name
    return None


async def round_trip(group: ServiceGroup, member: Member) -> None:
    assert await group.heartbeat(member).beat_once(), member
    status = await group.get(member.host, member.binary)
    assert (status.verdict.state, status.verdict.reason) == ("up", "ok"), (member, status.verdict)
    assert (status.service.host, status.service.binary, status.service.topic) == (
        member.host,
        member.binary,
        member.topic,
    )
    await group.leave(member)
    status = await group.get(member.host, member.binary)
    assert status.verdict.state == "down", (member, status.verdict)
    await group.delete(member.key, force=True)


@pytest.mark.parametrize("driver", ["db", "memcached", "zookeeper"])
def test_any_name_is_refused_naming_the_field_or_round_trips(
    tmp_path: Path, driver: str, request: pytest.FixtureRequest
) -> None:
    url = {
        "db": lambda: "db://",
        "memcached": lambda: request.getfixturevalue("sg_memcached_url"),
        "zookeeper": lambda: request.getfixturevalue("sg_zookeeper_url"),
    }[driver]()
    with portal() as p:
        group = ServiceGroup.from_urls(
            f"sqlite://{tmp_path}/names.db", url, report_interval=1.0, service_down_time=30.0
        )
        p.call(group.__aenter__)
        try:

            @settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
            @given(host=NAMES, binary=NAMES, topic=NAMES)
            def check(host: str, binary: str, topic: str) -> None:
                values = {"host": host, "binary": binary, "topic": topic}
                bad = first_invalid(values)
                refused: str | None = None
                try:
                    member = Member(host, binary, topic)
                except InvalidName as exc:
                    refused = exc.field
                assert refused == bad, values
                if refused is None:
                    p.call(round_trip, group, member)
                    joined.append(member)

            joined: list[Member] = []
            check()
            print(f"{driver}: {len(joined)} services (names valid) joined, read up, left, read down")
            # Not vacuous: a good share of the examples are acceptable names.
            assert len(joined) >= 20, len(joined)
        finally:
            p.call(group.aclose)
