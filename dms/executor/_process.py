"""The embedded executor: runs an allocation's command as a local process group.

Limits are enforced by the kernel: a per-execution cgroup (v2, or v1 on hybrid hosts)
when running as root with cgroups writable, else rlimits (RLIMIT_AS for memory; the
cpu *rate* is then not enforced, which `status().enforcement` makes visible).
RLIMIT_CPU caps a task's total cpu seconds when `cpu_time_limit` is set.

Out-of-memory is reported from evidence, not guessed: the cgroup's oom_kill counter,
or under rlimits a non-zero exit whose stderr tail shows an allocation failure
(`MemoryError`, `Cannot allocate memory`, `std::bad_alloc`, `out of memory`).

Each execution lives in `<root>/<name>-<id>/`: `work/` (working directory unless the
spec names one), `logs/stdout.log` and `logs/stderr.log` (rotated), `provision/`, and
`identity.json` (its `ExecutionIdentity`). The workload writes its output into named
pipes (`logs/stdout.pipe`, `logs/stderr.pipe`) that the executor copies into the log
files: unlike anonymous pipes they survive the provider, so a workload left running
across a provider restart (`detach`, then `adopt`) is neither killed by SIGPIPE nor
loses what it printed meanwhile.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import re
import resource
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import Self

import trio

from dms.cleanup import shielded_cleanup
from dms.executor._cgroups import (
    Cgroup,
    CgroupDriver,
    CgroupLimits,
    CgroupV1,
    CgroupV1Driver,
    CgroupV2,
    CgroupV2Driver,
    probe_cgroups,
)
from dms.executor._errors import ExecutorNotOpen, InvalidSpec, NotAdoptable, ProvisionFailed
from dms.executor._leader import (
    TICKS,
    AdoptedLeader,
    ChildLeader,
    Leader,
    boot_id,
    boot_time,
    process_facts,
    still_running,
)
from dms.executor._logfile import RotatingLogFile, pump_into, read_log, tail_lines
from dms.executor._procstat import group_members, group_stats
from dms.executor._spec import ExecutionSpec, FileDelivery
from dms.executor._status import (
    ExecResult,
    ExecutionState,
    ExecutionStatus,
    ExitStatus,
    LimitEnforcement,
    LogChunk,
    LogPosition,
    Logs,
    ResourceStats,
)
from dms.store import ExecutionIdentity
from dms.workload import ExecutorKind

_ALLOCATION_FAILURE = re.compile(
    rb"MemoryError|Cannot allocate memory|std::bad_alloc|out of memory", re.IGNORECASE
)
# After the leader exits, how long log pumps may drain pipes still held by stragglers.
_DRAIN_SECONDS = 2.0


def rlimit_oom_evidence(exit_code: int | None, stderr_tail: bytes) -> str:
    """Why an rlimit-bound process is judged out-of-memory, or "" when it is not."""
    if exit_code == 0:
        return ""
    match = _ALLOCATION_FAILURE.search(stderr_tail)
    return f"stderr: {match.group().decode()}" if match else ""


def _make_preexec(
    memory_bytes: int | None, cpu_seconds: float | None, procs_files: tuple[str, ...]
) -> Callable[[], None]:
    """Runs in the child between fork and exec: join the cgroup, then set rlimits.
    Only async-signal-tolerant work here (raw os calls, no locks)."""

    def preexec() -> None:
        pid = str(os.getpid()).encode()
        for path in procs_files:
            fd = os.open(path, os.O_WRONLY)
            try:
                os.write(fd, pid)
            finally:
                os.close(fd)
        if memory_bytes:
            resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
        if cpu_seconds:
            soft = max(1, int(cpu_seconds))
            resource.setrlimit(resource.RLIMIT_CPU, (soft, soft + 1))

    return preexec


def in_namespace(spec: ExecutionSpec, argv: Sequence[str]) -> list[str]:
    """`argv` run inside the spec's network namespace: `ip netns exec` enters it, binds
    its /etc/netns resolv.conf over /etc/resolv.conf and execs `argv` in place, so the
    pid is the workload's own (adoption and signals need that)."""
    if spec.network_namespace is None:
        return list(argv)
    return [shutil.which("ip") or "ip", "netns", "exec", spec.network_namespace, *argv]


def _check_runnable(spec: ExecutionSpec, work: Path, env: dict[str, str]) -> None:
    """OSError when the command cannot be run, as exec would say: behind `ip netns exec`
    a missing program would otherwise look like a workload that exited with 1."""
    program = spec.argv[0]
    found = (os.access(work / program, os.X_OK) if "/" in program
             else shutil.which(program, path=env.get("PATH")) is not None)
    if not found:
        raise FileNotFoundError(2, "No such file or directory", program)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


async def run_in_own_group(
    argv: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    timeout: float,
    preexec: Callable[[], None] | None = None,
) -> tuple[int, bytes]:
    """Runs `argv` as a new session (so `kill 0` in it cannot reach dms) and returns its
    exit code and merged output. The group is SIGKILLed when the leader exits (stragglers
    end with it), past `timeout` (then `trio.TooSlowError`) and on cancellation."""
    process = await trio.lowlevel.open_process(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=preexec,
    )
    chunks: list[bytes] = []

    async def drain() -> None:
        assert process.stdout is not None
        async for chunk in process.stdout:
            chunks.append(bytes(chunk))

    try:
        with trio.fail_after(timeout):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(drain)
                code = await process.wait()
                _kill_group(process.pid)
                nursery.cancel_scope.deadline = trio.current_time() + _DRAIN_SECONDS
    finally:
        _kill_group(process.pid)
        with trio.CancelScope(shield=True):
            await process.wait()
            if process.stdout is not None:
                await process.stdout.aclose()
    return code, b"".join(chunks)


def _place_file(work: Path, index: int, delivery: FileDelivery) -> Path:
    relative = PurePosixPath(delivery.path)
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise InvalidSpec(
            f"files[{index}].path: {delivery.path!r} must be relative to the working "
            "directory for the process executor"
        )
    target = work / relative
    try:
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        target.unlink(missing_ok=True)
        # Created with its final mode (never readable by others in between), no symlinks.
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, delivery.mode)
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(fd, delivery.mode)  # exactly as asked, whatever the umask
            handle.write(delivery.content)
    except OSError as error:
        raise InvalidSpec(
            f"files[{index}].path: cannot write {delivery.path!r}: {error}"
        ) from error
    return target


IDENTITY_FILE = "identity.json"
"""In each execution's directory: its `ExecutionIdentity`, so an executor after a
restart finds what an earlier one left even if nothing else recorded it."""
_PIPE_BYTES = 1 << 20  # what a workload may write while no provider reads its output
_LEFT_RUNNING = ExitStatus(exit_code=None)  # what stop() says of a detached execution
_STREAMS = ("stdout", "stderr")


def _open_output(logs: Path, stream: str) -> tuple[int, int]:
    """A named pipe for one output stream: (our read end, the workload's end).

    The workload's end is opened read-write, so the workload itself holds a reader:
    while no provider reads (between one provider and the next, which adopts it) its
    output waits in the pipe (up to `_PIPE_BYTES`, then its writes block) instead of
    killing it with SIGPIPE, and the next provider reads on from the same pipe."""
    fifo = logs / f"{stream}.pipe"
    os.mkfifo(fifo, 0o600)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    writer = os.open(fifo, os.O_RDWR | os.O_CLOEXEC)
    with contextlib.suppress(OSError):  # past pipe-max-size: the default (64 KiB)
        fcntl.fcntl(writer, fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
    return reader, writer


async def _pump(fd: int, log: RotatingLogFile) -> None:
    async with trio.lowlevel.FdStream(fd) as stream:
        await pump_into(stream, log)


class ProcessExecution:
    """One workload's process group: started here (its leader is our child) or adopted
    after a restart (`ProcessExecutor.adopt`; its leader is watched through /proc)."""

    def __init__(
        self,
        spec: ExecutionSpec,
        leader: Leader,
        directory: Path,
        work: Path,
        env: dict[str, str],
        cgroup: Cgroup | None,
        *,
        started: int,
        started_at: float,
        boot: str,
    ) -> None:
        self.spec = spec
        self.directory = directory
        self.work = work
        self._leader = leader
        self._env = env
        self._cgroup = cgroup
        self._started = started
        self._boot = boot
        self._started_at = started_at
        self._started_monotonic = time.monotonic() - max(0.0, time.time() - started_at)
        self._stop_requested = False
        self._detached = False
        self._watching = trio.CancelScope()
        self._exit: ExitStatus | None = None
        self._done = trio.Event()
        self._removed = False
        self._log_files: list[RotatingLogFile] = []

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def pid(self) -> int:
        return self._leader.pid

    @property
    def enforcement(self) -> LimitEnforcement:
        return self._cgroup.enforcement if self._cgroup else LimitEnforcement.RLIMIT

    @property
    def identity(self) -> ExecutionIdentity:
        """Enough to adopt this execution after a restart, and to be sure it is this
        one: the leader's pid and start time, this boot, where its files are."""
        return ExecutionIdentity(
            ident=str(self.pid),
            started=self._started,
            details={
                "name": self.name,
                "directory": str(self.directory),
                "work": str(self.work),
                "stdout": str(self._log("stdout")),
                "stderr": str(self._log("stderr")),
                "boot": self._boot,
                "cgroup": self._cgroup.enforcement.value if self._cgroup else "",
            },
        )

    @property
    def ended(self) -> bool:
        return self._done.is_set()

    def _log(self, stream: str) -> Path:
        return self.directory / "logs" / f"{stream}.log"

    async def _watch(self, readers: tuple[int, int], max_bytes: int, backups: int) -> None:
        """Owns the output pipes and the exit: started in the executor's nursery."""
        code: int | None = None
        waited = False
        try:
            with self._watching:
                async with trio.open_nursery() as pumps:
                    for stream, reader in zip(_STREAMS, readers, strict=True):
                        log = RotatingLogFile(self._log(stream), max_bytes, backups)
                        self._log_files.append(log)
                        pumps.start_soon(_pump, reader, log)
                    try:
                        code = await self._leader.wait()
                        waited = True
                    finally:
                        if not self._detached:  # the allocation ends with its leader
                            self._kill_group(signal.SIGKILL)
                        pumps.cancel_scope.deadline = trio.current_time() + _DRAIN_SECONDS
            if not self._detached:
                await self._finish(code)
        finally:
            if not self._done.is_set() and not self._detached:
                # _finish never ran or failed: waiters must not hang. Unless the leader
                # had ended, it was just killed.
                self._exit = ExitStatus(
                    exit_code=code if code is not None and code >= 0 else None,
                    signal=-code if code is not None and code < 0
                    else None if waited else signal.SIGKILL,
                    stopped=self._stop_requested,
                    duration=time.monotonic() - self._started_monotonic,
                )
                self._done.set()

    async def _finish(self, code: int | None) -> None:
        oom_evidence = ""
        if self._cgroup is not None:
            kills = self._cgroup.oom_kills()
            if kills:
                oom_evidence = f"{self._cgroup.enforcement.value} oom_kill={kills}"
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(self._cgroup.remove)
        elif code is not None:
            tail = tail_lines(self._log("stderr"), 20).encode()
            oom_evidence = rlimit_oom_evidence(code, tail)
        self._exit = ExitStatus(
            exit_code=code if code is not None and code >= 0 else None,
            signal=-code if code is not None and code < 0 else None,
            oom=bool(oom_evidence),
            oom_evidence=oom_evidence,
            stopped=self._stop_requested and not oom_evidence,
            duration=time.monotonic() - self._started_monotonic,
        )
        self._done.set()

    def _kill_group(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)
        if self._cgroup is not None:
            for pid in self._cgroup.pids():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)

    def detach(self) -> None:
        """Leave the workload running and stop watching it, for a later executor to
        adopt: its output waits in its pipes, and from now on `stop` and `remove` leave
        it alone (returning at once) and `wait` returns only if it is adopted here
        again. An execution that has ended is not affected."""
        if self._done.is_set():
            return
        self._detached = True
        self._watching.cancel()

    async def wait(self) -> ExitStatus:
        await self._done.wait()
        assert self._exit is not None
        return self._exit

    def note_stop_requested(self) -> None:
        """A stop asked for by other means (a VM guest's shutdown) is reported as a stop."""
        if not self._done.is_set():
            self._stop_requested = True

    async def stop(self, grace: float = 10.0) -> ExitStatus:
        if self._detached:
            return _LEFT_RUNNING
        if not self._done.is_set():
            self._stop_requested = True
            self._kill_group(signal.SIGTERM)
            with trio.move_on_after(grace):
                return await self.wait()
            self._kill_group(signal.SIGKILL)
        return await self.wait()

    def status(self) -> ExecutionStatus:
        return ExecutionStatus(
            name=self.name,
            state=self._exit.state if self._exit else ExecutionState.RUNNING,
            enforcement=self.enforcement,
            ident=str(self.pid),
            started_at=self._started_at,
            exit=self._exit,
        )

    def group_members(self) -> list[int]:
        """Pids still alive in the execution's process group."""
        return group_members(self.pid)

    async def logs(self, tail: int = 100) -> Logs:
        """The tails of both streams; output dropped by a failing disk is noted on stderr."""
        losses = "".join(f"{loss}\n" for log in self._log_files if (loss := log.describe_loss()))
        return Logs(
            stdout=tail_lines(self._log("stdout"), tail),
            stderr=tail_lines(self._log("stderr"), tail) + losses,
        )

    async def read_log(self, stream: str, after: LogPosition | None, *, tail: int,
                       limit: int) -> LogChunk:
        """One stream from a position on (`read_log` of its rotated files, in a
        thread); before its output is pumped anywhere, nothing yet (from its start)."""
        log = next((log for log in self._log_files if log.path == self._log(stream)), None)
        if log is None:
            return LogChunk("", LogPosition("", 0))
        return await trio.to_thread.run_sync(
            functools.partial(read_log, log, after, tail=tail, limit=limit))

    async def stats(self) -> ResourceStats:
        return await trio.to_thread.run_sync(group_stats, self.pid)

    async def exec(self, argv: tuple[str, ...], timeout: float) -> ExecResult:
        """Runs `argv` beside the workload; past `timeout` its whole group is killed."""
        code, output = await run_in_own_group(
            in_namespace(self.spec, argv), cwd=self.work, env=self._env, timeout=timeout
        )
        return ExecResult(code, output.decode("utf-8", errors="replace"))

    async def remove(self) -> None:
        if self._detached:
            return
        await self.stop(grace=0)
        if not self._removed:
            self._removed = True
            shutil.rmtree(self.directory, ignore_errors=True)


class ProcessExecutor:
    """Runs `ExecutionSpec`s with `executor=process` under `root`.

    `cgroups=None` probes for a working cgroup flavour; `False` forces rlimits.

    Across a restart: `detach` leaves the running executions running; a later executor
    on the same `root` lists them (`leftovers`), `adopt`s those still wanted and
    `discard`s the rest."""

    def __init__(
        self,
        root: Path,
        *,
        cgroups: bool | None = None,
        log_max_bytes: int = 1 << 20,
        log_backups: int = 3,
        close_grace: float = 5.0,
        provision_timeout: float = 600.0,
        discard_grace: float = 2.0,
    ) -> None:
        self.root = root
        self._provision_timeout = provision_timeout
        self._want_cgroups = cgroups
        self._log_max_bytes = log_max_bytes
        self._log_backups = log_backups
        self._close_grace = close_grace
        self._discard_grace = discard_grace
        self._driver: CgroupDriver | None = None
        self._nursery: trio.Nursery | None = None
        self._stack = contextlib.AsyncExitStack()
        self._executions: list[ProcessExecution] = []
        self._boot = boot_id()

    @property
    def enforcement(self) -> LimitEnforcement:
        return self._driver.enforcement if self._driver else LimitEnforcement.RLIMIT

    async def __aenter__(self) -> Self:
        self.root.mkdir(parents=True, exist_ok=True)
        if self._want_cgroups is not False:
            self._driver = await trio.to_thread.run_sync(probe_cgroups)
        self._nursery = await self._stack.enter_async_context(trio.open_nursery())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Bounded: a wedged execution must not keep the node from shutting down.
        with shielded_cleanup(self._close_grace + 10):
            async with trio.open_nursery() as stoppers:
                for execution in self._executions:
                    stoppers.start_soon(execution.stop, self._close_grace)
        self._nursery = None
        await self._stack.__aexit__(exc_type, exc, tb)

    def identity_of(self, execution: object) -> ExecutionIdentity | None:
        return execution.identity if isinstance(execution, ProcessExecution) else None

    def detach(self) -> None:
        """Leave every running execution running when this executor closes (see
        `ProcessExecution.detach`): for a provider that stops but keeps its workloads."""
        for execution in self._executions:
            execution.detach()

    def _track(self, execution: ProcessExecution) -> None:
        # Ended executions are forgotten: a service restarted a thousand times does not
        # keep a thousand of them (their files stay until they are removed).
        self._executions = [e for e in self._executions if not e.ended] + [execution]

    async def start(self, spec: ExecutionSpec) -> ProcessExecution:
        if self._nursery is None:
            raise ExecutorNotOpen("use `async with ProcessExecutor(...)` before start()")
        if spec.executor is not ExecutorKind.PROCESS:
            raise InvalidSpec(f"executor: {spec.executor.value!r} given to the process executor")
        if spec.image:
            raise InvalidSpec(f"image: {spec.image!r} cannot be run by the process executor")
        if not spec.argv:
            raise InvalidSpec(f"cmd: allocation {spec.name!r} has no command to run")
        ident = f"{spec.name}-{secrets.token_hex(4)}"
        directory = self.root / ident
        directory.mkdir(mode=0o700)  # delivered files may be secrets
        try:
            return await self._start_in(spec, ident, directory)
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)  # no secrets left behind
            raise

    def _environment(self, spec: ExecutionSpec, work: Path) -> dict[str, str]:
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(work)} | spec.env

    async def _start_in(self, spec: ExecutionSpec, ident: str, directory: Path) -> ProcessExecution:
        assert self._nursery is not None
        (directory / "logs").mkdir()
        work = Path(spec.working_directory) if spec.working_directory else directory / "work"
        try:
            work.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as error:
            raise InvalidSpec(
                f"working_directory: {str(work)!r} for {spec.name!r} is unusable: {error}"
            ) from error
        env = self._environment(spec, work)
        for index, delivery in enumerate(spec.files):
            _place_file(work, index, delivery)

        cgroup = None
        if self._driver is not None:
            limits = CgroupLimits(spec.resources.ram or None, spec.resources.cpu or None)
            cgroup = await trio.to_thread.run_sync(self._driver.create, ident, limits)
        preexec = _make_preexec(
            memory_bytes=None if cgroup else (spec.resources.ram or None),
            cpu_seconds=spec.cpu_time_limit,
            procs_files=cgroup.procs_files if cgroup else (),
        )
        outputs: list[tuple[int, int]] = []
        try:
            if spec.network_namespace is not None:
                _check_runnable(spec, work, env)
            # Provision scripts run under the workload's own limits (cgroup or rlimits).
            await self._provision(spec, directory, work, env, preexec)
            outputs = [_open_output(directory / "logs", stream) for stream in _STREAMS]
            process = await trio.lowlevel.open_process(
                in_namespace(spec, spec.argv),
                cwd=work,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=outputs[0][1],
                stderr=outputs[1][1],
                start_new_session=True,
                preexec_fn=preexec,
            )
        except OSError as error:
            _close_all(fd for pair in outputs for fd in pair)
            if cgroup is not None:
                cgroup.remove()
            raise InvalidSpec(
                f"cmd: cannot run {spec.argv[0]!r} for {spec.name!r}: {error}"
            ) from error
        except BaseException:
            _close_all(fd for pair in outputs for fd in pair)
            if cgroup is not None:
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(cgroup.remove)
            raise
        _close_all(writer for _, writer in outputs)  # the workload holds them now
        facts = process_facts(process.pid)
        execution = ProcessExecution(
            spec, ChildLeader(process), directory, work, env, cgroup,
            started=facts.started if facts else 0, started_at=time.time(), boot=self._boot,
        )
        _write_identity(directory, execution.identity)
        self._track(execution)
        self._nursery.start_soon(
            execution._watch, (outputs[0][0], outputs[1][0]), self._log_max_bytes,
            self._log_backups,
        )
        return execution

    # -- after a restart ----------------------------------------------------------------

    async def adopt(self, identity: ExecutionIdentity, spec: ExecutionSpec) -> ProcessExecution:
        """Watch, log and control again an execution an earlier executor started under
        this `root` and left running (`identity` is its `ProcessExecution.identity`).

        Raises NotAdoptable when it is not the recorded process any more: it ended, its
        pid now belongs to another process (its start time differs), the machine
        rebooted since, or the identity does not name an execution under `root`."""
        if self._nursery is None:
            raise ExecutorNotOpen("use `async with ProcessExecutor(...)` before adopt()")
        directory = self._directory_of(identity, spec.name)
        pid, started = _recorded_process(identity, spec.name)
        if identity.details.get("boot") != self._boot:
            raise NotAdoptable(spec.name, "it was started before this machine last booted")
        facts = process_facts(pid)
        if facts is None or facts.state == "Z":
            raise NotAdoptable(spec.name, f"pid {pid} is no longer running")
        if facts.started != started:
            raise NotAdoptable(spec.name, f"pid {pid} is another process now (started at "
                                          f"tick {facts.started}, not {started})")
        if facts.group != pid:
            raise NotAdoptable(spec.name, f"pid {pid} does not lead its own process group")
        opened: list[int] = []
        try:
            for stream in _STREAMS:
                opened.append(os.open(directory / "logs" / f"{stream}.pipe",
                                      os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC))
        except OSError as error:
            _close_all(opened)
            raise NotAdoptable(spec.name, f"its output pipes are gone: {error}") from None
        work = Path(identity.details.get("work") or directory / "work")
        execution = ProcessExecution(
            spec, AdoptedLeader(pid, started), directory, work, self._environment(spec, work),
            self._cgroup_of(directory.name, identity), started=started,
            started_at=boot_time() + started / TICKS, boot=self._boot,
        )
        self._track(execution)
        self._nursery.start_soon(execution._watch, (opened[0], opened[1]), self._log_max_bytes,
                                 self._log_backups)
        return execution

    async def leftovers(self) -> tuple[ExecutionIdentity, ...]:
        """The executions under `root` this executor does not run: what an earlier one
        left, running or not, to `adopt` or `discard`. A directory whose identity file
        cannot be read is listed by its directory alone (its process unknown)."""
        running = {execution.directory for execution in self._executions}
        return await trio.to_thread.run_sync(_scan, self.root, running)

    async def discard(self, identity: ExecutionIdentity) -> None:
        """Remove what an earlier executor left: its process group (SIGTERM, SIGKILL
        after `discard_grace`) if the recorded process still runs, its cgroup with what
        is in it, and its directory. A process that is not the recorded one is never
        signalled. NotAdoptable if `identity` names no directory under `root`."""
        directory = self._directory_of(identity, identity.ident)
        leader = _leader_to_signal(identity, self._boot)
        if leader is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(leader.pid, signal.SIGTERM)
            with trio.move_on_after(self._discard_grace):
                await leader.wait()
            if still_running(leader.pid, leader.started):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(leader.pid, signal.SIGKILL)
        cgroup = self._cgroup_of(directory.name, identity)
        with shielded_cleanup(self._discard_grace + 10):
            if cgroup is not None:
                await trio.to_thread.run_sync(cgroup.remove)
            await trio.to_thread.run_sync(functools.partial(shutil.rmtree, directory,
                                                            ignore_errors=True))

    def _directory_of(self, identity: ExecutionIdentity, name: str) -> Path:
        recorded = identity.details.get("directory", "")
        directory = Path(recorded)
        if (not recorded or directory.name in ("", ".", "..")
                or directory.parent.resolve() != self.root.resolve()):
            raise NotAdoptable(name, f"directory {recorded!r} is not an execution under "
                                     f"{str(self.root)!r}")
        return directory

    def _cgroup_of(self, name: str, identity: ExecutionIdentity) -> Cgroup | None:
        """The execution's cgroup again, if it had one of the kind this executor drives."""
        recorded = identity.details.get("cgroup", "")
        driver = self._driver
        if driver is None or recorded not in (driver.enforcement.value, "unknown"):
            return None
        if isinstance(driver, CgroupV2Driver):
            v2 = CgroupV2(driver.parent / name)
            return v2 if v2.path.is_dir() else None
        if isinstance(driver, CgroupV1Driver):
            v1 = CgroupV1(driver.memory_parent / name, driver.cpu_parent / name)
            return v1 if v1.memory.is_dir() else None
        return None

    async def _provision(
        self,
        spec: ExecutionSpec,
        directory: Path,
        work: Path,
        env: dict[str, str],
        preexec: Callable[[], None],
    ) -> None:
        scripts = directory / "provision"
        scripts.mkdir()
        for index, script in enumerate(spec.provision):
            path = scripts / f"{index:02d}-{script.name.replace('/', '_')}"
            path.write_text(script.script)
            argv = in_namespace(spec, [*script.interpreter, str(path)])
            try:
                code, output = await run_in_own_group(
                    argv, cwd=work, env=env, timeout=self._provision_timeout, preexec=preexec
                )
            except trio.TooSlowError:
                raise ProvisionFailed(
                    spec.name,
                    script.name,
                    -signal.SIGKILL,
                    f"killed after the {self._provision_timeout:g}s provision timeout",
                ) from None
            except OSError as error:
                raise ProvisionFailed(spec.name, script.name, -1, str(error)) from error
            if code != 0:
                raise ProvisionFailed(
                    spec.name, script.name, code, output.decode("utf-8", errors="replace")
                )


def _close_all(fds: Iterable[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


def _recorded_process(identity: ExecutionIdentity, name: str) -> tuple[int, int]:
    if not identity.ident.isdigit() or int(identity.ident) <= 1 or identity.started is None:
        raise NotAdoptable(name, f"{identity.ident!r} with start time {identity.started!r} "
                                 f"does not name a process")
    return int(identity.ident), identity.started


def _leader_to_signal(identity: ExecutionIdentity, boot: str) -> AdoptedLeader | None:
    """The recorded leader, if it is still that process and leads its group."""
    try:
        pid, started = _recorded_process(identity, identity.ident)
    except NotAdoptable:
        return None
    facts = process_facts(pid)
    if (identity.details.get("boot") != boot or facts is None or facts.state == "Z"
            or facts.started != started or facts.group != pid):
        return None
    return AdoptedLeader(pid, started)


def _write_identity(directory: Path, identity: ExecutionIdentity) -> None:
    text = json.dumps({"ident": identity.ident, "started": identity.started,
                       "details": identity.details})
    fd = os.open(directory / IDENTITY_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def _read_identity(directory: Path) -> ExecutionIdentity:
    try:
        raw = json.loads((directory / IDENTITY_FILE).read_text())
        details = dict(raw["details"])
        started = raw["started"]
        if started is not None and (isinstance(started, bool) or not isinstance(started, int)):
            raise TypeError(f"started: {started!r}")
        return ExecutionIdentity(ident=raw["ident"], started=started,
                                 details=details | {"directory": str(directory)})
    except (OSError, ValueError, TypeError, KeyError):
        # Unreadable: known by its directory alone (its cgroup can still be removed).
        return ExecutionIdentity(ident=directory.name, details={"directory": str(directory),
                                                                "cgroup": "unknown"})


def _scan(root: Path, running: set[Path]) -> tuple[ExecutionIdentity, ...]:
    try:
        entries = sorted(entry for entry in root.iterdir() if entry.is_dir())
    except OSError:
        return ()
    return tuple(_read_identity(entry) for entry in entries if entry not in running)
