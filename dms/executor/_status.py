"""What an execution reports about itself: state, how it ended, logs, resource use."""

from __future__ import annotations

import enum

import attrs


class ExecutionState(enum.Enum):
    RUNNING = "running"
    EXITED = "exited"  # ended on its own (any exit code)
    STOPPED = "stopped"  # ended because stop() was called
    OUT_OF_MEMORY = "out_of_memory"  # killed or failed for exceeding its memory limit


class LimitEnforcement(enum.Enum):
    """How resource limits were applied, so status says what was really enforced."""

    CGROUP_V2 = "cgroup-v2"
    CGROUP_V1 = "cgroup-v1"
    RLIMIT = "rlimit"  # memory by RLIMIT_AS; cpu rate not enforced
    DOCKER = "docker"
    FIRECRACKER = "firecracker"  # vcpus and memory of the microVM


@attrs.frozen
class ExitStatus:
    """How an execution ended. `oom_evidence` says how out-of-memory was detected
    (e.g. `cgroup memory.events oom_kill=1`, `docker State.OOMKilled`,
    `stderr: MemoryError`) so the verdict can be checked."""

    exit_code: int | None  # None when killed by a signal, or not known
    signal: int | None = None
    oom: bool = False
    oom_evidence: str = ""
    stopped: bool = False
    duration: float = 0.0

    @property
    def succeeded(self) -> bool:
        return self.exit_code == 0 and not self.oom

    @property
    def state(self) -> ExecutionState:
        if self.oom:
            return ExecutionState.OUT_OF_MEMORY
        return ExecutionState.STOPPED if self.stopped else ExecutionState.EXITED

    def describe(self) -> str:
        if self.exit_code is None and self.signal is None:
            how = "exit status unknown"  # e.g. an adopted process: not our child to reap
        else:
            how = f"exit code {self.exit_code}" if self.signal is None else f"signal {self.signal}"
        if self.oom:
            how += f", out of memory ({self.oom_evidence})"
        return f"{how} after {self.duration:.2f}s"


@attrs.frozen
class ExecutionStatus:
    name: str
    state: ExecutionState
    enforcement: LimitEnforcement
    ident: str  # pid, container id or VMM pid
    started_at: float  # wall clock, seconds since the epoch
    exit: ExitStatus | None = None
    ports: tuple[tuple[int, int], ...] = ()  # (private, published public) on 127.0.0.1
    unobservable: str = ""
    """Why the engine cannot be asked about the workload now (a stopped dockerd), so
    `state` is only the last one known; empty when it can."""


@attrs.frozen
class ResourceStats:
    cpu_seconds: float
    memory_bytes: int
    pids: int


@attrs.frozen
class ExecResult:
    """Outcome of a command run inside (or alongside) a workload."""

    exit_code: int
    output: str


@attrs.frozen
class LogPosition:
    """A place in one run of an output stream: `offset` bytes from its start."""

    run: str
    offset: int


@attrs.frozen
class LogChunk:
    """A piece of one output stream and where it ends (`next`: None when the executor
    only gives tails, so nothing can be read on from it). `restarted`: the position asked
    for was of another run, so this is the tail of the current one; `skipped`: bytes
    between the position asked for and `text` that rotation took; `truncated`: more is
    there already, past `next`."""

    text: str
    next: LogPosition | None = None
    restarted: bool = False
    skipped: int = 0
    truncated: bool = False


@attrs.frozen
class Logs:
    stdout: str
    stderr: str

    @property
    def text(self) -> str:
        """Both streams, stdout first; enough for reports and failure messages."""
        return self.stdout + self.stderr
