"""Deploying an ensemble: the node's deployment service (`/dms/node/deployment/...`)
and the orchestrator actor that runs one deployment across the providers.

    node.root.register(DeploymentService(markets, store, clock))

The building blocks (bid window, phases that revert, the state machine, placement)
are `dms.orchestrator`'s; the provider's side is `dms.provider`'s.
"""

from dms.deployment._journal import DeploymentJournal
from dms.deployment._orchestrator import (
    DeploymentFailed,
    DeploymentSettings,
    Orchestrator,
    ProviderFailed,
)
from dms.deployment._plan import (
    PlannedDecline,
    PlannedLink,
    PlannedNode,
    PlanRequest,
    PlanView,
)
from dms.deployment._service import (
    EVENTS,
    JOIN,
    LEAVE,
    LIST,
    LOGS,
    NEW,
    PLAN,
    SHUTDOWN,
    STATUS,
    AllocationView,
    DeploymentId,
    DeploymentService,
    DeploymentView,
    EventsQuery,
    EventView,
    LogsRequest,
    NewDeployment,
    deployment_markets,
)

__all__ = [
    "EVENTS",
    "JOIN",
    "LEAVE",
    "LIST",
    "LOGS",
    "NEW",
    "PLAN",
    "SHUTDOWN",
    "STATUS",
    "AllocationView",
    "DeploymentFailed",
    "DeploymentId",
    "DeploymentJournal",
    "DeploymentService",
    "DeploymentSettings",
    "DeploymentView",
    "EventView",
    "EventsQuery",
    "LogsRequest",
    "NewDeployment",
    "Orchestrator",
    "PlanRequest",
    "PlanView",
    "PlannedDecline",
    "PlannedLink",
    "PlannedNode",
    "ProviderFailed",
    "deployment_markets",
]
