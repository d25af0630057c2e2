"""A provider remembers its bids for bandwidth probes for PROBED_FOR seconds; one past
that is let go when the next bid is made, not kept until its cap (most bids are never
looked up again: their deployment ran and ended)."""

from __future__ import annotations

from dms.provider import Capacity, millicores
from dms.provider._service import PROBED_FOR, ProviderService


def test_bids_past_their_probe_window_are_forgotten_at_the_next_bid() -> None:
    now = [1000.0]
    service = ProviderService("peer", Capacity(millicores=millicores(1, round_up=False), ram=2**30,
                                               disk=2**30), {}, lambda: now[0])
    for n in range(500):  # a bid every 2 s
        service._remember_bid(f"deployment{n}")
        now[0] += 2.0
    assert len(service._bids) == PROBED_FOR // 2 + 1
    assert service._bid_memory("deployment499") is not None
    assert service._bid_memory("deployment0") is None
