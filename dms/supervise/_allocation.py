"""One allocation under supervision: its execution, its health checks, its restarts.

The allocation actor runs `AllocationSupervisor.run` in its nursery and reads
`StatusEvent`s from the channel it passed in. `run_once` (one start-to-failure cycle)
is the building block a `SupervisorTree` drives when restarts are decided for a
group of allocations instead of one.

Cancelling `run` stops the execution gracefully (shielded, `stop_grace` seconds) and
emits STOPPED, so the owner stops an allocation by cancelling its scope.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import attrs
import trio

from dms.cleanup import shielded_cleanup
from dms.executor._errors import ExecutorError
from dms.executor._protocol import Execution, Executor
from dms.executor._spec import ExecutionSpec
from dms.executor._status import ExecutionState, ExitStatus
from dms.supervise._events import EventKind, EventSink, StatusEvent, as_sink
from dms.supervise._health import HealthCheck, HealthLedger, HealthState, ProbeResult
from dms.supervise._policy import (
    CrashLoop,
    NotRestarted,
    RestartDecision,
    RestartPolicy,
    RestartTracker,
)
from dms.supervise._probes import run_probe
from dms.workload import Recovery, WorkloadKind

# Logs attached to EXITED/COMPLETED events.
LOG_TAIL_LINES = 20
# Beyond the stop grace, time an executor gets to confirm a stop, and to remove a run.
STOP_MARGIN = 5.0
REMOVE_DEADLINE = 30.0
_NOT_RESTARTED_EVENT = {
    Recovery.STAY_DOWN: EventKind.STAYED_DOWN,
    Recovery.REDEPLOY: EventKind.REDEPLOY_REQUESTED,
}
DEFAULT_POLICY = RestartPolicy()


@attrs.frozen
class Completed:
    exit: ExitStatus


@attrs.frozen
class Failed:
    reason: str
    ran_for: float
    exit: ExitStatus | None = None


@attrs.frozen
class Stopped:
    pass


Outcome = Completed | Failed | Stopped


@attrs.frozen
class AllocationStatus:
    name: str
    phase: EventKind | None
    restarts: int
    health: HealthState | None
    health_history: tuple[ProbeResult, ...]
    execution_state: ExecutionState | None
    unobservable: str = ""
    """Why the execution's engine cannot say how it is now (see ExecutionStatus)."""


class AllocationSupervisor:
    def __init__(
        self,
        executor: Executor,
        spec: ExecutionSpec,
        events: EventSink | trio.MemorySendChannel[StatusEvent],
        *,
        health: HealthCheck | None = None,
        policy: RestartPolicy = DEFAULT_POLICY,
        stop_grace: float = 10.0,
    ) -> None:
        self.executor = executor
        self.spec = spec
        self.health = health
        self.policy = policy
        self.stop_grace = stop_grace
        self.tracker = RestartTracker(policy)
        self.restarts = 0  # by this supervisor or by a tree it belongs to
        self.execution: Execution | None = None
        self.events = as_sink(events)
        self._phase: EventKind | None = None
        self._ledger: HealthLedger | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    def status(self) -> AllocationStatus:
        execution = self.execution.status() if self.execution else None
        return AllocationStatus(
            name=self.name,
            phase=self._phase,
            restarts=self.restarts,
            health=self._ledger.state if self._ledger else None,
            health_history=tuple(self._ledger.history) if self._ledger else (),
            execution_state=execution.state if execution else None,
            unobservable=execution.unobservable if execution else "",
        )

    def emit(self, kind: EventKind, **fields: object) -> None:
        """Record the phase and offer the event to the owner without waiting for it."""
        self._phase = kind
        event = StatusEvent(
            allocation=self.name,
            kind=kind,
            at=trio.current_time(),
            restarts=self.restarts,
            **fields,  # type: ignore[arg-type]
        )
        self.events.put(event)

    def decide(self, tracker: RestartTracker, failure: Failed) -> RestartDecision:
        """This allocation's recovery applied to `failure`, counted by `tracker` (its own,
        or its tree's); a failure that is not restarted is reported here."""
        decision = tracker.decide(self.policy.recovery, trio.current_time(), failure.ran_for)
        if isinstance(decision, NotRestarted):
            self.emit(_NOT_RESTARTED_EVENT[decision.recovery], detail=failure.reason)
        return decision

    async def run(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> Outcome:
        """Supervise until completed, stopped, given up or handed to the orchestrator.
        `nursery.start(sup.run)` returns once the first run is ready (or failed)."""
        ready = CallOnce(task_status.started)
        try:
            while True:
                outcome = await self.run_once(on_ready=ready)
                ready()
                if not isinstance(outcome, Failed):
                    return outcome
                decision = self.decide(self.tracker, outcome)
                if isinstance(decision, NotRestarted):
                    return outcome
                if isinstance(decision, CrashLoop):
                    self.emit(
                        EventKind.CRASH_LOOP,
                        detail=f"{decision.restarts} restarts within {decision.period:g}s; "
                        f"last failure: {outcome.reason}",
                    )
                    return outcome
                self.restarts += 1
                self.emit(EventKind.RESTARTING, detail=outcome.reason, delay=decision.delay)
                await trio.sleep(decision.delay)
        finally:
            ready()

    async def run_once(self, on_ready: Callable[[], None] = lambda: None) -> Outcome:
        """Start the workload and watch it until it ends, turns unhealthy or is cancelled.
        `on_ready` is called when it is running (healthy, when a check is configured)."""
        self.emit(EventKind.STARTING)
        await self._remove_previous()
        began = trio.current_time()
        try:
            execution = await self.executor.start(self.spec)
        except ExecutorError as error:
            self.emit(EventKind.START_FAILED, detail=str(error))
            return Failed(reason=f"start failed: {error}", ran_for=0.0)
        except Exception as error:  # an executor bug or an OS/transport error: contained
            detail = f"{type(error).__name__}: {error}"
            self.emit(EventKind.START_FAILED, detail=detail)
            return Failed(reason=f"start failed: {detail}", ran_for=0.0)
        self.execution = execution
        self._ledger = None
        self.emit(EventKind.RUNNING, detail=execution.status().enforcement.value)
        if self.health is None:
            on_ready()
        unhealthy: list[ProbeResult] = []
        try:
            async with trio.open_nursery() as watchers:

                async def watch_health(check: HealthCheck) -> None:
                    unhealthy.extend(await self._monitor(execution, check, on_ready))
                    watchers.cancel_scope.cancel()

                if self.health is not None:
                    watchers.start_soon(watch_health, self.health)
                await execution.wait()
                watchers.cancel_scope.cancel()
        finally:
            if execution.status().exit is None:
                with shielded_cleanup(self.stop_grace + STOP_MARGIN):
                    await execution.stop(self.stop_grace)
                if not unhealthy:  # cancelled by the owner
                    self.emit(EventKind.STOPPED, exit=execution.status().exit)
        ran_for = trio.current_time() - began
        exit = await execution.wait()
        if unhealthy:
            last = unhealthy[-1].detail
            self.emit(EventKind.UNHEALTHY, detail=last, health=tuple(unhealthy), exit=exit)
            return Failed(reason=f"unhealthy: {last}", ran_for=ran_for, exit=exit)
        tail = (await execution.logs(LOG_TAIL_LINES)).text
        if self.spec.kind is WorkloadKind.TASK and exit.succeeded:
            self.emit(EventKind.COMPLETED, exit=exit, logs_tail=tail, detail=exit.describe())
            return Completed(exit)
        self.emit(EventKind.EXITED, exit=exit, logs_tail=tail, detail=exit.describe())
        return Failed(reason=f"exited: {exit.describe()}", ran_for=ran_for, exit=exit)

    async def _remove_previous(self) -> None:
        """A restart releases the ended run's container/image/directory; the latest run is
        kept so its logs stay readable after the supervisor returns."""
        previous, self.execution = self.execution, None
        if previous is None:
            return
        # Best effort: whatever is left is removed when the executor closes.
        with shielded_cleanup(REMOVE_DEADLINE), contextlib.suppress(Exception):
            await previous.remove()

    async def _monitor(
        self, execution: Execution, check: HealthCheck, on_ready: Callable[[], None]
    ) -> list[ProbeResult]:
        """Probe until unhealthy; returns the history that made it so."""
        ledger = HealthLedger(check, started_at=trio.current_time())
        self._ledger = ledger
        delay = ledger.next_delay(trio.current_time())
        while True:
            await trio.sleep(delay)
            result = await run_probe(check, execution)
            changed = ledger.record(result)
            if changed is HealthState.UNHEALTHY:
                return list(ledger.history)
            if changed is HealthState.HEALTHY:
                self.emit(
                    EventKind.HEALTHY, detail=result.detail, health=tuple(ledger.history)
                )
                on_ready()
            delay = max(0.0, ledger.next_delay(trio.current_time()) - result.duration)


class CallOnce:
    """Calls `action` the first time only (task_status.started may be called once)."""

    def __init__(self, action: Callable[[], object]) -> None:
        self._action: Callable[[], object] | None = action

    def __call__(self) -> None:
        if self._action is not None:
            action, self._action = self._action, None
            action()
