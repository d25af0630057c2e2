"""The mesh message codec, the dedup set, the peer table and backoff (all sans-IO)."""

from __future__ import annotations

import contextlib
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dms.net import Backoff, PeerTable, SeenMessages
from dms.net._mesh_wire import (
    MAX_IDS,
    DirectOnly,
    Graft,
    IHave,
    MalformedMeshFrame,
    PeerEntry,
    PeerList,
    Ping,
    Pong,
    Prune,
    Publish,
    Unicast,
    decode,
    encode,
    with_hops_left,
)

text = st.text(max_size=40)
ids = st.lists(st.binary(min_size=1, max_size=255), min_size=1, max_size=8).map(tuple)
messages = st.one_of(
    st.builds(Unicast, st.binary(max_size=64)),
    st.builds(
        Publish,
        st.binary(min_size=1, max_size=255),
        text,
        st.integers(0, 255),
        st.binary(max_size=64),
        st.binary(max_size=255),
    ),
    st.builds(Ping, st.binary(min_size=8, max_size=8)),
    st.builds(Pong, st.binary(min_size=8, max_size=8)),
    st.builds(PeerList, st.lists(st.builds(PeerEntry, text, text), max_size=5).map(tuple)),
    st.builds(DirectOnly, st.lists(st.builds(PeerEntry, text, text), max_size=5).map(tuple)),
    st.builds(IHave, ids),
    st.builds(Graft, ids),
    st.builds(Prune, st.binary(max_size=255)),
)


@given(messages)
def test_every_mesh_message_survives_a_round_trip(message):
    assert decode(encode(message)) == message


@given(messages)
def test_every_cut_short_mesh_message_is_malformed_or_a_shorter_payload(message):
    """Truncation never raises anything but MalformedMeshFrame (the fast PUBLISH and
    id-list readers index bytes directly); only frames that end in a free-length
    payload decode when cut, to the same message with less payload."""
    frame = encode(message)
    for end in range(len(frame)):
        try:
            cut = decode(frame[:end])
        except MalformedMeshFrame:
            continue
        assert isinstance(message, Publish | Unicast)
        assert type(cut) is type(message) and message.payload.startswith(cut.payload)


@given(messages, st.integers(0, 255))
def test_a_relayed_publish_frame_is_the_received_one_with_its_hop_count_changed(message, hops):
    if not isinstance(message, Publish):
        with pytest.raises(ValueError, match="not a PUBLISH frame"):
            with_hops_left(encode(message), hops)
        return
    relayed = Publish(message.message_id, message.topic, hops, message.payload, message.origin)
    assert with_hops_left(encode(message), hops) == encode(relayed)


@given(st.binary(max_size=80))
def test_decoding_arbitrary_bytes_gives_a_message_or_malformed(data):
    with contextlib.suppress(MalformedMeshFrame):
        decode(data)


@pytest.mark.parametrize(
    ("frame", "problem"),
    [
        (b"", "empty"),
        (b"\x0b", "unknown message kind 0x0b"),
        (b"\x07\x00\x00", "IHAVE frame carries 0 message ids"),
        (b"\x08\x04\x01", "GRAFT frame carries 1025 message ids"),
        (b"\x07\x00\x02\x01a", "IHAVE frame truncated in message_id length"),
        (b"\x07\x00\x01\x00", "IHAVE frame has an empty message_id"),
        (b"\x08\x00\x01\x01ab", "GRAFT frame has trailing bytes"),
        (b"\x09\x00\x00", "PRUNE frame has trailing bytes"),
        (b"\x09\x02a", "PRUNE frame truncated in origin"),
        (b"\x02\x05\x01a\x03ab", "PUBLISH frame truncated in origin"),
        (b"\x0a\x00\x01\x00\x01a", "DIRECT frame truncated in address"),
        (b"\x03\x00", "PING frame truncated in nonce"),
        (b"\x02\x05\x00", "empty message_id"),
        (b"\x05\x00\x01\x00\x03abc", "PEERS frame truncated in address"),
        (b"\x04" + bytes(9), "PONG frame has trailing bytes"),
    ],
)
def test_malformed_frames_say_what_is_wrong(frame, problem):
    with pytest.raises(MalformedMeshFrame, match=problem):
        decode(frame)


def test_seen_messages_forget_after_ttl_and_beyond_capacity():
    seen = SeenMessages(capacity=2, ttl=10.0)
    assert seen.add(b"a", now=0.0)
    assert not seen.add(b"a", now=5.0)
    assert seen.add(b"a", now=10.0)  # expired, seen again
    assert seen.add(b"b", now=11.0) and seen.add(b"c", now=11.0)
    assert b"a" not in seen and len(seen) == 2  # capacity evicted the oldest


def test_peer_table_keeps_announced_addresses_over_hearsay_and_stays_bounded():
    table = PeerTable(capacity=2)
    table.note_connected("did:key:a", "ws://a:1", now=1.0)
    assert not table.note_address("did:key:a", "ws://evil:1", now=2.0)
    assert table["did:key:a"].address == "ws://a:1"
    assert table.note_address("did:key:b", "ws://b:1", now=3.0)
    assert table.note_address("did:key:c", "ws://c:1", now=4.0)
    assert set(table) == {"did:key:a", "did:key:c"}  # idle b forgotten, connected a kept
    table.note_rtt("did:key:a", 12.5)
    table.note_disconnected("did:key:a")
    assert table["did:key:a"].rtt_ms == 12.5 and not table["did:key:a"].connected


def test_peer_table_notes_when_a_peer_was_last_seen_to_its_resolution():
    from dms.net._peers import SEEN_RESOLUTION

    table = PeerTable()
    table.note_connected("did:key:a", "memory://a", now=10.0)
    table.note_rtt("did:key:a", 3.0)
    table.note_seen("did:key:a", 10.0 + SEEN_RESOLUTION / 2)  # within it: unchanged
    assert table["did:key:a"].last_seen == 10.0
    table.note_seen("did:key:a", 11.0)
    info = table["did:key:a"]
    assert (info.last_seen, info.address, info.rtt_ms, info.connected) == (
        11.0, "memory://a", 3.0, True)


def test_backoff_grows_to_its_cap_with_bounded_jitter():
    backoff = Backoff(initial=1.0, maximum=8.0, factor=2.0, jitter=0.25)
    rng = random.Random(1)
    delays = [backoff.delay(n, rng) for n in range(1, 7)]
    for delay, base in zip(delays, [1, 2, 4, 8, 8, 8], strict=True):
        assert base * 0.75 <= delay <= base * 1.25


def test_an_id_list_frame_is_refused_before_it_allocates_past_its_bound():
    """A count field cannot make the decoder build more than MAX_IDS ids."""
    frame = b"\x07\xff\xff" + b"\x01a" * 70000
    with pytest.raises(MalformedMeshFrame, match="65535 message ids"):
        decode(frame)
    assert decode(encode(IHave((b"x",) * MAX_IDS))) == IHave((b"x",) * MAX_IDS)
    with pytest.raises(ValueError, match="1..1024 message ids"):
        encode(Graft((b"x",) * (MAX_IDS + 1)))
