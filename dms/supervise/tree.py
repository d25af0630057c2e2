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
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping, Sequence

import trio

from dms.supervise.allocation import AllocationSupervisor, CallOnce, Failed, Outcome, Stopped
from dms.supervise.events import EventKind, StatusEvent
from dms.supervise.policy import (
    CrashLoop,
    FailureRecovery,
    InvalidPolicy,
    RestartPolicy,
    RestartTracker,
    SupervisorStrategy,
    start_order,
)

DEFAULT_TREE_POLICY = RestartPolicy()


class SupervisorTree:
    def __init__(
        self,
        name: str,
        children: Sequence[AllocationSupervisor],
        events: trio.MemorySendChannel[StatusEvent],
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
        self._events = events
        self._nursery: trio.Nursery | None = None
        self._scopes: dict[str, trio.CancelScope] = {}
        self._finished: dict[str, trio.Event] = {}
        self._ready: dict[str, trio.Event] = {}
        # A failure is reported with the generation (start count) of the run that failed:
        # one that a restart has already superseded is stale and ignored.
        self._generation: dict[str, int] = {}
        self._failed: set[str] = set()  # failures queued, not yet handled
        self._failures_send, self._failures = trio.open_memory_channel[tuple[str, int, Failed]](
            math.inf
        )

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Start every child in order, then supervise until a crash loop or cancellation."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                await self._start_in_order(self.order)
                task_status.started()
                async for name, generation, failure in self._failures:
                    if generation != self._generation[name]:
                        continue  # that run was restarted along with another failure
                    if not await self._restart_after(name, failure):
                        break
            finally:
                # children are shielded from this nursery's cancellation: stop them in order
                with trio.CancelScope(shield=True):
                    await self._halt_all()

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
        if child.policy.recovery is FailureRecovery.STAY_DOWN:
            await child.emit(EventKind.STAYED_DOWN, detail=outcome.reason)
        elif child.policy.recovery is FailureRecovery.REDEPLOY:
            await child.emit(EventKind.REDEPLOY_REQUESTED, detail=outcome.reason)
        else:
            self._failed.add(name)
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
        decision = self.tracker.on_failure(trio.current_time(), failure.ran_for)
        if isinstance(decision, CrashLoop):
            await self._emit(
                EventKind.CRASH_LOOP,
                f"{decision.restarts} restarts within {decision.period:g}s; "
                f"last: {failed} {failure.reason}",
            )
            return False
        alive = set(self.live())
        affected = [
            name
            for name in self.strategy.affected(self.order, failed)
            if name == failed or name in alive or name in self._failed
        ]
        for name in reversed(affected):
            await self._halt(name)
        reason = f"{self.strategy.value}: {failed} {failure.reason}"
        for name in affected:
            child = self.children[name]
            child.restarts += 1
            await child.emit(EventKind.RESTARTING, detail=reason, delay=decision.delay)
        await trio.sleep(decision.delay)
        await self._start_in_order(
            [name for name in self.order if name in affected or name in self._waiting]
        )
        return True

    async def _emit(self, kind: EventKind, detail: str) -> None:
        event = StatusEvent(
            allocation=self.name,
            kind=kind,
            at=trio.current_time(),
            detail=detail,
            restarts=self.tracker.total,
        )
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await self._events.send(event)
