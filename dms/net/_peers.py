"""What the mesh knows about each peer, for dialing now and placement later."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import attrs

SEEN_RESOLUTION = 0.001
"""Seconds within which a peer's `last_seen` is not moved again (status shows ms)."""


@attrs.frozen
class PeerInfo:
    """One peer as this node sees it. Times are `trio.current_time()` seconds."""

    address: str | None
    """A dialable listen address (announced in its handshake or learned by exchange)."""
    last_seen: float
    """When a frame from it last arrived (or when it was learned)."""
    rtt_ms: float | None
    """Latest round trip of a mesh ping/pong, in milliseconds; None until measured."""
    connected: bool


class PeerTable(Mapping[str, PeerInfo]):
    """peer id -> `PeerInfo`, bounded: past `capacity`, the longest-unseen
    disconnected peers are forgotten."""

    def __init__(self, capacity: int = 4096) -> None:
        self.capacity = capacity
        self._peers: dict[str, PeerInfo] = {}

    def __getitem__(self, peer: str) -> PeerInfo:
        return self._peers[peer]

    def __iter__(self) -> Iterator[str]:
        return iter(self._peers)

    def __len__(self) -> int:
        return len(self._peers)

    def connected(self) -> list[str]:
        return [peer for peer, info in self._peers.items() if info.connected]

    def note_connected(self, peer: str, address: str | None, now: float) -> None:
        old = self._peers.get(peer)
        address = address or (old.address if old else None)
        rtt = old.rtt_ms if old else None
        self._put(peer, PeerInfo(address, now, rtt, connected=True))

    def note_disconnected(self, peer: str) -> None:
        """A peer with no address is forgotten (nobody can dial it again: a client,
        such as each `dms` command, comes back as a peer of its own)."""
        old = self._peers.get(peer)
        if old is None:
            return
        if old.address is None:
            del self._peers[peer]
        else:
            self._peers[peer] = attrs.evolve(old, connected=False)

    def note_seen(self, peer: str, now: float) -> None:
        """Called for every frame: a record already seen within SEEN_RESOLUTION is
        left as it is (a busy link would otherwise rebuild it thousands of times a
        second for nothing anyone reads)."""
        old = self._peers.get(peer)
        if old is not None and not 0 <= now - old.last_seen < SEEN_RESOLUTION:
            self._peers[peer] = PeerInfo(old.address, now, old.rtt_ms, old.connected)

    def note_rtt(self, peer: str, rtt_ms: float) -> None:
        old = self._peers.get(peer)
        if old is not None:
            self._peers[peer] = attrs.evolve(old, rtt_ms=rtt_ms)

    def note_address(self, peer: str, address: str, now: float) -> bool:
        """Learn an address from peer exchange; True if the peer was new to us.

        A known address (announced by the peer itself, or learned first) is never
        overwritten by hearsay: a neighbour cannot redirect our redials elsewhere.
        """
        old = self._peers.get(peer)
        if old is None:
            self._put(peer, PeerInfo(address, now, None, connected=False))
            return True
        if old.address is None:
            self._peers[peer] = attrs.evolve(old, address=address)
        return False

    def _put(self, peer: str, info: PeerInfo) -> None:
        self._peers[peer] = info
        if len(self._peers) > self.capacity:
            idle = [p for p, i in self._peers.items() if not i.connected and p != peer]
            if idle:
                del self._peers[min(idle, key=lambda p: self._peers[p].last_seen)]
