"""The orchestrator's building blocks: the deployment state machine and `placement`
(the pure CSP solver). Sans-IO: the caller passes the time."""

from ._deployment_phase import DeploymentPhase
from ._events import DeploymentEvent, DeploymentEventKind
from ._invalid import InvalidSetting
from ._lifecycle import DeploymentLifecycle, InvalidTransition

__all__ = [
    "DeploymentEvent",
    "DeploymentEventKind",
    "DeploymentLifecycle",
    "DeploymentPhase",
    "InvalidSetting",
    "InvalidTransition",
]
