"""One long-lived `trio.run` in a worker thread, driven step by step from sync code.

Hypothesis runs stateful tests synchronously, but the nodes under test must stay alive
(in their nurseries) from one rule to the next. So each example gets one trio run in a
thread; every rule hands it a coroutine with `trio.from_thread.run` and waits for it.

Time is a `MockClock` that autojumps only while a step runs. Between steps the test
thread is thinking, and no trio task can make progress, so an autojumping clock would
race ahead to the next timer; with autojump off there, virtual time moves only inside
steps: when a step sleeps, or waits on something that can only come from a timer.
Steps start and end with every task blocked, so a run is a deterministic function of
the steps taken.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, suppress
from typing import Generic, TypeVar

import trio
import trio.testing

from dms.testing._testbed import settle

T = TypeVar("T")
R = TypeVar("R")


class PortalClosed(RuntimeError):
    """The trio run behind the portal has ended (it failed, or `close` was called)."""


class TrioPortal(Generic[T]):
    """Runs `open_resource()` in a trio run on a worker thread and keeps it open until
    `close()`; `step(fn)` runs `await fn(resource)` in that run and returns its result.

    Exceptions raised by a step are raised by `step`; one raised while opening or by a
    task of the resource itself is raised by `open` or `close`.
    """

    def __init__(self, open_resource: Callable[[], AbstractAsyncContextManager[T]]) -> None:
        self._open_resource = open_resource
        self.clock = trio.testing.MockClock(autojump_threshold=math.inf)
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None
        self._resource: T | None = None
        self._error: BaseException | None = None

    def open(self) -> T:
        self._thread = threading.Thread(target=self._main, name="dms.testing portal",
                                        daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None or self._resource is None:
            self._thread.join()
            raise PortalClosed("the trio run ended while opening") from self._error
        return self._resource

    def step(self, fn: Callable[[T], Awaitable[R]]) -> R:
        if self._token is None or self._resource is None:
            raise PortalClosed("open the portal before running steps")
        resource = self._resource

        async def timed() -> R:
            self.clock.autojump_threshold = 0
            try:
                await settle()
                result = await fn(resource)
                await settle()
                return result
            finally:
                self.clock.autojump_threshold = math.inf

        try:
            return trio.from_thread.run(timed, trio_token=self._token)
        except trio.RunFinishedError:
            raise PortalClosed("the trio run has ended") from self._error

    def close(self) -> None:
        if self._thread is None:
            return
        if self._token is not None and self._stop is not None:
            with suppress(trio.RunFinishedError):  # it ended by itself (a task failed)
                trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
        self._thread.join()
        self._thread = None
        if self._error is not None:
            raise self._error

    def _main(self) -> None:
        try:
            trio.run(self._serve, clock=self.clock)
        except BaseException as exc:  # handed to the test thread by open/close
            self._error = exc
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        async with self._open_resource() as resource:
            self._resource = resource
            self._stop = trio.Event()
            self._token = trio.lowlevel.current_trio_token()
            self._ready.set()
            await self._stop.wait()
