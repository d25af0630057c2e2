"""One workload vocabulary for the ensemble file, the executors and supervision.

    from dms.workload import ExecutorKind, Recovery, SupervisorStrategy

The translation of an ensemble allocation into what a provider runs is
`dms.workload.plan` (it imports the packages that import this one).
"""

from dms.workload._vocabulary import (
    AllocationRecovery,
    ExecutorKind,
    HealthCheckKind,
    Recovery,
    ResponseMatch,
    SupervisorStrategy,
    WorkloadKind,
)

__all__ = [
    "AllocationRecovery",
    "ExecutorKind",
    "HealthCheckKind",
    "Recovery",
    "ResponseMatch",
    "SupervisorStrategy",
    "WorkloadKind",
]
