"""An allocation actor: one ensemble allocation on this provider, its supervisor, its
numbered events and the behaviors its orchestrator controls it with.

Only the orchestrator that allocated it can call it: the allocation actor delegates
`/dms/allocation` over its own id to that orchestrator, and each behavior checks that
the chain it was called with rests on that delegation (the provider's anchors can
prove `/dms/allocation` too, but this allocation is not theirs to drive).
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from dms.actor import Actor, BehaviorFailed, Message, Role, behavior
from dms.executor import ExecutionSpec, Executor, LogChunk, LogPosition, PositionedLogs
from dms.executor._protocol import Execution
from dms.store import AllocationState
from dms.supervise import (
    AllocationSupervisor,
    HealthCheck,
    Outcome,
    RestartPolicy,
    StatusEvent,
    open_event_channel,
)

from ._resume import EndedWhileAway, ResumingExecutor
from ._wire import (
    ALLOCATION_LOGS,
    ALLOCATION_START,
    ALLOCATION_STATUS,
    ALLOCATION_STOP,
    MAX_LOG_LINES,
    MAX_LOG_REPLY,
    AllocationEvent,
    AllocationReport,
    LogsQuery,
    LogsReply,
    StatusQuery,
)

log = logging.getLogger("dms.provider")

EVENTS_KEPT = 256
"""Events an allocation keeps for its orchestrator to read (the oldest go first)."""
START_TIMEOUT = 300.0
"""How long `start` waits for the workload to be ready (healthy, if checked)."""
STOP_TIMEOUT = 30.0
SETTLE_TIMEOUT = 1.0
_ENDED_PHASE = {AllocationState.COMPLETED: "completed", AllocationState.FAILED: "exited",
                AllocationState.STOPPED: "stopped"}

EventHook = Callable[["AllocationRole", AllocationEvent], Awaitable[None]]
"""Called with each event once it is numbered (the provider records the allocation's
state and its execution's identity)."""


class AllocationRole(Role):
    """Run with `spawn(main=role.main)` and `register(role)` on the same actor.

    After a provider restart an allocation is made again in one of three ways:
    `resumed` with an adopted execution, which it supervises from there (started at
    once, not waiting for a start); `resumed` with `EndedWhileAway`, which its
    supervisor reports and its restart policy acts on; or `ended` in the final state it
    had, which it only reports."""

    def __init__(self, allocation: str, node: str, spec: ExecutionSpec, executor: Executor,
                 *, health: HealthCheck | None, policy: RestartPolicy,
                 clock: Callable[[], float], on_heartbeat: Callable[[], None],
                 resumed: Execution | EndedWhileAway | None = None,
                 ended: AllocationState | None = None,
                 on_event: EventHook | None = None) -> None:
        self.allocation = allocation
        self.node = node
        self.spec = spec
        self.executor = executor
        self.clock = clock
        self.on_event = on_event
        self._on_heartbeat = on_heartbeat
        self._sink, self._events_in = open_event_channel(EVENTS_KEPT)
        self.supervisor = AllocationSupervisor(
            executor if resumed is None else ResumingExecutor(executor, resumed), spec,
            self._sink, health=health, policy=policy)
        self.events: collections.deque[AllocationEvent] = collections.deque(maxlen=EVENTS_KEPT)
        self._numbered = 0
        self._numbering = False
        self.outcome: Outcome | None = None
        self._start = trio.Event()
        self._ready = trio.Event()
        self._ended = trio.Event()
        self._scope = trio.CancelScope()
        self._ended_as = ended
        if resumed is not None:
            self._start.set()  # it was started before the restart
        if ended is not None:
            if ended not in _ENDED_PHASE:
                raise ValueError(f"ended: {ended.value!r} is not a final state")
            self._start.set()
            self._scope.cancel()
            self._ended.set()

    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    def note(self, kind: str, detail: str) -> None:
        """An event of the allocation's own (not its supervisor's), e.g. that it was
        re-adopted after a restart, numbered with the others."""
        self._numbered += 1
        self.events.append(AllocationEvent(number=self._numbered, kind=kind, at=self.clock(),
                                           detail=detail[:1024]))

    # -- the actor's main task ------------------------------------------------------

    async def main(self, actor: Actor) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._number_events)
            await self._start.wait()
            if not self._scope.cancel_called:  # not stopped before it started
                await nursery.start(self._supervise)
            self._ready.set()
            await self._ended.wait()
            await trio.sleep(0)  # let the last events be numbered
            await trio.sleep_forever()  # its report stays readable until it is stopped

    async def _supervise(self, *, task_status: trio.TaskStatus[None]) -> None:
        try:
            with self._scope:
                self.outcome = await self.supervisor.run(task_status=task_status)
        finally:
            self._ended.set()
            self._ready.set()

    async def _number_events(self) -> None:
        offset = self.clock() - trio.current_time()
        async for event in self._events_in:
            self._numbering = True
            try:
                self._numbered += 1
                numbered = _numbered(self._numbered, event, offset)
                self.events.append(numbered)
                if self.on_event is not None:
                    await self.on_event(self, numbered)
            finally:
                self._numbering = False

    async def _settle(self) -> None:
        """Let the events emitted so far be numbered before a report is made of them
        (an answer to `start` must carry the failure that ended the start)."""
        with trio.move_on_after(SETTLE_TIMEOUT):
            while self._numbering or self._events_in.statistics().current_buffer_used:
                await trio.sleep(0.005)

    # -- behaviors --------------------------------------------------------------------

    @behavior(ALLOCATION_START)
    async def start(self, message: Message[Any]) -> AllocationReport:
        """Start the workload; answers once it is ready (healthy when a check is
        configured) or has failed to start. Starting again only reports."""
        self._check_caller(message)
        self._heartbeat()
        self._start.set()
        with trio.move_on_after(START_TIMEOUT):
            await self._ready.wait()
        await self._settle()
        return self.report()

    @behavior(ALLOCATION_STOP)
    async def stop(self, message: Message[Any]) -> AllocationReport:
        self._check_caller(message)
        await self.stop_workload()
        await self._settle()
        return self.report()

    @behavior(ALLOCATION_STATUS, args=StatusQuery, replay_harmless=True)
    async def status(self, message: Message[StatusQuery]) -> AllocationReport:
        """The allocation's state and its events after `after`; also the heartbeat
        that keeps the allocation's deployment alive here. Replay-harmless: the
        heartbeat only moves when the orchestrator was last heard from forward (a max),
        so two runs leave what the later alone would; and the report goes to the
        orchestrator that asked. Taken, then, when its id cannot be recorded on a full
        disk: the deployment is not torn down for want of a place to note a poll
        (spec/security.md, fault model)."""
        self._check_caller(message)
        self._heartbeat()
        await self._settle()
        return self.report(message.args.after)

    @behavior(ALLOCATION_LOGS, args=LogsQuery)
    async def logs(self, message: Message[LogsQuery]) -> LogsReply:
        """The workload's output (its current run's), bounded: `MAX_LOG_LINES` of tail,
        `MAX_LOG_REPLY` bytes in all. Before it has started: nothing, from the start."""
        self._check_caller(message)
        query = message.args
        if isinstance(query.tail, bool) or not isinstance(query.tail, int) \
                or not 0 <= query.tail <= MAX_LOG_LINES:
            raise BehaviorFailed(f"tail: {query.tail!r} is not a line count from 0 to "
                                 f"{MAX_LOG_LINES}", name="InvalidArgs")
        streams = [name for name in ("stdout", "stderr") if getattr(query, name)]
        limit = MAX_LOG_REPLY // max(len(streams), 1)
        execution = self.supervisor.execution
        chunks: dict[str, LogChunk] = {}
        for name in streams:
            after: LogPosition | None = getattr(query, f"{name}_after")
            if execution is None:
                chunks[name] = LogChunk("", LogPosition("", 0))
            elif isinstance(execution, PositionedLogs):
                chunks[name] = await execution.read_log(name, after, tail=query.tail,
                                                        limit=limit)
            else:  # tails only: nothing to read on from
                text = getattr(await execution.logs(tail=query.tail), name)
                chunks[name] = LogChunk(text.encode()[-limit:].decode(errors="replace"))
        return LogsReply(**chunks)

    # -- for the provider -------------------------------------------------------------

    async def stop_workload(self) -> None:
        """Stop the workload (gracefully: the supervisor stops its execution on
        cancellation) and wait until it has; harmless when it never started."""
        if not self._start.is_set():
            self._start.set()
            self._scope.cancel()
            self._ended.set()
            return
        self._scope.cancel()
        with trio.move_on_after(STOP_TIMEOUT):
            await self._ended.wait()

    def report(self, after: int = 0) -> AllocationReport:
        status = self.supervisor.status()
        phase = None if status.phase is None else status.phase.value
        if self._ended_as is not None:
            phase = _ENDED_PHASE[self._ended_as]
        health = None if status.health is None else status.health.value
        if status.unobservable:  # not failed, not healthy: nobody can tell for now
            health = f"unobservable: {status.unobservable}"
        return AllocationReport(
            allocation=self.allocation,
            phase=phase,
            health=health,
            restarts=status.restarts,
            events=tuple(e for e in self.events if e.number > after),
            ended=self._ended.is_set(),
        )

    def _heartbeat(self) -> None:
        self._on_heartbeat()

    def _check_caller(self, message: Message[Any]) -> None:
        if message.chain.subject != self.actor.id:
            raise BehaviorFailed(
                f"allocation {self.allocation} is controlled only through its own "
                f"delegation to the orchestrator that allocated it", name="NotYourAllocation")


def _numbered(number: int, event: StatusEvent, offset: float) -> AllocationEvent:
    return AllocationEvent(
        number=number,
        kind=event.kind.value,
        at=event.at + offset,
        detail=event.detail[:1024],
        exit_code=None if event.exit is None else event.exit.exit_code,
        logs_tail=event.logs_tail[-4096:],
    )
