"""sg.drivers.zookeeper.client: our decode of get_children replies is aiozk's, faster,
and the real driver answers through it."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from aiozk import protocol
from aiozk.protocol.stat import Stat

from sg.drivers.zookeeper.client import (
    _ANSWERED,
    _FAST_CHILDREN,
    EXISTS,
    GET_DATA,
    _decode_children,
    _read_frame,
)

STAT = Stat(
    created_zxid=1,
    last_modified_zxid=2,
    created=3,
    modified=4,
    version=5,
    child_version=6,
    acl_version=7,
    ephemeral_owner=0x1234,
    data_length=9,
    num_children=10,
    last_modified_children=11,
)


def _reply(children: list[str]) -> bytes:
    fmt, data = protocol.GetChildren2Response(children=children, stat=STAT).render()
    return struct.pack("!" + fmt, *data)


@pytest.mark.parametrize(
    "children",
    [
        [],
        ["a"],
        ["host-00001:sg-compute", "é%3A:x", "名前:b", "%2E%2E:y"],
        [f"h{i:05d}:b" for i in range(1000)],
    ],
)
def test_decode_equals_aiozk(children: list[str]) -> None:
    raw = _reply(children)
    ours = _decode_children(raw)
    theirs = protocol.GetChildren2Response.deserialize(raw)
    assert ours.children == theirs.children == children
    assert ours.stat == theirs.stat


def test_decode_refuses_a_short_reply() -> None:
    # aiozk logs and aborts the connection on a decode error; never a wrong answer.
    with pytest.raises(struct.error):
        _decode_children(_reply(["abc"])[:10])


def test_registered_under_a_key_no_opcode_can_take() -> None:
    assert protocol.response_xref[12] is protocol.GetChildren2Response, "aiozk's own entry is untouched"
    assert not isinstance(_FAST_CHILDREN, int)
    assert protocol.response_xref[_FAST_CHILDREN].deserialize is _decode_children


@pytest.mark.parametrize("request_class", [protocol.ExistsRequest, protocol.GetDataRequest])
@pytest.mark.parametrize("path", ["/sg/compute/host-1:sg-compute", "/sg/名前/é%3A:x", "/"])
@pytest.mark.parametrize("xid", [1, 0x7FFFFFFF])
def test_read_frame_equals_aiozk(request_class: Any, path: str, xid: int) -> None:
    """The bare reads of a single verdict are framed byte for byte as aiozk frames them."""
    payload = request_class(path=path, watch=False).serialize(xid)
    assert _read_frame(request_class.opcode, path, xid) == struct.pack("!i", len(payload)) + payload
    assert {request_class.opcode} <= {EXISTS, GET_DATA}


def test_bare_reads_are_registered_under_a_key_no_opcode_can_take() -> None:
    assert protocol.response_xref[3] is protocol.ExistsResponse, "aiozk's own entry is untouched"
    assert not isinstance(_ANSWERED, int)
    assert protocol.response_xref[_ANSWERED].deserialize(b"anything") is True
