"""What a restarted provider does with what it finds in its database, decided without
I/O: which deployments it keeps hosting, how each of their allocations carries on, and
what it removes (and why, for the log).

A hosted deployment is kept unless its orchestrator has not asked after it within its
heartbeat (counted from the last time it did, across the downtime: by then the
orchestrator has given this provider up and may have placed it elsewhere), or it can
no longer be run here (its ensemble does not plan, an executor it needs is not open,
it holds no reservation, unless every allocation it has here completed: a completed
node's reservation is released at once). Each allocation of a kept deployment is made again:

- `adopt`: it had a live execution (not final, with an identity): adopt it, supervised
  again; if it cannot be adopted, its supervisor is told it ended while away and its
  restart policy decides;
- `pending`: it was never started: it waits for its orchestrator's start, as after
  allocate;
- `ended`: it had ended for good (completed, failed, stopped): it only reports that.

Reservations are restored by the book (`ReservationBook.from_snapshot`); those of a
removed deployment, and allocated ones of deployments no longer hosted, are released.
"""

from __future__ import annotations

import enum
from collections.abc import Collection

import attrs

from dms.ensemble import EnsembleError, load_ensemble
from dms.ensemble._spec import Ensemble
from dms.store import AllocationRecord, AllocationState, HostedDeployment, ReservationState
from dms.workload import ExecutorKind
from dms.workload.plan import PlanError, WorkloadPlan, plan_workload

from ._state import Saved


class Resume(enum.Enum):
    ADOPT = "adopt"
    PENDING = "pending"
    ENDED = "ended"


@attrs.frozen
class ResumedAllocation:
    record: AllocationRecord
    plan: WorkloadPlan
    how: Resume


@attrs.frozen
class KeptDeployment:
    record: HostedDeployment
    ensemble: Ensemble
    allocations: tuple[ResumedAllocation, ...]


@attrs.frozen
class RemovedDeployment:
    id: str
    reason: str


@attrs.frozen
class RestartPlan:
    kept: tuple[KeptDeployment, ...]
    removed: tuple[RemovedDeployment, ...]
    release: tuple[str, ...]  # reservation ids the book must let go
    forget_allocations: tuple[str, ...]  # allocation rows of no hosted deployment


def plan_restart(saved: Saved, now: float, executors: Collection[ExecutorKind]) -> RestartPlan:
    """Decide what a provider opening at Unix time `now`, with `executors` open, does
    with `saved`."""
    owners: dict[str, set[str]] = {}
    for reservation in saved.reservations:
        owners.setdefault(reservation.deployment_id, set()).add(reservation.orchestrator)
    allocations_by: dict[str, list[AllocationRecord]] = {}
    for allocation in saved.allocations:
        allocations_by.setdefault(allocation.deployment_id, []).append(allocation)

    kept: list[KeptDeployment] = []
    removed: list[RemovedDeployment] = []
    for hosted in saved.hosted:
        outcome = _keep(hosted, allocations_by.get(hosted.id, []),
                        owners.get(hosted.id, set()), now, executors)
        if isinstance(outcome, KeptDeployment):
            kept.append(outcome)
        else:
            removed.append(outcome)

    kept_ids = {k.record.id for k in kept}
    hosted_ids = {h.id for h in saved.hosted}
    release = tuple(
        r.id for r in saved.reservations
        if r.deployment_id not in kept_ids
        and (r.deployment_id in hosted_ids or r.state is ReservationState.ALLOCATED))
    forget = tuple(a.id for a in saved.allocations if a.deployment_id not in hosted_ids)
    return RestartPlan(tuple(kept), tuple(removed), release, forget)


def _keep(hosted: HostedDeployment, allocations: list[AllocationRecord], owners: set[str],
          now: float, executors: Collection[ExecutorKind]
          ) -> KeptDeployment | RemovedDeployment:
    silent = now - hosted.last_seen
    if silent > hosted.heartbeat:
        return RemovedDeployment(hosted.id, f"its orchestrator has not asked after it for "
                                            f"{silent:.0f} s (its heartbeat is "
                                            f"{hosted.heartbeat:g} s)")
    completed = bool(allocations) and all(
        a.state is AllocationState.COMPLETED for a in allocations)
    if not owners and not completed:  # a completed node's reservation is released
        return RemovedDeployment(hosted.id, "it holds no reservation here")
    if owners and owners != {hosted.orchestrator}:
        return RemovedDeployment(hosted.id, "its reservations name another orchestrator")
    try:
        ensemble = load_ensemble(hosted.ensemble, file=f"<deployment {hosted.id}>")
    except EnsembleError as error:
        return RemovedDeployment(hosted.id, f"its ensemble does not load: {error}")
    resumed = []
    for record in sorted(allocations, key=lambda a: (a.created_at, a.id)):
        try:
            plan = plan_workload(ensemble, record.name)
        except PlanError as error:
            return RemovedDeployment(hosted.id, f"allocation {record.name}: {error}")
        if plan.execution.executor not in executors:
            return RemovedDeployment(hosted.id, f"allocation {record.name}: executor "
                                                f"{plan.execution.executor.value} is not "
                                                f"open here")
        resumed.append(ResumedAllocation(record, plan, _how(record)))
    if not resumed:
        return RemovedDeployment(hosted.id, "it has no allocations here")
    return KeptDeployment(hosted, ensemble, tuple(resumed))


def _how(record: AllocationRecord) -> Resume:
    if record.state.final:
        return Resume.ENDED
    if record.state is AllocationState.PENDING and record.execution is None:
        return Resume.PENDING
    return Resume.ADOPT
