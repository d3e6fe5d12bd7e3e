"""sg/drivers/zookeeper/names.py: znode names that cannot escape their path and decode exactly."""

from __future__ import annotations

import pytest

from sg.drivers.zookeeper.names import (
    SEPARATOR,
    allowed_in_name,
    decode_name,
    encode_name,
    member_name,
    parse_member_name,
)
from sg.model import ServiceKey


@pytest.fixture(autouse=True)
def _uncached() -> None:
    # encode_name is memoised: each test must run the encoding, not read a cached answer
    # (a mutant under `make mutate` runs in a process forked after a clean run).
    encode_name.cache_clear()


ODD_NAMES = [
    "a/b",
    "..",
    ".",
    "...",
    "a\x00b",
    "%2F",
    "a:b",
    "host with spaces",
    "ünïcødé-主机",
    "x" * 255,
    "\ue000\uffff",
    "\x7f\x9f",
    ".a.",
]


@pytest.mark.parametrize("name", ODD_NAMES)
def test_names_encode_safely_and_decode_exactly(name: str) -> None:
    encoded = encode_name(name)
    assert "/" not in encoded
    assert "\x00" not in encoded
    assert encoded not in (".", "..")
    assert SEPARATOR not in encoded
    assert decode_name(encoded) == name
    key = ServiceKey(name, name)
    assert parse_member_name(member_name(key)) == key


@pytest.mark.parametrize(
    ("name", "encoded"),
    [
        ("compute-1.example.org", "compute-1.example.org"),
        ("A-Z_a.z~0+9,=@", "A-Z_a.z~0+9,=@"),
        ("a/b", "a%2Fb"),
        ("a:b", "a%3Ab"),
        ("50%", "50%25"),
        ("a b", "a%20b"),
        ("a\x00b", "a%00b"),
        (".", "%2E"),
        ("..", "%2E%2E"),
        ("...", "%2E%2E%2E"),
        (".a.", ".a."),  # dots with something else are a plain name
        ("\x7f", "%7F"),
        ("\x9f", "%C2%9F"),  # below U+00A0: ZooKeeper refuses it, so encoded
        ("\xa0", "\xa0"),  # U+00A0 is the first code point kept as it is
        ("ü", "ü"),
        ("\ud7ff", "\ud7ff"),
        ("\ue000", "%EE%80%80"),  # the private use area up to U+F8FF is refused by ZooKeeper
        ("\uf8ff", "%EF%A3%BF"),
        ("\uf900", "\uf900"),
        ("\ufff0", "%EF%BF%B0"),
        ("\uffff", "%EF%BF%BF"),
        ("\ufeff", "\ufeff"),
        # Above the BMP: a surrogate pair in ZooKeeper's UTF-16, which it refuses (issue
        # 10, defect 2), so encoded.
        ("\U00010000", "%F0%90%80%80"),
        ("", ""),
    ],
)
def test_encoding_is_exact(name: str, encoded: str) -> None:
    assert encode_name(name) == encoded
    assert decode_name(encoded) == name


@pytest.mark.parametrize(
    ("ch", "allowed"),
    [
        ("a", True),
        ("@", True),
        ("/", False),
        (":", False),
        ("%", False),
        ("\x9f", False),
        ("\xa0", True),
        ("\ud7ff", True),
        ("\ud800", False),
        ("\uf8ff", False),
        ("\uf900", True),
        ("\uffef", True),
        ("\ufff0", False),
        ("\uffff", False),
        ("\U00010000", False),
    ],
)
def test_allowed_in_name_bounds(ch: str, allowed: bool) -> None:
    assert allowed_in_name(ch) is allowed


def test_member_name_joins_host_and_binary() -> None:
    assert member_name(ServiceKey("h/1", "b:x")) == "h%2F1:b%3Ax"
    assert parse_member_name("h%2F1:b%3Ax") == ServiceKey("h/1", "b:x")
    # Only the first separator splits: an encoded binary never holds one, a raw one might.
    assert parse_member_name("h:b:c") == ServiceKey("h", "b:c")


def test_a_name_without_separator_is_refused() -> None:
    with pytest.raises(ValueError, match="not a member node name: 'lonely'"):
        parse_member_name("lonely")


def test_a_lone_surrogate_still_encodes() -> None:
    # sg.model refuses surrogates in names; encoding one must still not raise or escape.
    assert encode_name("\ud800") == "%ED%A0%80"
    assert encode_name("\udfff/") == "%ED%BF%BF%2F"


def test_decoding_refuses_bytes_that_are_not_utf8() -> None:
    with pytest.raises(UnicodeDecodeError):
        decode_name("%FF")
