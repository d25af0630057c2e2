"""A supervisor over several allocations, with Erlang/OTP restart strategies.

Children start one by one in `depends_on` order, each after the previous is ready
(healthy when it has a health check); a child whose dependency failed to come up is
held back until a restart brings that dependency up. When a child with failure_recovery `restart`
fails, the strategy names the children to restart: the others among them are stopped
in reverse start order, then all are started again in start order after the tree's
backoff delay. Children with `stay_down` or `redeploy` are not restarted by the tree
(OTP's temporary children); a completed task is not restarted either. More restarts
than the tree's intensity allows is a crash loop: the tree stops every child, in
reverse order, and returns.

Cancelling `run` also stops the children in reverse start order.

While `run` is running, the owner controls single children: `stop_child` stops one and
keeps it down (no strategy restarts it) until `restart_child`, which (re)starts it
whether it was running, failed or stopped; `status` reports the tree and its children.
Control calls and the tree's own restarts take turns, so each sees a settled tree.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import attrs
import trio

from dms.cleanup import shielded_cleanup
from dms.supervise._allocation import (
    AllocationStatus,
    AllocationSupervisor,
    CallOnce,
    Failed,
    Outcome,
    Stopped,
)
from dms.supervise._events import EventKind, EventSink, StatusEvent, as_sink
from dms.supervise._policy import (
    CrashLoop,
    InvalidPolicy,
    NotRestarted,
    RestartPolicy,
    RestartTracker,
    start_order,
)
from dms.workload import Recovery, SupervisorStrategy

DEFAULT_TREE_POLICY = RestartPolicy()


class TreeNotRunning(RuntimeError):
    """A control call was made while the tree's `run` is not running."""


class UnknownChild(KeyError):
    """A control call named no child of the tree."""


@attrs.frozen
class TreeStatus:
    name: str
    strategy: SupervisorStrategy
    restarts: int  # decided by the tree's strategy (not owner-requested restarts)
    children: tuple[AllocationStatus, ...]  # in start order
    stopped: frozenset[str]  # children the owner stopped
    events_dropped: int  # tree events a full event channel could not take


class SupervisorTree:
    def __init__(
        self,
        name: str,
        children: Sequence[AllocationSupervisor],
        events: EventSink | trio.MemorySendChannel[StatusEvent],
        *,
        strategy: SupervisorStrategy = SupervisorStrategy.ONE_FOR_ONE,
        depends_on: Mapping[str, Sequence[str]] | None = None,
        policy: RestartPolicy = DEFAULT_TREE_POLICY,
    ) -> None:
        self.name = name
        self.strategy = strategy
        self.children = {child.name: child for child in children}
        if len(self.children) != len(children):
            raise InvalidPolicy(f"supervisor {name!r}: allocation names must be unique")
        needs = dict(depends_on or {})
        unknown = set(needs) - set(self.children)
        if unknown:
            raise InvalidPolicy(f"supervisor {name!r}: depends_on names unknown {sorted(unknown)}")
        self._needs = {child: tuple(needs.get(child, ())) for child in self.children}
        self.order = start_order(self._needs)
        self._waiting: set[str] = set()  # not started: a dependency is not up
        self.tracker = RestartTracker(policy)
        self.events = as_sink(events)
        self._nursery: trio.Nursery | None = None
        self._scopes: dict[str, trio.CancelScope] = {}
        self._finished: dict[str, trio.Event] = {}
        self._ready: dict[str, trio.Event] = {}
        # A failure is reported with the generation (start count) of the run that failed:
        # one that a restart has already superseded is stale and ignored.
        self._generation: dict[str, int] = {}
        self._failed: set[str] = set()  # restartable failures queued, not yet handled
        self._held: set[str] = set()  # stopped by the owner: down until restart_child
        self._turn = trio.Lock()  # the tree's restarts and the owner's control calls
        self._failures_send, self._failures = trio.open_memory_channel[tuple[str, int, Failed]](
            math.inf
        )

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Start every child in order, then supervise until a crash loop or cancellation."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                async with self._turn:
                    await self._start_in_order(self.order)
                task_status.started()
                async for name, generation, failure in self._failures:
                    async with self._turn:
                        if generation != self._generation[name] or name in self._held:
                            continue  # superseded by a restart, or stopped by the owner
                        if not await self._restart_after(name, failure):
                            break
            finally:
                # children are shielded from this nursery's cancellation: stop them in
                # order; each child's stop is bounded by its own stop grace
                with shielded_cleanup(math.inf):
                    await self._halt_all()
                self._nursery = None

    async def stop_child(self, name: str) -> None:
        """Stop `name` (gracefully, like a tree shutdown) and keep it down: strategies do
        not restart it and its dependents are not touched. Returns once it has stopped."""
        self._child(name)
        async with self._turn:
            self._require_running()
            self._held.add(name)
            self._failed.discard(name)
            self._waiting.discard(name)
            await self._halt(name)

    async def restart_child(self, name: str) -> None:
        """Stop `name` if it runs, then start it again (it is held back while one of its
        dependencies is not up). Undoes `stop_child`. Owner-requested: it does not count
        towards the tree's restart intensity. Returns once it is ready or has failed."""
        child = self._child(name)
        async with self._turn:
            self._require_running()
            self._held.discard(name)
            await self._halt(name)
            child.restarts += 1
            child.emit(EventKind.RESTARTING, detail="restart requested", delay=0.0)
            await self._start_in_order([name])

    def child_status(self, name: str) -> AllocationStatus:
        return self._child(name).status()

    def status(self) -> TreeStatus:
        return TreeStatus(
            name=self.name,
            strategy=self.strategy,
            restarts=self.tracker.total,
            children=tuple(self.children[name].status() for name in self.order),
            stopped=frozenset(self._held),
            events_dropped=self.events.dropped,
        )

    def _child(self, name: str) -> AllocationSupervisor:
        try:
            return self.children[name]
        except KeyError:
            known = ", ".join(self.order)
            raise UnknownChild(f"supervisor {self.name!r} has no child {name!r} ({known})") from None

    def _require_running(self) -> None:
        if self._nursery is None:
            raise TreeNotRunning(f"supervisor {self.name!r} is not running: start its run() first")

    def live(self) -> list[str]:
        """Children whose execution is currently supervised, in start order."""
        return [name for name in self.order if name in self._scopes and self._ready[name].is_set()]

    async def _start_in_order(self, names: Sequence[str]) -> None:
        """Start `names` in order, holding back a child while one of its dependencies is not
        up; held-back children are started with the next restart that brings it up."""
        for name in names:
            if all(need in self.live() for need in self._needs[name]):
                self._waiting.discard(name)
                await self._start(name)
            else:
                self._waiting.add(name)

    async def _start(self, name: str) -> None:
        """Start a child and wait until it is ready (or has already failed)."""
        assert self._nursery is not None
        ready = self._ready[name] = trio.Event()
        self._failed.discard(name)
        generation = self._generation[name] = self._generation.get(name, 0) + 1
        # not nursery.start: the child's shielded scope must not sit in start()'s limbo
        self._nursery.start_soon(self._supervise_child, name, generation, ready)
        await ready.wait()

    async def _supervise_child(self, name: str, generation: int, ready_event: trio.Event) -> None:
        child = self.children[name]
        ready = CallOnce(ready_event.set)
        outcome: Outcome = Stopped()
        finished = self._finished[name] = trio.Event()
        # shielded from the tree's own cancellation so that shutdown can go in reverse order
        scope = self._scopes[name] = trio.CancelScope(shield=True)
        try:
            with scope:
                outcome = await child.run_once(on_ready=ready)
        finally:
            del self._scopes[name]
            ready()
            finished.set()
        if not isinstance(outcome, Failed):
            return
        if child.policy.recovery is Recovery.RESTART:
            self._failed.add(name)  # an all/rest-for-one restart before it is handled takes it along
        self._failures_send.send_nowait((name, generation, outcome))

    async def _halt(self, name: str) -> None:
        scope = self._scopes.get(name)
        if scope is not None:
            scope.cancel()
            await self._finished[name].wait()

    async def _halt_all(self) -> None:
        for name in reversed(self.order):
            await self._halt(name)

    async def _restart_after(self, failed: str, failure: Failed) -> bool:
        """Apply the strategy to one failure; False when the tree gives up."""
        decision = self.children[failed].decide(self.tracker, failure)
        if isinstance(decision, NotRestarted):
            return True
        if isinstance(decision, CrashLoop):
            self._emit(
                EventKind.CRASH_LOOP,
                f"{decision.restarts} restarts within {decision.period:g}s; "
                f"last: {failed} {failure.reason}",
            )
            return False
        alive = set(self.live())
        affected = [
            name
            for name in self.strategy.affected(self.order, failed)
            if (name == failed or name in alive or name in self._failed) and name not in self._held
        ]
        for name in reversed(affected):
            await self._halt(name)
        reason = f"{self.strategy.value}: {failed} {failure.reason}"
        for name in affected:
            child = self.children[name]
            child.restarts += 1
            child.emit(EventKind.RESTARTING, detail=reason, delay=decision.delay)
        await trio.sleep(decision.delay)
        await self._start_in_order(
            [name for name in self.order if name in affected or name in self._waiting]
        )
        return True

    def _emit(self, kind: EventKind, detail: str) -> None:
        self.events.put(
            StatusEvent(
                allocation=self.name,
                kind=kind,
                at=trio.current_time(),
                detail=detail,
                restarts=self.tracker.total,
            )
        )
