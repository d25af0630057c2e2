"""Supervision of running allocations: health checks (command, http, tcp), restart
policy with backoff and crash-loop limits, failure recovery and OTP-style supervisor
trees with a control interface. Every transition is a `StatusEvent` put, without
waiting, on a bounded channel the owner reads (`open_event_channel`).

`Backoff` (`dms.backoff`) and `Recovery`, `SupervisorStrategy` (`dms.workload`) are
re-exported because policies are written with them."""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dms.backoff import Backoff
    from dms.supervise._allocation import (
        AllocationStatus,
        AllocationSupervisor,
        Completed,
        Failed,
        Outcome,
        Stopped,
    )
    from dms.supervise._events import EventKind, EventSink, StatusEvent, open_event_channel
    from dms.supervise._health import (
        CommandProbe,
        ExpectedResponse,
        HealthCheck,
        HealthLedger,
        HealthState,
        HttpProbe,
        InvalidHealthCheck,
        ProbeResult,
        TcpProbe,
    )
    from dms.supervise._policy import (
        CrashLoop,
        DependencyCycle,
        InvalidPolicy,
        NotRestarted,
        RestartAfter,
        RestartDecision,
        RestartIntensity,
        RestartPolicy,
        RestartTracker,
        start_order,
    )
    from dms.supervise._probes import http_get, run_probe
    from dms.supervise._tree import SupervisorTree, TreeNotRunning, TreeStatus, UnknownChild
    from dms.workload import Recovery, SupervisorStrategy
else:
    from dms._exports import lazy_exports

    __getattr__, __dir__ = lazy_exports(__name__, {
        "dms.backoff": ("Backoff",),
        "dms.supervise._allocation": (
            "AllocationStatus", "AllocationSupervisor", "Completed", "Failed", "Outcome",
            "Stopped",
        ),
        "dms.supervise._events": ("EventKind", "EventSink", "StatusEvent", "open_event_channel"),
        "dms.supervise._health": (
            "CommandProbe", "ExpectedResponse", "HealthCheck", "HealthLedger", "HealthState",
            "HttpProbe", "InvalidHealthCheck", "ProbeResult", "TcpProbe",
        ),
        "dms.supervise._policy": (
            "CrashLoop", "DependencyCycle", "InvalidPolicy", "NotRestarted", "RestartAfter",
            "RestartDecision", "RestartIntensity", "RestartPolicy", "RestartTracker",
            "start_order",
        ),
        "dms.supervise._probes": ("http_get", "run_probe"),
        "dms.supervise._tree": ("SupervisorTree", "TreeNotRunning", "TreeStatus", "UnknownChild"),
        "dms.workload": ("Recovery", "SupervisorStrategy"),
    })

__all__ = [
    "AllocationStatus",
    "AllocationSupervisor",
    "Backoff",
    "CommandProbe",
    "Completed",
    "CrashLoop",
    "DependencyCycle",
    "EventKind",
    "EventSink",
    "ExpectedResponse",
    "Failed",
    "HealthCheck",
    "HealthLedger",
    "HealthState",
    "HttpProbe",
    "InvalidHealthCheck",
    "InvalidPolicy",
    "NotRestarted",
    "Outcome",
    "ProbeResult",
    "Recovery",
    "RestartAfter",
    "RestartDecision",
    "RestartIntensity",
    "RestartPolicy",
    "RestartTracker",
    "StatusEvent",
    "Stopped",
    "SupervisorStrategy",
    "SupervisorTree",
    "TcpProbe",
    "TreeNotRunning",
    "TreeStatus",
    "UnknownChild",
    "http_get",
    "open_event_channel",
    "run_probe",
    "start_order",
]
