"""Phases that revert: one stack of undos for a whole deployment.

    async with UndoStack(on_event=record) as undos:   # the deployment's scope
        async with undos.phase("commit") as p:
            for provider in chosen:
                p.on_revert(partial(revert, provider), f"reservation on {provider}")
                await commit(provider)
        async with undos.phase("allocate") as p:
            ...
        undos.keep()          # running: shutdown owns what was made from here on

Undos form one stack across phases, because what commit reserved must be released if
allocate fails later, or if the deployment is cancelled between two phases. When a
phase ends with an error or a cancellation, every undo registered so far runs, newest
first, and then the phase's own exception propagates unchanged (a nursery's
`BaseExceptionGroup` too): an undo that fails is logged and recorded in `failures`,
never raised in its place. Leaving the stack's block by any route runs what is still
registered, so nothing made inside a deployment outlives it unless `keep()` says so.

Each undo runs shielded from the cancellation that triggered it, under its own
deadline (`undo_timeout`, 10 s by default): an undo that hangs is abandoned and the
next one still runs. Every undo runs at most once.

Register an undo that is idempotent (a provider's revert is) *before* the step it
undoes: a cancellation in the middle of the step then still reverts it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from types import TracebackType

import attrs
import trio

from dms.cleanup import shielded_cleanup

from ._events import DeploymentEventKind
from ._invalid import positive_seconds

log = logging.getLogger("dms.orchestrator")

DEFAULT_UNDO_TIMEOUT = 10.0

Undo = Callable[[], Awaitable[object]]
K = DeploymentEventKind


class PhaseClosed(RuntimeError):
    """An undo registered on a phase that has ended, a phase opened on a stack that is
    not open, or a stack entered twice: an undo would have nobody to run it."""


class PhaseOverlap(RuntimeError):
    """A phase opened while another phase of the same stack is open; phases of one
    deployment follow each other (use one stack per concurrent operation)."""


@attrs.frozen
class PhaseEvent:
    """What a revertible phase reports: `phase` is the phase that began, ended or
    failed, or for an undo the phase that registered it (None: the stack itself)."""

    kind: DeploymentEventKind
    phase: str | None
    detail: str = ""

    def __str__(self) -> str:
        head = self.kind.value.replace("_", " ")
        where = f"phase {self.phase}: " if self.phase is not None else ""
        return f"{where}{head}" + (f": {self.detail}" if self.detail else "")


@attrs.frozen
class UndoFailure:
    """An undo that did not complete: it raised (`problem` says what) or it was
    `abandoned` after its deadline."""

    phase: str
    description: str
    problem: str
    abandoned: bool


@attrs.frozen
class _Step:
    phase: str
    description: str
    undo: Undo = attrs.field(eq=False)
    timeout: float


def describe(exc: BaseException) -> str:
    """One line for an exception; a group says what it holds, cancellations apart."""
    if isinstance(exc, trio.Cancelled):
        return "cancelled"
    if isinstance(exc, BaseExceptionGroup):
        inner = [e for e in exc.exceptions if not isinstance(e, trio.Cancelled)]
        if not inner:
            return "cancelled"
        if len(inner) == 1:
            return describe(inner[0])
        return "; ".join(describe(e) for e in inner)
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Phase:
    """An open phase of an `UndoStack`; what `async with stack.phase(name)` gives."""

    def __init__(self, stack: UndoStack, name: str) -> None:
        self._stack = stack
        self.name = name
        self._open = True

    def on_revert(self, undo: Undo, description: str, *, timeout: float | None = None) -> None:
        """Register `undo` (an async function of no arguments) to run if the
        deployment is reverted. `description` names what it releases, for events and
        failures; `timeout` overrides the stack's `undo_timeout` for this undo."""
        if not self._open:
            raise PhaseClosed(
                f"phase {self.name!r} has ended: register the undo of {description!r} "
                "inside the phase that made what it releases"
            )
        seconds = (
            self._stack.undo_timeout if timeout is None else positive_seconds("timeout", timeout)
        )
        self._stack._push(_Step(self.name, description, undo, seconds))

    def _close(self) -> None:
        self._open = False


class UndoStack:
    """The undos of one deployment, across its phases (see the module docstring).

    `on_event` is called, synchronously, with a `PhaseEvent` for each phase start,
    end and failure and for each step of a revert; it should only record (an
    exception from it is logged and does not interrupt a revert)."""

    def __init__(
        self,
        *,
        undo_timeout: float = DEFAULT_UNDO_TIMEOUT,
        on_event: Callable[[PhaseEvent], None] | None = None,
    ) -> None:
        self.undo_timeout = positive_seconds("undo_timeout", undo_timeout)
        self._on_event = on_event
        self._steps: list[_Step] = []
        self._failures: list[UndoFailure] = []
        self._entered = False
        self._exited = False
        self._current: Phase | None = None

    @property
    def pending(self) -> tuple[str, ...]:
        """Descriptions of the registered undos, in the order they would run."""
        return tuple(step.description for step in reversed(self._steps))

    @property
    def failures(self) -> tuple[UndoFailure, ...]:
        """Every undo that raised or was abandoned, in the order they ran."""
        return tuple(self._failures)

    async def __aenter__(self) -> UndoStack:
        if self._entered:
            raise PhaseClosed("an UndoStack is entered once, for the deployment it serves")
        self._entered = True
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._exited = True
        why = "the deployment's scope ended" if exc is None else describe(exc)
        await self.revert(why)

    def phase(self, name: str) -> _PhaseBlock:
        """`async with stack.phase(name) as p:` — an exception or cancellation out of
        the block reverts every undo registered so far, then propagates."""
        return _PhaseBlock(self, name)

    def keep(self) -> None:
        """Forget every registered undo: what they would release now belongs to
        whoever runs the deployment from here (its shutdown), not to a revert."""
        if self._steps:
            count = len(self._steps)
            self._steps.clear()
            self._emit(PhaseEvent(K.KEPT, None, f"{count} undos kept"))

    async def revert(self, why: str = "") -> None:
        """Run every registered undo now, newest first, each shielded and under its own
        deadline; returns when all have had their turn. Safe to call again: an undo
        that ran is gone. Never raises an undo's error (see `failures`)."""
        if not self._steps:
            return
        count = len(self._steps)
        self._emit(PhaseEvent(K.REVERTING, None, f"{count} undos" + (f": {why}" if why else "")))
        failed = abandoned = 0
        while self._steps:
            step = self._steps.pop()
            outcome = await self._run(step)
            if outcome is not None:
                self._failures.append(outcome)
                if outcome.abandoned:
                    abandoned += 1
                else:
                    failed += 1
        summary = f"{count - failed - abandoned} of {count} undone"
        if failed:
            summary += f", {failed} failed"
        if abandoned:
            summary += f", {abandoned} abandoned"
        self._emit(PhaseEvent(K.REVERTED, None, summary))

    async def _run(self, step: _Step) -> UndoFailure | None:
        try:
            # The scope swallows only its own deadline's Cancelled (also out of a
            # nursery's group); the undo's own errors come out here.
            with shielded_cleanup(step.timeout) as scope:
                await step.undo()
        except Exception as exc:
            problem = describe(exc)
            log.warning(
                "undo of %s (phase %s) failed: %s",
                step.description,
                step.phase,
                problem,
                exc_info=exc,
            )
            self._emit(PhaseEvent(K.UNDO_FAILED, step.phase, f"{step.description}: {problem}"))
            return UndoFailure(step.phase, step.description, problem, abandoned=False)
        if scope.cancelled_caught:
            problem = f"not done within {step.timeout:g} s"
            log.warning(
                "undo of %s (phase %s) abandoned: %s", step.description, step.phase, problem
            )
            self._emit(PhaseEvent(K.UNDO_ABANDONED, step.phase, f"{step.description}: {problem}"))
            return UndoFailure(step.phase, step.description, problem, abandoned=True)
        self._emit(PhaseEvent(K.UNDONE, step.phase, step.description))
        return None

    def _push(self, step: _Step) -> None:
        self._steps.append(step)

    def _emit(self, event: PhaseEvent) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(event)
        except Exception:
            log.exception("the on_event callback failed on %s", event)

    def _opened(self, phase: Phase) -> None:
        if not self._entered or self._exited:
            raise PhaseClosed(
                f"phase {phase.name!r}: the UndoStack is not open; open it with `async with` "
                "around the whole deployment"
            )
        if self._current is not None:
            raise PhaseOverlap(
                f"phase {phase.name!r} opened while phase {self._current.name!r} is open"
            )
        self._current = phase
        self._emit(PhaseEvent(K.PHASE_STARTED, phase.name))

    def _closed(self, phase: Phase, exc: BaseException | None) -> None:
        phase._close()
        self._current = None
        if exc is None:
            self._emit(PhaseEvent(K.PHASE_ENDED, phase.name))
        else:
            self._emit(PhaseEvent(K.PHASE_FAILED, phase.name, describe(exc)))


class _PhaseBlock:
    """The `async with` of one phase: opens it on entry, reverts on a failed exit."""

    def __init__(self, stack: UndoStack, name: str) -> None:
        self._stack = stack
        self._phase = Phase(stack, name)

    async def __aenter__(self) -> Phase:
        self._stack._opened(self._phase)
        return self._phase

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stack._closed(self._phase, exc)
        if exc is not None:
            await self._stack.revert(f"phase {self._phase.name} failed: {describe(exc)}")
