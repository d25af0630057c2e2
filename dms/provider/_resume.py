"""How an allocation found after a provider restart carries on under a supervisor.

The supervisor (`dms.supervise`) knows one way to get a run: `executor.start(spec)`.
A resumed allocation's first run is not started but found: an execution adopted
alive, or one that ended while the provider was down. `ResumingExecutor` hands the
supervisor that first run in place of a start, so everything after it (health checks,
restarts by the allocation's policy, stopping) is the supervisor's own, unchanged:

- adopted: the first `start` returns the adopted execution;
- ended while away: the first `start` fails with `EndedWhileAway`, so the supervisor
  reports why and its restart policy decides, as it would have for a run that ended
  with the provider up (its exit status is unknown).
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

from dms.executor import ExecutionSpec, Executor, ExecutorError
from dms.executor._protocol import Execution


class EndedWhileAway(ExecutorError):
    """The allocation's execution ended, or could not be found again, while its
    provider was down."""


class ResumingExecutor:
    """`executor`, except that its first `start` resumes `first` (an adopted execution,
    or the reason there is none)."""

    def __init__(self, executor: Executor, first: Execution | EndedWhileAway) -> None:
        self._executor = executor
        self._first: Execution | EndedWhileAway | None = first

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        return None  # the provider owns the executor

    async def start(self, spec: ExecutionSpec) -> Execution:
        first, self._first = self._first, None
        if isinstance(first, EndedWhileAway):
            raise first
        if first is not None:
            return first
        return await self._executor.start(spec)
