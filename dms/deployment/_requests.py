"""What a client says to a node's deployment service and what it answers: the behaviors'
names and the shapes of their arguments and replies, apart from the service itself
(`_service`), so that `dms status` and other clients import these and not the
orchestrator, the provider and the store behind them."""

from __future__ import annotations

from typing import Any

import attrs

from dms.provider import wire

NEW = "/dms/node/deployment/new"
STATUS = "/dms/node/deployment/status"
LIST = "/dms/node/deployment/list"
EVENTS = "/dms/node/deployment/events"
SHUTDOWN = "/dms/node/deployment/shutdown"
LOGS = "/dms/node/deployment/logs"
PLAN = "/dms/node/deployment/plan"
JOIN = "/dms/node/deployment/join"
LEAVE = "/dms/node/deployment/leave"


@attrs.frozen
class NewDeployment:
    ensemble: str  # the YAML text
    deadline: float | None = None  # seconds to be running (default: the node's setting)
    duration: float | None = None  # seconds to run; None: until shut down


@attrs.frozen
class DeploymentId:
    id: str


@attrs.frozen
class EventsQuery:
    id: str
    after: int = 0
    wait: float = 0.0  # seconds to wait for an event after `after` (at most 30)


@attrs.frozen
class LogsRequest:
    id: str
    allocation: str
    query: wire.LogsQuery = wire.LogsQuery()


@attrs.frozen
class AllocationView:
    name: str
    provider: str
    state: str
    health: str | None = None
    restarts: int = 0
    address: str = ""  # on the ensemble network ("": it has none)
    dns_name: str = ""  # <name>.internal, there


@attrs.frozen
class EventView:
    seq: int
    at: float
    kind: str
    payload: dict[str, Any]


@attrs.frozen
class DeploymentView:
    id: str
    phase: str
    owner: str
    created_at: float
    assignment: dict[str, str]
    allocations: tuple[AllocationView, ...]
    failure: str
    recent_events: tuple[EventView, ...]
    network: str = "none"  # the ensemble's subnet, or "none (why)"
