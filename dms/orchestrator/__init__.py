"""The orchestrator's building blocks: the deployment state machine, phases whose
steps revert, and `placement` (the pure CSP solver).

    lifecycle = DeploymentLifecycle()
    async with UndoStack(on_event=...) as undos:
        async with undos.phase("commit") as p:
            p.on_revert(undo, "reservation on provider X")

Everything here but `UndoStack` is sans-IO; `UndoStack` needs trio for its shields.
"""

from ._deployment_phase import DeploymentPhase
from ._events import DeploymentEvent, DeploymentEventKind
from ._invalid import InvalidSetting
from ._lifecycle import DeploymentLifecycle, InvalidTransition
from ._undo import Phase, PhaseClosed, PhaseEvent, PhaseOverlap, UndoFailure, UndoStack

__all__ = [
    "DeploymentEvent",
    "DeploymentEventKind",
    "DeploymentLifecycle",
    "DeploymentPhase",
    "InvalidSetting",
    "InvalidTransition",
    "Phase",
    "PhaseClosed",
    "PhaseEvent",
    "PhaseOverlap",
    "UndoFailure",
    "UndoStack",
]
