"""The failure a user sees when an ensemble cannot be placed by its deadline.

The solver's `Explanation` says which constraint ruled out which bids; it cannot say
anything about the providers that did not bid. Their declines can ("provider X: node
web: ram: 2 GiB free, 4 GiB asked"), and so can the exclusions (a provider that failed
to commit) and the count of answers the window set aside. This joins them, keeping the
structured parts for `--json` and bounding the text: a thousand declines are counted,
not printed.
"""

from __future__ import annotations

import types
from collections.abc import Iterable, Mapping

from ._decline import NodeDecline
from ._ignored import IgnoreReason
from .placement import Explanation

MAX_LINES = 40  # declines (and exclusions) spelled out in the text; the rest are counted
MAX_REASON = 200  # characters of one decline reason or exclusion shown


def _clip(text: str) -> str:
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"


def _listed(head: str, lines: list[str], noun: str) -> list[str]:
    if not lines:
        return []
    shown = [f"  {line}" for line in lines[:MAX_LINES]]
    if len(lines) > MAX_LINES:
        shown.append(f"  … and {len(lines) - MAX_LINES} more {noun}")
    return [head, *shown]


class DeploymentUnplaceable(Exception):
    """No placement for the ensemble (raised at its deadline). `explanation` is the
    solver's; `declines` what providers said they lack; `excluded` maps a peer to why
    it was excluded; `ignored` counts answers set aside; `rounds` how often bids were
    requested; `answered` how many providers answered at all."""

    def __init__(
        self,
        explanation: Explanation,
        *,
        declines: Iterable[NodeDecline] = (),
        excluded: Mapping[str, str] | None = None,
        ignored: Mapping[IgnoreReason, int] | None = None,
        rounds: int = 0,
        answered: int | None = None,
    ) -> None:
        self.explanation = explanation
        self.declines = tuple(sorted(declines, key=lambda d: (d.node, d.peer)))
        self.excluded: Mapping[str, str] = types.MappingProxyType(dict(excluded or {}))
        self.ignored: Mapping[IgnoreReason, int] = types.MappingProxyType(
            {reason: count for reason, count in (ignored or {}).items() if count}
        )
        self.rounds = rounds
        self.answered = answered  # providers that answered at all (None: not counted)
        super().__init__(self.text())

    def text(self) -> str:
        lines = [str(self.explanation)]
        lines += _listed(
            "declines:",
            [
                f"provider {d.peer}: node {d.node}: "
                + ("; ".join(_clip(r) for r in d.reasons) or "no reason given")
                for d in self.declines
            ],
            "declines",
        )
        lines += _listed(
            "excluded:",
            [f"provider {peer}: {_clip(why)}" for peer, why in sorted(self.excluded.items())],
            "excluded providers",
        )
        if self.ignored:
            counts = ", ".join(
                f"{count} {reason.phrase}" for reason, count in sorted(self.ignored.items())
            )
            lines.append(f"ignored answers: {counts}")
        if self.answered == 0 and not self.ignored:
            lines.append("no provider answered: a provider answers only the bid requests "
                         "of a market whose root it anchors (`dms cap anchor add`, or "
                         "--anchor), sent while its clock agrees with this node's (within "
                         "60 s)")
        if self.rounds:
            lines.append(f"bids requested {'once' if self.rounds == 1 else f'{self.rounds} times'}")
        return "\n".join(lines)
