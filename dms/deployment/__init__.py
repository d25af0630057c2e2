"""Deploying an ensemble: the node's deployment service (`/dms/node/deployment/...`)
and the orchestrator actor that runs one deployment across the providers.

    node.root.register(DeploymentService(markets, store, clock))

The building blocks (bid window, phases that revert, the state machine, placement)
are `dms.orchestrator`'s; the provider's side is `dms.provider`'s.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
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
    from dms.deployment._requests import (
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
        DeploymentView,
        EventsQuery,
        EventView,
        LogsRequest,
        NewDeployment,
    )
    from dms.deployment._service import DeploymentService, deployment_markets
else:
    from dms._exports import lazy_exports

    __getattr__, __dir__ = lazy_exports(__name__, {
        "dms.deployment._journal": ("DeploymentJournal",),
        "dms.deployment._orchestrator": (
            "DeploymentFailed", "DeploymentSettings", "Orchestrator", "ProviderFailed",
        ),
        "dms.deployment._plan": (
            "PlannedDecline", "PlannedLink", "PlannedNode", "PlanRequest", "PlanView",
        ),
        "dms.deployment._requests": (
            "EVENTS", "JOIN", "LEAVE", "LIST", "LOGS", "NEW", "PLAN", "SHUTDOWN", "STATUS",
            "AllocationView", "DeploymentId", "DeploymentView", "EventsQuery", "EventView",
            "LogsRequest", "NewDeployment",
        ),
        "dms.deployment._service": ("DeploymentService", "deployment_markets"),
    })

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
