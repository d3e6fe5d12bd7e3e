"""Member keys and their placement: legal for memcached, distinct, stable under server changes."""

from __future__ import annotations

import itertools
from collections import Counter

import aiomcache
import pytest

from sg.drivers.memcached import MAX_RELATIVE_EXPIRY, member_ttl, parse_url
from sg.drivers.memcached.keys import MAX_KEY_BYTES, _weight, member_key, pick_server
from sg.errors import ConfigError
from sg.testing.memcached import MemcachedServer

#: Names chosen to break naive encodings: separators, escapes, white space and
#: control characters, unicode (incl. unicode white space and a lone surrogate), length.
HARD_NAMES = [
    "a",
    "a b",
    "a\nb",
    "a\r\nb",
    "a\tb",
    "a\x00b",
    "a\x7fb",
    "a\u0085b",
    "a\u00a0b",
    "a\u2028b",
    "a:b",
    "a%3Ab",
    "a%b",
    "a/b",
    "..",
    "",
    "h\u00f4te",
    "\u30db\u30b9\u30c8",
    "\U0001f600",
    "\ud800",
    "h" * 300,
    "h" * 299 + "i",
    "\u00e9" * 250,
]


def is_legal(key: bytes) -> bool:
    """What aiomcache (and memcached's text protocol) accept as a key."""
    try:
        aiomcache.Client("127.0.0.1")._validate_key(key)
    except aiomcache.ValidationException:
        return False
    return len(key) <= MAX_KEY_BYTES and all(0x21 <= b <= 0x7E for b in key)


def test_every_hard_name_gives_a_legal_key() -> None:
    for name in HARD_NAMES:
        for triple in ((name, "h", "b"), ("t", name, "b"), ("t", "h", name), (name, name, name)):
            key = member_key("sg", *triple)
            assert is_legal(key), (triple, key)
            assert key.startswith(b"sg:")


def test_keys_are_distinct_for_distinct_triples() -> None:
    triples = set(itertools.product(HARD_NAMES[:12], repeat=3)) | {
        # Pairs that collide if separators are not escaped or the split is ambiguous.
        ("t", "a:b", "c"),
        ("t", "a", "b:c"),
        ("t:a", "b", "c"),
        ("t", "a%3Ab", "c"),
        ("t", "a b", "c"),
        ("t", "a_b", "c"),
        ("t", "a+b", "c"),
        ("t", "h" * 300, "b"),
        ("t", "h" * 299 + "i", "b"),
        ("t", "h" * 300, "b "),
    }
    keys = {member_key("sg", *t) for t in triples}
    assert len(keys) == len(triples)


def test_long_names_are_hashed_and_short_ones_stay_readable() -> None:
    short = member_key("sg", "compute", "host-1", "sg-compute")
    assert short == b"sg:m:compute:host-1:sg-compute"
    long = member_key("sg", "compute", "h" * 300, "sg-compute")
    assert long.startswith(b"sg:h:")
    assert len(long) == len(b"sg:h:") + 64


def test_prefix_separates_groups_and_is_validated() -> None:
    assert member_key("a", "t", "h", "b") != member_key("b", "t", "h", "b")
    for bad in ("", "a b", "a:b", "x" * 65, "\u00e9"):
        with pytest.raises(ValueError, match="prefix"):
            member_key(bad, "t", "h", "b")


async def test_hard_keys_round_trip_through_a_real_server(sg_memcached: MemcachedServer) -> None:
    client = aiomcache.Client("127.0.0.1", sg_memcached.port)
    try:
        keys = [member_key("rt", "t", name, "b") for name in HARD_NAMES]
        for i, key in enumerate(keys):
            assert await client.set(key, str(i).encode(), exptime=60)
        values = await client.multi_get(*keys)
        assert values == tuple(str(i).encode() for i in range(len(keys)))
    finally:
        await client.close()


# -- placement ---------------------------------------------------------------------------

KEYS = [member_key("sg", "compute", f"host-{i}", "sg-compute") for i in range(3000)]


def placement(servers: list[str]) -> dict[bytes, str]:
    return {key: servers[pick_server(servers, key)] for key in KEYS}


def test_placement_ignores_server_order_and_is_balanced() -> None:
    servers = ["mc1:11211", "mc2:11211", "mc3:11211"]
    assert placement(servers) == placement(list(reversed(servers)))
    counts = Counter(placement(servers).values())
    assert all(800 < n < 1200 for n in counts.values()), counts


def test_adding_a_server_moves_only_keys_to_it() -> None:
    before = placement(["mc1:11211", "mc2:11211", "mc3:11211"])
    after = placement(["mc1:11211", "mc2:11211", "mc3:11211", "mc4:11211"])
    moved = {k for k in KEYS if before[k] != after[k]}
    assert moved
    assert all(after[k] == "mc4:11211" for k in moved)
    assert 500 < len(moved) < 1000  # about a quarter


def test_removing_a_server_moves_only_its_keys() -> None:
    before = placement(["mc1:11211", "mc2:11211", "mc3:11211"])
    after = placement(["mc1:11211", "mc3:11211"])
    for key in KEYS:
        if before[key] != "mc2:11211":
            assert after[key] == before[key]


# -- URL and TTL ----------------------------------------------------------------------------


def test_url_parsing() -> None:
    config = parse_url("memcached://MC1:11211,mc2,[::1]:11300/?prefix=nova&pool_size=4")
    assert config.servers == (("mc1", 11211), ("mc2", 11211), ("::1", 11300))
    assert config.server_names == ("mc1:11211", "mc2:11211", "[::1]:11300")
    assert (config.prefix, config.pool_size) == ("nova", 4)
    assert parse_url("memcached://mc1").prefix == "sg"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("memcached://", "empty server"),
        ("memcached://mc1,,mc2", "empty server"),
        ("memcached://mc1:0", "bad port"),
        ("memcached://mc1:99999", "bad port"),
        ("memcached://mc1:port", "bad port"),
        ("memcached://mc1,mc1:11211", "listed twice"),
        ("memcached://mc1/db", "servers and options only"),
        ("memcached://u:secret@mc1", "no user or password"),
        ("memcached://mc1?prefix=a:b", "prefix"),
        ("memcached://mc1?prefix=", "prefix"),
        ("memcached://mc1?pool_size=0", "pool_size"),
        ("memcached://mc1?pool_size=x", "pool_size"),
        ("memcached://mc1?timeout=3", "unknown option"),
        ("memcached://mc1?prefix=a&prefix=b", "more than once"),
        ("memcached://::1", "IPv6 goes in brackets"),
    ],
)
def test_bad_urls_are_config_errors(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse_url(url)
    assert "secret" not in str(info.value)


def test_ttl_rounds_up_to_whole_seconds() -> None:
    assert member_ttl(60, 10) == 60
    assert member_ttl(60.2, 10) == 61
    assert member_ttl(3, 1) == 3
    # memcached may drop a key up to a second early: never less than a beat + 1 s.
    assert member_ttl(1.0, 0.2) == 2
    assert member_ttl(MAX_RELATIVE_EXPIRY, 10) == MAX_RELATIVE_EXPIRY
    with pytest.raises(ConfigError, match="30 days"):
        member_ttl(MAX_RELATIVE_EXPIRY + 0.5, 10)


def test_key_encoding_is_exact() -> None:
    assert member_key("sg", "compute", "h1", "nova-compute") == b"sg:m:compute:h1:nova-compute"
    # "/" is escaped too (quote's default would keep it), and ":" so the parts stay apart.
    assert member_key("sg", "a/b", "h:1", "b c") == b"sg:m:a%2Fb:h%3A1:b%20c"
    assert member_key("sg", "ü", "~_.-", "x") == b"sg:m:%C3%BC:~_.-:x"


def test_a_key_of_exactly_250_bytes_stays_plain() -> None:
    at_limit = member_key("p", "t", "x" * 242, "b")
    assert len(at_limit) == MAX_KEY_BYTES
    assert at_limit.startswith(b"p:m:")
    over = member_key("p", "t", "x" * 243, "b")
    assert over.startswith(b"p:h:")
    assert len(over) == len(b"p:h:") + 64


def test_placement_is_pinned() -> None:
    """Rendezvous weights are part of the wire contract: every client of a fleet must
    place a key on the same server, so the hash may not change between versions."""
    assert _weight(b"mc1:11211", b"sg:m:compute:h1:b") == 11975138891685264090
    servers = ["mc1:11211", "mc2:11211", "mc3:11211"]
    placed = [pick_server(servers, member_key("sg", "compute", f"h{i}", "b")) for i in range(12)]
    assert placed == [1, 1, 0, 0, 1, 1, 1, 0, 1, 2, 0, 0]


def test_pick_server_edges() -> None:
    with pytest.raises(ValueError, match=r"^no servers$"):
        pick_server([], b"k")
    assert pick_server(["only:1"], b"k") == 0
    # The same name twice: the first one wins the tie.
    assert pick_server(["a:1", "a:1"], b"k") == 0
