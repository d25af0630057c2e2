"""Hostile check of the inbox keeping its heaviest-peer heap only near full: under any
sequence of floods, takes, departures and returns, the peer it displaces from is one
holding the most (a flooder's deliveries go first, never a quiet peer's), whether the
heap was kept all along or rebuilt when the inbox filled again."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dms.net._inbox import FairInbox, InboxLimits


class _Checked(FairInbox[int]):
    chosen = 0

    def _heaviest_peer(self) -> str | None:
        peer = super()._heaviest_peer()
        loads = {p: self._load(p, len(q), self._bytes.get(p, 0))
                 for p, q in self._queues.items() if q}
        if loads:
            assert peer is not None and loads[peer] == max(loads.values()), (peer, loads)
            self.chosen += 1
        else:
            assert peer is None
        return peer


_PEERS = ["flood", "a", "b", "c"]
_op = st.one_of(
    st.tuples(st.just("offer"), st.sampled_from(_PEERS), st.integers(1, 300)),
    st.tuples(st.just("flood"), st.just("flood"), st.integers(1, 20)),
    st.tuples(st.just("take"), st.just(""), st.integers(1, 6)),
    st.tuples(st.just("depart"), st.sampled_from(_PEERS), st.just(0)),
    st.tuples(st.just("arrive"), st.sampled_from(_PEERS), st.just(0)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_op, max_size=60))
def test_displacement_always_takes_from_a_heaviest_peer(ops: list[tuple[str, str, int]]) -> None:
    inbox = _Checked(InboxLimits(items=16, total_bytes=2000, peer_items=8, peer_bytes=1000))
    for kind, peer, n in ops:
        if kind == "offer":
            inbox.offer(peer, 0, n)
        elif kind == "flood":
            for _ in range(n):
                inbox.offer(peer, 0, 50)
        elif kind == "take":
            for _ in range(n):
                inbox.take()
        elif kind == "depart":
            inbox.depart(peer)
        else:
            inbox.arrive(peer)
        assert inbox.items <= 16 and inbox.bytes <= 2000
        assert inbox.items == sum(inbox.held_by(p)[0] for p in _PEERS)
