"""Supervision of running allocations: health checks (command, http, tcp), restart
policy with backoff and crash-loop limits, failure recovery and OTP-style supervisor
trees. Every transition is a `StatusEvent` on a trio channel the owner reads."""

from dms.supervise.allocation import (
    AllocationStatus,
    AllocationSupervisor,
    Completed,
    Failed,
    Outcome,
    Stopped,
)
from dms.supervise.events import EventKind, StatusEvent
from dms.supervise.health import (
    CommandProbe,
    HealthCheck,
    HealthLedger,
    HealthState,
    HttpProbe,
    InvalidHealthCheck,
    ProbeResult,
    TcpProbe,
)
from dms.supervise.policy import (
    Backoff,
    CrashLoop,
    DependencyCycle,
    FailureRecovery,
    InvalidPolicy,
    RestartAfter,
    RestartIntensity,
    RestartPolicy,
    RestartTracker,
    SupervisorStrategy,
    start_order,
)
from dms.supervise.probes import http_get, run_probe
from dms.supervise.tree import SupervisorTree

__all__ = [
    "AllocationStatus",
    "AllocationSupervisor",
    "Backoff",
    "CommandProbe",
    "Completed",
    "CrashLoop",
    "DependencyCycle",
    "EventKind",
    "Failed",
    "FailureRecovery",
    "HealthCheck",
    "HealthLedger",
    "HealthState",
    "HttpProbe",
    "InvalidHealthCheck",
    "InvalidPolicy",
    "Outcome",
    "ProbeResult",
    "RestartAfter",
    "RestartIntensity",
    "RestartPolicy",
    "RestartTracker",
    "StatusEvent",
    "Stopped",
    "SupervisorStrategy",
    "SupervisorTree",
    "TcpProbe",
    "http_get",
    "run_probe",
    "start_order",
]
