"""The orchestrator's building blocks: the deployment state machine, phases whose
steps revert, the bid window, and `placement` (the pure CSP solver).

    lifecycle = DeploymentLifecycle()
    window = BidWindow(derive_requirements(ensemble))
    async with UndoStack(on_event=...) as undos:
        async with undos.phase("commit") as p:
            p.on_revert(undo, "reservation on provider X")

Everything here but `UndoStack` is sans-IO; `UndoStack` needs trio for its shields.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dms.store import DeploymentPhase

    from ._bid_window import BidWindow, BidWindowLimits
    from ._decline import NodeDecline
    from ._events import DeploymentEvent, DeploymentEventKind
    from ._ignored import IgnoreReason
    from ._invalid import InvalidSetting
    from ._lifecycle import DeploymentLifecycle, InvalidTransition
    from ._undo import Phase, PhaseClosed, PhaseEvent, PhaseOverlap, UndoFailure, UndoStack
    from ._unplaceable import DeploymentUnplaceable
else:
    from dms._exports import lazy_exports

    __getattr__, __dir__ = lazy_exports(__name__, {
        "dms.store": ("DeploymentPhase",),
        "dms.orchestrator._bid_window": ("BidWindow", "BidWindowLimits"),
        "dms.orchestrator._decline": ("NodeDecline",),
        "dms.orchestrator._events": ("DeploymentEvent", "DeploymentEventKind"),
        "dms.orchestrator._ignored": ("IgnoreReason",),
        "dms.orchestrator._invalid": ("InvalidSetting",),
        "dms.orchestrator._lifecycle": ("DeploymentLifecycle", "InvalidTransition"),
        "dms.orchestrator._undo": (
            "Phase", "PhaseClosed", "PhaseEvent", "PhaseOverlap", "UndoFailure", "UndoStack",
        ),
        "dms.orchestrator._unplaceable": ("DeploymentUnplaceable",),
    })

__all__ = [
    "BidWindow",
    "BidWindowLimits",
    "NodeDecline",
    "DeploymentEvent",
    "DeploymentEventKind",
    "DeploymentLifecycle",
    "DeploymentPhase",
    "DeploymentUnplaceable",
    "IgnoreReason",
    "InvalidSetting",
    "InvalidTransition",
    "Phase",
    "PhaseClosed",
    "PhaseEvent",
    "PhaseOverlap",
    "UndoFailure",
    "UndoStack",
]
