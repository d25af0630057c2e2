"""Placement: ensemble nodes onto bidding providers, as a constraint satisfaction
problem that explains itself when it has no solution. Pure logic: no I/O, no clock
except the one a `SearchBudget` is given."""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._explanation import (
        CapacityConflict,
        Conflict,
        EdgeConflict,
        Elimination,
        Explanation,
        NodeReport,
        Reason,
        SeparationConflict,
        Unplaceable,
    )
    from ._model import (
        Assignment,
        Bid,
        InvalidBid,
        Measurements,
        Objective,
        Placement,
        ProviderPath,
        SearchBudget,
        SearchStats,
        Strategy,
    )
    from ._problem import DuplicateBid, UnknownNode
    from ._solver import solve
else:
    from dms._exports import lazy_exports

    __getattr__, __dir__ = lazy_exports(__name__, {
        "dms.orchestrator.placement._explanation": (
            "CapacityConflict", "Conflict", "EdgeConflict", "Elimination", "Explanation",
            "NodeReport", "Reason", "SeparationConflict", "Unplaceable",
        ),
        "dms.orchestrator.placement._model": (
            "Assignment", "Bid", "InvalidBid", "Measurements", "Objective", "Placement",
            "ProviderPath", "SearchBudget", "SearchStats", "Strategy",
        ),
        "dms.orchestrator.placement._problem": ("DuplicateBid", "UnknownNode"),
        "dms.orchestrator.placement._solver": ("solve",),
    })

__all__ = [
    "Assignment",
    "Bid",
    "CapacityConflict",
    "Conflict",
    "DuplicateBid",
    "EdgeConflict",
    "Elimination",
    "Explanation",
    "InvalidBid",
    "ProviderPath",
    "Measurements",
    "NodeReport",
    "Objective",
    "Placement",
    "Reason",
    "SearchBudget",
    "SearchStats",
    "SeparationConflict",
    "Strategy",
    "UnknownNode",
    "Unplaceable",
    "solve",
]
