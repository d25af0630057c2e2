"""Measurements and bids as plain data."""

from __future__ import annotations

import math

from dms.ensemble._requirements import Resources
from dms.orchestrator.placement import Bid, Measurements, ProviderPath


def test_measurement_lookup_is_symmetric() -> None:
    links = Measurements({("a", "b"): ProviderPath(rtt_ms=3, bandwidth=1e9)})
    assert links.link("b", "a") == links.link("a", "b") == ProviderPath(rtt_ms=3, bandwidth=1e9)
    assert links.link("a", "c") is None


def test_both_directions_measured_keeps_the_worse_values() -> None:
    links = Measurements(
        {("a", "b"): ProviderPath(rtt_ms=3, bandwidth=1e9), ("b", "a"): ProviderPath(rtt_ms=7, bandwidth=None)}
    )
    assert links.link("a", "b") == ProviderPath(rtt_ms=7, bandwidth=1e9)


def test_a_provider_reaches_itself_instantly() -> None:
    link = Measurements().link("a", "a")
    assert link is not None and link.rtt_ms == 0 and link.bandwidth == math.inf


def test_bid_fields_are_frozen_sets() -> None:
    bid = Bid("a", Resources(cpu=1), ["docker"], public_ports=[80], nodes=["web"])  # type: ignore[arg-type]
    assert bid.executors == frozenset({"docker"})
    assert bid.public_ports == frozenset({80})
    assert bid.nodes == frozenset({"web"})
