"""Why the bid window set a provider's answer aside, counted rather than logged one by
one, so a flood of bad answers costs a counter and shows up in the failure report."""

from __future__ import annotations

import enum


class IgnoreReason(enum.StrEnum):
    UNKNOWN_NODE = "unknown_node"  # names a node this ensemble does not have
    NO_NODE = "no_node"  # a bid that names no node at all
    EXCLUDED_PEER = "excluded_peer"  # from a peer the ensemble or the orchestrator excluded
    TOO_MANY_PROVIDERS = "too_many_providers"  # the window holds max_providers already
    TOO_LARGE = "too_large"  # past max_provider_bytes, or the window's max_bytes

    @property
    def phrase(self) -> str:
        return _PHRASES[self]


_PHRASES = {
    IgnoreReason.UNKNOWN_NODE: "naming nodes the ensemble does not have",
    IgnoreReason.NO_NODE: "naming no node",
    IgnoreReason.EXCLUDED_PEER: "from excluded peers",
    IgnoreReason.TOO_MANY_PROVIDERS: "from providers past the window's limit",
    IgnoreReason.TOO_LARGE: "too large to keep",
}
