"""Executors run one allocation's workload with enforced limits behind one protocol:
`process` (embedded default), `docker` (docker SDK) and `firecracker` (API socket).

`ExecutorKind` and `WorkloadKind` are `dms.workload`'s, re-exported because
`ExecutionSpec` is written with them."""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dms.executor._adoption import Adoptable
    from dms.executor._errors import (
        EngineUnavailable,
        ExecUnsupported,
        ExecutorError,
        ExecutorNotOpen,
        FirecrackerApiError,
        FirecrackerUnavailable,
        ImageUnavailable,
        InvalidSpec,
        NotAdoptable,
        ProvisionFailed,
    )
    from dms.executor._process import ProcessExecution, ProcessExecutor
    from dms.executor._protocol import Execution, Executor, PositionedLogs
    from dms.executor._spec import (
        ExecutionSpec,
        FileDelivery,
        FirecrackerBoot,
        PortMapping,
        ProvisionScript,
    )
    from dms.executor._status import (
        ExecResult,
        ExecutionState,
        ExecutionStatus,
        ExitStatus,
        LimitEnforcement,
        LogChunk,
        LogPosition,
        Logs,
        ResourceStats,
    )
    from dms.workload import ExecutorKind, WorkloadKind
else:
    from dms._exports import lazy_exports

    __getattr__, __dir__ = lazy_exports(__name__, {
        "dms.executor._adoption": ("Adoptable",),
        "dms.executor._errors": (
            "EngineUnavailable", "ExecUnsupported", "ExecutorError", "ExecutorNotOpen",
            "FirecrackerApiError", "FirecrackerUnavailable", "ImageUnavailable", "InvalidSpec",
            "NotAdoptable", "ProvisionFailed",
        ),
        "dms.executor._process": ("ProcessExecution", "ProcessExecutor"),
        "dms.executor._protocol": ("Execution", "Executor", "PositionedLogs"),
        "dms.executor._spec": (
            "ExecutionSpec", "FileDelivery", "FirecrackerBoot", "PortMapping", "ProvisionScript",
        ),
        "dms.executor._status": (
            "ExecResult", "ExecutionState", "ExecutionStatus", "ExitStatus", "LimitEnforcement",
            "LogChunk", "LogPosition", "Logs", "ResourceStats",
        ),
        "dms.workload": ("ExecutorKind", "WorkloadKind"),
    })

__all__ = [
    "Adoptable",
    "EngineUnavailable",
    "ExecResult",
    "ExecUnsupported",
    "Execution",
    "ExecutionSpec",
    "ExecutionState",
    "ExecutionStatus",
    "Executor",
    "ExecutorError",
    "ExecutorKind",
    "ExecutorNotOpen",
    "ExitStatus",
    "FileDelivery",
    "FirecrackerApiError",
    "FirecrackerBoot",
    "FirecrackerUnavailable",
    "ImageUnavailable",
    "InvalidSpec",
    "LimitEnforcement",
    "LogChunk",
    "LogPosition",
    "Logs",
    "NotAdoptable",
    "PositionedLogs",
    "PortMapping",
    "ProcessExecution",
    "ProcessExecutor",
    "ProvisionFailed",
    "ProvisionScript",
    "ResourceStats",
    "WorkloadKind",
]
