"""From an ensemble allocation to what a provider runs: `plan_workload`.

    plan = plan_workload(ensemble, "web", read_file=lambda path: Path(path).read_bytes())
    async with ProcessExecutor(root) as executor:
        supervisor = AllocationSupervisor(executor, plan.execution, events,
                                          health=plan.health, policy=plan.restart)

A sub-package of `dms.workload` because it imports the ensemble, executor and
supervise packages, which import `dms.workload` for their vocabulary.
"""

from dms.workload.plan._errors import (
    InvalidWorkload,
    MissingSource,
    PlanError,
    UnknownAllocation,
    UnsupportedField,
)
from dms.workload.plan._plan import ReadFile, WorkloadPlan, plan_workload

__all__ = [
    "InvalidWorkload",
    "MissingSource",
    "PlanError",
    "ReadFile",
    "UnknownAllocation",
    "UnsupportedField",
    "WorkloadPlan",
    "plan_workload",
]
