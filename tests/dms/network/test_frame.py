"""The frame between two pumps: a batch codec that round-trips and refuses bad bytes
by field, a batcher giving one frame per peer per wakeup, and the membership check
that only lets a granted peer's own addresses reach this host's allocations."""

from __future__ import annotations

import struct
from ipaddress import IPv4Address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dms.network import (
    MAX_PACKETS,
    Batcher,
    InvalidFrame,
    Membership,
    PacketDrop,
    decode_batch,
    encode_batch,
    ensemble_tag,
)

TAG = ensemble_tag("dep")
WEB, DB, OUTSIDER = IPv4Address("10.1.2.2"), IPv4Address("10.1.2.3"), IPv4Address("10.1.2.9")


def ipv4(source: IPv4Address, destination: IPv4Address, body: bytes = b"", vnet: bool = False,
         ) -> bytes:
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), 0, 0, 64, 17, 0,
                         source.packed, destination.packed)
    return (b"\x00" * 10 if vnet else b"") + header + body


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=3000), min_size=1, max_size=40), st.booleans())
def test_a_batch_reads_back_as_the_packets_it_was_made_of(packets: list[bytes], vnet: bool) -> None:
    batch = decode_batch(encode_batch(TAG, packets, vnet=vnet))
    assert batch.packets == tuple(packets) and batch.tag == TAG and batch.vnet is vnet


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=400))
def test_no_bytes_make_the_decoder_fail_other_than_by_naming_the_field(data: bytes) -> None:
    try:
        batch = decode_batch(data)
    except InvalidFrame as exc:
        assert exc.field
    else:
        assert sum(len(p) for p in batch.packets) <= len(data)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=100), min_size=1, max_size=5), st.data())
def test_a_truncated_or_extended_frame_is_refused(packets: list[bytes], data: st.DataObject) -> None:
    frame = encode_batch(TAG, packets)
    cut = data.draw(st.integers(0, len(frame) - 1))
    with pytest.raises(InvalidFrame):
        decode_batch(frame[:cut])
    with pytest.raises(InvalidFrame, match="after the last packet"):
        decode_batch(frame + b"\x00")


@pytest.mark.parametrize(("frame", "field"), [
    (b"\x02\x00\x00\x01" + TAG + b"\x00\x00\x00\x00", "version"),
    (b"\x01\x80\x00\x01" + TAG + b"\x00\x00\x00\x00", "flags"),
    (b"\x01\x00\x00\x00" + TAG, "count"),
    (b"\x01\x00\xff\xff" + TAG, "count"),
    (b"\x01\x00\x00\x01" + TAG + b"\xff\xff\xff\xff", "packet 0"),
    (b"\x01\x00", "header"),
])
def test_a_wrong_frame_is_refused_naming_the_part(frame: bytes, field: str) -> None:
    with pytest.raises(InvalidFrame) as caught:
        decode_batch(frame)
    assert caught.value.field == field


def test_encoding_refuses_empty_or_oversized_batches() -> None:
    with pytest.raises(InvalidFrame, match="count"):
        encode_batch(TAG, [])
    with pytest.raises(InvalidFrame, match="count"):
        encode_batch(TAG, [b"x"] * (MAX_PACKETS + 1))
    with pytest.raises(InvalidFrame, match="packet"):
        encode_batch(TAG, [b"x" * 70000])


def test_the_batcher_sends_one_frame_per_peer_per_wakeup() -> None:
    batcher = Batcher(TAG)
    for n in range(10):
        batcher.add("p1", b"a%d" % n)
        batcher.add("p2", b"b%d" % n)
    frames = batcher.flush()
    assert [peer for peer, _ in frames] == ["p1", "p2"]
    assert decode_batch(frames[0][1]).packets == tuple(b"a%d" % n for n in range(10))
    assert batcher.flush() == []


def test_the_batcher_splits_only_at_the_frame_limits() -> None:
    batcher = Batcher(TAG)
    for _ in range(MAX_PACKETS + 1):
        batcher.add("p", b"x")
    frames = batcher.flush()
    assert [len(decode_batch(f).packets) for _, f in frames] == [MAX_PACKETS, 1]
    big = Batcher(TAG)
    for _ in range(20):
        big.add("p", b"x" * 65000)
    sizes = [len(f) for _, f in big.flush()]
    assert len(sizes) == 2 and all(s <= 1024 * 1024 + 4096 for s in sizes)


@pytest.fixture
def membership() -> Membership:
    membership = Membership("dep", [WEB])
    membership.grant({"provider-b": [DB]})
    return membership


def test_a_granted_peer_reaches_local_allocations_from_its_own_addresses(
        membership: Membership) -> None:
    packet = ipv4(DB, WEB, b"hi")
    assert membership.admit("provider-b", encode_batch(TAG, [packet])) == [packet]


def test_a_frame_from_a_peer_never_granted_is_dropped_and_counted(membership: Membership) -> None:
    assert membership.admit("stranger", encode_batch(TAG, [ipv4(DB, WEB)])) == []
    assert membership.dropped["not a member"] == 1


def test_a_member_cannot_speak_as_another_or_reach_beyond_this_host(membership: Membership) -> None:
    frame = encode_batch(TAG, [ipv4(OUTSIDER, WEB), ipv4(DB, OUTSIDER), ipv4(DB, WEB),
                               b"\x60" + bytes(39)])
    assert membership.admit("provider-b", frame) == [ipv4(DB, WEB)]
    assert membership.dropped[PacketDrop.SPOOFED_SOURCE] == 1
    assert membership.dropped[PacketDrop.UNKNOWN_DESTINATION] == 1
    assert membership.dropped[PacketDrop.NOT_IPV4] == 1


def test_frames_of_another_ensemble_or_malformed_are_dropped(membership: Membership) -> None:
    assert membership.admit("provider-b", encode_batch(ensemble_tag("other"), [ipv4(DB, WEB)])) == []
    assert membership.admit("provider-b", b"\x01garbage") == []
    assert membership.dropped["other ensemble or header"] == 1
    assert membership.dropped["malformed frame"] == 1


def test_a_new_grant_replaces_the_old_one_whole(membership: Membership) -> None:
    membership.grant({"provider-c": [DB]})
    assert membership.admit("provider-b", encode_batch(TAG, [ipv4(DB, WEB)])) == []
    assert membership.admit("provider-c", encode_batch(TAG, [ipv4(DB, WEB)])) != []


def test_offload_frames_check_addresses_after_the_virtio_header() -> None:
    membership = Membership("dep", [WEB], vnet=True)
    membership.grant({"p": [DB]})
    packet = ipv4(DB, WEB, vnet=True)
    assert membership.admit("p", encode_batch(TAG, [packet], vnet=True)) == [packet]
    assert membership.admit("p", encode_batch(TAG, [packet])) == []  # header flag must match
