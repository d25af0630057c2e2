"""How many links a node keeps, and what each link is for (sans-IO).

A node's links are of three kinds (`LinkRole`): overlay neighbours, which carry
publications and count in the node's degree; leaves, peers that announced no listen
address (each `dms` command is one), which get publications but can neither be dialed
nor relay; and direct links, which carry unicast and tunnel frames only. Each kind is
capped (`DegreeLimits`), so that no number of connection attempts grows a node's links
past a fixed bound, and the overlay's degree stays near `target` whatever its size.

Why `maximum` is more than twice `target`: a node keeps a link it dialed for the overlay
(bootstrap or learned) only while it has fewer than `target` neighbours, so the overlay
has at most ``target * n`` links and its average degree is at most ``2 * target``. With
``maximum > 2 * target`` not every node can be full, so a newcomer always finds one
with room, told of it by the full nodes it tried first (their `DirectOnly` lists). (A
bootstrap dial that counted only against `maximum` let a testbed whose nodes all dial
every earlier one fill a clique of 11 to the brim and strand the 12th and later.)
"""

from __future__ import annotations

import enum

import attrs


class LinkRole(enum.Enum):
    OVERLAY = "overlay"
    """A neighbour in the overlay: publications flow over it; counts in the degree."""
    LEAF = "leaf"
    """A peer with no listen address (a client): gets publications, not in the degree."""
    DIRECT = "direct"
    """Unicast and tunnel frames only: closed once idle, the least recently used one
    when a newer one needs its place."""


def _at_least_one(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 1:
        raise ValueError(f"{attribute.name} must be at least 1, got {value}")


@attrs.frozen
class DegreeLimits:
    """Caps on a node's links, by role."""

    target: int = attrs.field(default=4, validator=_at_least_one)
    """Overlay neighbours a node dials toward (peer exchange finds them)."""
    maximum: int = attrs.field(default=10, validator=_at_least_one)
    """Overlay neighbours at most, dialed and accepted: past it a newcomer's link is
    made direct and it is told of other peers (`DirectOnly`)."""
    leaves: int = attrs.field(default=64, validator=_at_least_one)
    """Links from peers without a listen address; past it a newcomer is refused."""
    direct: int = attrs.field(default=64, validator=_at_least_one)
    """Direct (unicast-only) links; past it the least recently used one is closed."""
    direct_idle: float = attrs.field(default=60.0, validator=attrs.validators.gt(0.0))
    """Seconds without a unicast or tunnel frame after which a direct link is closed."""
    rotation_interval: float = attrs.field(default=60.0, validator=attrs.validators.gt(0.0))
    """Seconds between swaps of one dialed neighbour for a random known peer."""

    def __attrs_post_init__(self) -> None:
        if self.maximum < self.target:
            raise ValueError(
                f"maximum ({self.maximum}) must be at least target ({self.target})")

    def inbound_role(self, has_address: bool, degree: int, leaves: int) -> LinkRole | None:
        """The role of a link a peer opened to us; None: refuse it (leaves are full)."""
        if not has_address:
            return LinkRole.LEAF if leaves < self.leaves else None
        return LinkRole.OVERLAY if degree < self.maximum else LinkRole.DIRECT

    def outbound_role(self, for_overlay: bool, degree: int) -> LinkRole | None:
        """The role of a link we opened: dialed to join the overlay (None: we have our
        `target` already, close it), or to send (direct)."""
        if not for_overlay:
            return LinkRole.DIRECT
        return LinkRole.OVERLAY if degree < self.target else None


DEFAULT_DEGREE = DegreeLimits()
