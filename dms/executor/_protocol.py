"""The one protocol every executor implements, so an allocation actor need not know which.

An executor is an async context manager: executions need a nursery for their
watchers (log pumps, exit watchers), and leaving the context stops every execution it
started, so no workload outlives the node code that owns it.

    async with ProcessExecutor(root) as executor:
        execution = await executor.start(spec)
        exit = await execution.wait()
"""

from __future__ import annotations

from types import TracebackType
from typing import Protocol, Self, runtime_checkable

from dms.executor._spec import ExecutionSpec
from dms.executor._status import (
    ExecResult,
    ExecutionStatus,
    ExitStatus,
    LogChunk,
    LogPosition,
    Logs,
    ResourceStats,
)


class Execution(Protocol):
    @property
    def name(self) -> str: ...

    async def wait(self) -> ExitStatus:
        """Block until the workload ends; safe to call from several tasks, and again."""
        ...

    async def stop(self, grace: float = 10.0) -> ExitStatus:
        """SIGTERM (or the engine's equivalent), then SIGKILL after `grace` seconds."""
        ...

    def status(self) -> ExecutionStatus: ...

    async def logs(self, tail: int = 100) -> Logs:
        """The last `tail` lines of stdout and of stderr."""
        ...

    async def stats(self) -> ResourceStats: ...

    async def exec(self, argv: tuple[str, ...], timeout: float) -> ExecResult:
        """Run a command in the workload's context (health checks); raises ExecUnsupported
        where that is impossible."""
        ...

    async def remove(self) -> None:
        """Stop if needed and release what the execution holds (container, cgroup, files)."""
        ...


class Executor(Protocol):
    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def start(self, spec: ExecutionSpec) -> Execution:
        """Deliver files, run provision scripts, then start the workload. Raises
        ProvisionFailed (with the script output), InvalidSpec, EngineUnavailable."""
        ...


@runtime_checkable
class PositionedLogs(Protocol):
    """An execution whose output can be read on from a position (`dms logs --follow`
    prints only what is new); one without gives tails only (`Execution.logs`)."""

    async def read_log(self, stream: str, after: LogPosition | None, *, tail: int,
                       limit: int) -> LogChunk:
        """`stream` ("stdout" or "stderr") from `after` on, or its last `tail` lines;
        at most `limit` bytes."""
        ...
