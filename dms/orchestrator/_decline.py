"""A provider's signed "no" for one ensemble node, as the bid window reads it.

Minimal on purpose and kept in this one module: `dms.provider` defines the canonical
`Decline`, which replaces this one at merge. The window reads only `peer`, `node` and
`reasons`.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs


def _texts(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(values)


@attrs.frozen
class Decline:
    """Provider `peer` cannot host ensemble node `node`; each reason names an unmet
    requirement and the shortfall ("ram: 2 GiB free, 4 GiB asked")."""

    peer: str
    node: str
    reasons: tuple[str, ...] = attrs.field(default=(), converter=_texts)
