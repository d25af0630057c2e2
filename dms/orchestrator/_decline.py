"""A provider's "no" for one ensemble node, as the bid window holds it.

A provider answers one `dms.provider.Decline` for every node it will not bid for;
the window keeps the newest statement per (provider, node), so it splits that answer
with `NodeDecline.split`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:  # dms.provider imports placement, inside this package
    from dms.provider import Decline


def _texts(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(values)


@attrs.frozen
class NodeDecline:
    """Provider `peer` cannot host ensemble node `node`; each reason names an unmet
    requirement and the shortfall ("ram: 2Gi free, 4Gi asked")."""

    peer: str
    node: str
    reasons: tuple[str, ...] = attrs.field(default=(), converter=_texts)

    @classmethod
    def split(cls, decline: Decline) -> list[NodeDecline]:
        """One per ensemble node of a provider's decline, in node order."""
        return [cls(decline.peer, node, [unmet.message for unmet in decline.of(node)])
                for node in sorted(decline.nodes)]
