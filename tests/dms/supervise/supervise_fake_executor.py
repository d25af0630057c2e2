"""An in-memory executor for supervision tests: workloads end when the test says so,
so restart logic runs on trio's MockClock without real processes."""

from __future__ import annotations

from types import TracebackType
from typing import Self

import trio

from dms.executor import (
    ExecResult,
    ExecutionSpec,
    ExecutionState,
    ExecutionStatus,
    ExitStatus,
    LimitEnforcement,
    Logs,
    ProvisionFailed,
    ResourceStats,
)


class FakeExecution:
    def __init__(self, executor: FakeExecutor, spec: ExecutionSpec, serial: int) -> None:
        self.executor = executor
        self.spec = spec
        self.serial = serial
        self.removed = False
        self.started_at = trio.current_time()
        self._exit: ExitStatus | None = None
        self._done = trio.Event()

    @property
    def name(self) -> str:
        return self.spec.name

    def end(self, exit_code: int | None = 1, *, stopped: bool = False, oom: bool = False) -> None:
        if self._exit is None:
            self._exit = ExitStatus(
                exit_code=exit_code,
                signal=None if exit_code is not None else 15,
                oom=oom,
                oom_evidence="fake" if oom else "",
                stopped=stopped,
                duration=trio.current_time() - self.started_at,
            )
            self._done.set()

    async def wait(self) -> ExitStatus:
        await self._done.wait()
        assert self._exit is not None
        return self._exit

    async def stop(self, grace: float = 10.0) -> ExitStatus:
        if self._exit is None:
            self.executor.stop_order.append(self.name)
            self.end(None, stopped=True)
        return await self.wait()

    def status(self) -> ExecutionStatus:
        return ExecutionStatus(
            name=self.name,
            state=self._exit.state if self._exit else ExecutionState.RUNNING,
            enforcement=LimitEnforcement.RLIMIT,
            ident=f"fake-{self.serial}",
            started_at=self.started_at,
            exit=self._exit,
        )

    async def logs(self, tail: int = 100) -> Logs:
        return Logs(stdout=f"{self.name} run {self.serial}\n", stderr="")

    async def stats(self) -> ResourceStats:
        return ResourceStats(cpu_seconds=0.0, memory_bytes=0, pids=1)

    async def exec(self, argv: tuple[str, ...], timeout: float) -> ExecResult:
        healthy = self.executor.healthy.get(self.name, True)
        return ExecResult(0 if healthy else 1, "ok\n" if healthy else "down\n")

    async def remove(self) -> None:
        await self.stop(0)
        self.removed = True


class FakeExecutor:
    def __init__(self) -> None:
        self.runs: dict[str, list[FakeExecution]] = {}
        self.start_order: list[str] = []
        self.stop_order: list[str] = []
        self.healthy: dict[str, bool] = {}
        self.provision_failures: dict[str, int] = {}
        self.task_exit: dict[str, int] = {}  # tasks end on their own with this code

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    async def start(self, spec: ExecutionSpec) -> FakeExecution:
        await trio.sleep(0.01)  # starting takes a moment of (mock) time
        if self.provision_failures.get(spec.name, 0) > 0:
            self.provision_failures[spec.name] -= 1
            raise ProvisionFailed(spec.name, "setup", 2, "no network\n")
        runs = self.runs.setdefault(spec.name, [])
        execution = FakeExecution(self, spec, len(runs) + 1)
        runs.append(execution)
        self.start_order.append(spec.name)
        if spec.name in self.task_exit:
            execution.end(self.task_exit[spec.name])
        return execution

    def current(self, name: str) -> FakeExecution:
        return self.runs[name][-1]

    def crash(self, name: str, exit_code: int = 1) -> None:
        self.current(name).end(exit_code)
