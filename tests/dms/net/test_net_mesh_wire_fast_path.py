"""Hostile differential: the slice-based PUBLISH/IHAVE/GRAFT parsing reads exactly what
the field reader did (the code at 6e67742, reproduced below on `_Reader`), and a
relay's forwarded frame (`with_hops_left`, the received bytes with one byte changed)
is byte for byte what re-encoding the validated message would send: a relay forwards
nothing it did not parse."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from dms.net._mesh_wire import (
    MAX_IDS,
    Graft,
    IHave,
    Kind,
    MalformedMeshFrame,
    Publish,
    _Reader,
    decode,
    encode,
    with_hops_left,
)


def _old_decode(data: bytes) -> Any:
    """PUBLISH, IHAVE and GRAFT as `decode` read them at 6e67742."""
    kind = Kind(data[0])
    reader = _Reader(data, kind.name)
    if kind is Kind.PUBLISH:
        hops_left = reader.u8("hops_left")
        message_id = reader.take(reader.u8("message_id length"), "message_id")
        if not message_id:
            raise MalformedMeshFrame("PUBLISH frame has an empty message_id")
        origin = reader.take(reader.u8("origin length"), "origin")
        topic = reader.string("topic")
        return Publish(message_id, topic, hops_left, reader.rest(), origin)
    count = reader.u16("count")
    if not 0 < count <= MAX_IDS:
        raise MalformedMeshFrame("count")
    ids = []
    for _ in range(count):
        message_id = reader.take(reader.u8("message_id length"), "message_id")
        if not message_id:
            raise MalformedMeshFrame("empty")
        ids.append(message_id)
    reader.end()
    return IHave(tuple(ids)) if kind is Kind.IHAVE else Graft(tuple(ids))


def _outcome(parse: Any, data: bytes) -> Any:
    try:
        return parse(data)
    except MalformedMeshFrame:
        return "refused"


_publish = st.builds(
    lambda hops, mid, origin, topic, payload: encode(Publish(mid, topic, hops, payload, origin)),
    st.integers(0, 255), st.binary(min_size=1, max_size=40), st.binary(max_size=40),
    st.text(max_size=20), st.binary(max_size=40))
_ids = st.builds(lambda kind, ids: encode(kind(tuple(ids))), st.sampled_from([IHave, Graft]),
                 st.lists(st.binary(min_size=1, max_size=8), min_size=1, max_size=5))


@st.composite
def _mangled(draw: st.DrawFn) -> bytes:
    """A valid frame, then cut, padded or with bytes overwritten (lengths that lie)."""
    frame = bytearray(draw(st.one_of(_publish, _ids)))
    for _ in range(draw(st.integers(0, 3))):
        match draw(st.integers(0, 2)):
            case 0:
                del frame[draw(st.integers(1, max(1, len(frame)))):]
            case 1:
                frame += draw(st.binary(min_size=1, max_size=4))
            case _:
                if len(frame) > 1:
                    frame[draw(st.integers(1, len(frame) - 1))] = draw(st.integers(0, 255))
    return bytes(frame)


@settings(max_examples=500, deadline=None)
@given(_mangled())
def test_slice_parsing_accepts_and_refuses_exactly_what_the_field_reader_did(data: bytes) -> None:
    assert _outcome(decode, data) == _outcome(_old_decode, data)


@settings(max_examples=300, deadline=None)
@given(_mangled(), st.integers(0, 255))
def test_a_forwarded_frame_is_the_reencoded_validated_message(data: bytes, hops: int) -> None:
    try:
        message = decode(data)
    except MalformedMeshFrame:
        return
    if not isinstance(message, Publish):
        return
    forwarded = with_hops_left(data, hops)
    assert forwarded == encode(Publish(message.message_id, message.topic, hops,
                                       message.payload, message.origin))
    assert decode(forwarded) == Publish(message.message_id, message.topic, hops,
                                        message.payload, message.origin)
