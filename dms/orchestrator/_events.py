"""What happens to a deployment, as numbered data: the deployment's event stream.

One numbering covers phase changes and what the revertible phases report (steps
undone, undos that failed or were abandoned), so a reader resuming from event number
`n` misses nothing and sees them in the order they happened. Details are text for
people, bounded in length because some of it quotes what a remote peer said.
"""

from __future__ import annotations

import enum

import attrs

from dms.store import DeploymentPhase

MAX_DETAIL = 1024  # characters kept of an event's detail


class DeploymentEventKind(enum.StrEnum):
    TRANSITION = "transition"  # the deployment entered another phase
    PHASE_STARTED = "phase_started"  # a revertible phase block began
    PHASE_ENDED = "phase_ended"  # ... ended normally; its undos stay registered
    PHASE_FAILED = "phase_failed"  # ... ended with an error or a cancellation
    REVERTING = "reverting"  # registered undos start running, newest first
    UNDONE = "undone"  # one undo ran to completion
    UNDO_FAILED = "undo_failed"  # one undo raised; the others still run
    UNDO_ABANDONED = "undo_abandoned"  # one undo outlived its deadline
    REVERTED = "reverted"  # every undo has had its turn
    KEPT = "kept"  # undos forgotten on purpose: what they would release is kept


def bounded_detail(text: str) -> str:
    if len(text) <= MAX_DETAIL:
        return text
    return text[: MAX_DETAIL - 1] + "…"


@attrs.frozen
class DeploymentEvent:
    """Event `number` (1, 2, ... without gaps) of one deployment, at trio time `at`;
    `phase` is the deployment's phase once the event happened."""

    number: int
    at: float
    kind: DeploymentEventKind
    phase: DeploymentPhase
    detail: str = attrs.field(default="", converter=bounded_detail)
