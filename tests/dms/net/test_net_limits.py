"""The network layer's limits are the ones spec/security.md and spec/transport.md state:
a changed default must change the specs with it."""

from __future__ import annotations

import inspect

from dms.net import MAX_FRAME, DegreeLimits, InboxLimits, LinkSettings, Mesh, SeenMessages
from dms.net._cache import MessageCache
from dms.net._link import MAX_HANDSHAKE_MESSAGE
from dms.net._mesh import FULL_FOR
from dms.net._mesh_wire import MAX_IDS
from dms.net._peers import PeerTable
from dms.net._tree import BroadcastTree
from dms.net._turns import FairTurns

MiB = 1024 * 1024


def test_the_network_limits_are_the_documented_defaults():
    link = LinkSettings()
    assert (link.pending_handshakes, link.handshakes_per_source) == (64, 8)
    assert (link.accept_timeout, link.handshake_timeout, link.close_timeout) == (5.0, 10.0, 2.0)
    assert MAX_HANDSHAKE_MESSAGE == 4096
    assert link.max_frame == MAX_FRAME == 4 * MiB
    assert (link.send_buffer, link.send_buffer_bytes, link.relay_share) == (256, 8 * MiB, 0.5)
    inbox = InboxLimits()
    assert (inbox.items, inbox.total_bytes) == (1024, 32 * MiB)
    assert (inbox.per_peer_items, inbox.per_peer_bytes) == (256, 8 * MiB)
    assert inbox.per_peer_bytes > MAX_FRAME  # a largest unicast fits one peer's share
    turns = FairTurns()
    assert (turns.item_cost, turns.max_charge, turns.memory) == (1e-4, 0.1, 4096)
    seen = SeenMessages()
    assert (seen.capacity, seen.ttl) == (65536, 300.0)
    assert PeerTable().capacity == 4096
    mesh = inspect.signature(Mesh).parameters
    assert mesh["hop_limit"].default == 32
    assert mesh["max_peers"].default == 64
    assert mesh["exchange_dial_attempts"].default == 5
    assert mesh["lazy_interval"].default == 0.25
    degree = DegreeLimits()
    assert (degree.target, degree.maximum, degree.leaves, degree.direct) == (4, 10, 64, 64)
    assert degree.maximum > 2 * degree.target  # not every node can be full (_degree.py)
    assert (degree.direct_idle, degree.rotation_interval, FULL_FOR) == (60.0, 60.0, 60.0)
    cache = MessageCache()
    assert (cache.max_bytes, cache.max_topic_bytes, cache.ttl) == (16 * MiB, 4 * MiB, 120.0)
    tree = BroadcastTree()
    assert (tree.graft_timeout, tree.retry_timeout) == (1.0, 0.5)
    assert (tree.max_missing, tree.max_missing_per_peer, tree.max_announcers) == (4096, 512, 4)
    assert (tree.max_origins, MAX_IDS) == (1024, 1024)


def test_a_disconnected_peer_without_an_address_is_forgotten_and_one_with_is_kept() -> None:
    table = PeerTable()
    table.note_connected("client", None, 1.0)  # each `dms` command is such a peer
    table.note_connected("node", "ws://127.0.0.1:7000", 1.0)
    table.note_disconnected("client")
    table.note_disconnected("node")
    assert list(table) == ["node"] and not table["node"].connected


def test_a_peer_seen_again_within_a_millisecond_keeps_its_record() -> None:
    from dms.net._peers import SEEN_RESOLUTION, PeerTable

    table = PeerTable()
    table.note_connected("p", "tcp://127.0.0.1:1", 10.0)
    record = table["p"]
    table.note_seen("p", 10.0 + SEEN_RESOLUTION / 2)
    assert table["p"] is record  # every frame of a busy link: nothing rebuilt
    table.note_seen("p", 10.0 + 2 * SEEN_RESOLUTION)
    assert table["p"].last_seen == 10.0 + 2 * SEEN_RESOLUTION
    table.note_seen("p", 5.0)  # a clock that went back still moves it
    assert table["p"].last_seen == 5.0
    assert table["p"].connected and table["p"].address == "tcp://127.0.0.1:1"
