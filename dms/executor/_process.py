"""The embedded executor: runs an allocation's command as a local process group.

Limits are enforced by the kernel: a per-execution cgroup (v2, or v1 on hybrid hosts)
when running as root with cgroups writable, else rlimits (RLIMIT_AS for memory; the
cpu *rate* is then not enforced, which `status().enforcement` makes visible).
RLIMIT_CPU caps a task's total cpu seconds when `cpu_time_limit` is set.

Out-of-memory is reported from evidence, not guessed: the cgroup's oom_kill counter,
or under rlimits a non-zero exit whose stderr tail shows an allocation failure
(`MemoryError`, `Cannot allocate memory`, `std::bad_alloc`, `out of memory`).

Each execution lives in `<root>/<name>-<id>/`: `work/` (working directory unless the
spec names one), `logs/stdout.log` and `logs/stderr.log` (rotated), `provision/`.
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import Self

import trio

from dms.cleanup import shielded_cleanup
from dms.executor._cgroups import Cgroup, CgroupDriver, CgroupLimits, probe_cgroups
from dms.executor._errors import ExecutorNotOpen, InvalidSpec, ProvisionFailed
from dms.executor._logfile import RotatingLogFile, pump_into, tail_lines
from dms.executor._procstat import group_members, group_stats
from dms.executor._spec import ExecutionSpec, FileDelivery
from dms.executor._status import (
    ExecResult,
    ExecutionState,
    ExecutionStatus,
    ExitStatus,
    LimitEnforcement,
    Logs,
    ResourceStats,
)
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


class ProcessExecution:
    def __init__(
        self,
        spec: ExecutionSpec,
        process: trio.Process,
        directory: Path,
        work: Path,
        env: dict[str, str],
        cgroup: Cgroup | None,
    ) -> None:
        self.spec = spec
        self.directory = directory
        self.work = work
        self._process = process
        self._env = env
        self._cgroup = cgroup
        self._started_monotonic = time.monotonic()
        self._started_at = time.time()
        self._stop_requested = False
        self._exit: ExitStatus | None = None
        self._done = trio.Event()
        self._removed = False
        self._log_files: list[RotatingLogFile] = []

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def enforcement(self) -> LimitEnforcement:
        return self._cgroup.enforcement if self._cgroup else LimitEnforcement.RLIMIT

    def _log(self, stream: str) -> Path:
        return self.directory / "logs" / f"{stream}.log"

    async def _watch(self, max_bytes: int, backups: int) -> None:
        """Owns the pipes and the exit: started in the executor's nursery."""
        assert self._process.stdout is not None and self._process.stderr is not None
        try:
            async with trio.open_nursery() as pumps:
                for stream, pipe in (
                    ("stdout", self._process.stdout),
                    ("stderr", self._process.stderr),
                ):
                    log = RotatingLogFile(self._log(stream), max_bytes, backups)
                    self._log_files.append(log)
                    pumps.start_soon(pump_into, pipe, log)
                try:
                    code = await self._process.wait()
                finally:
                    self._kill_group(signal.SIGKILL)  # the allocation ends with its leader
                    pumps.cancel_scope.deadline = trio.current_time() + _DRAIN_SECONDS
            await self._finish(code)
        finally:
            if not self._done.is_set():  # _finish never ran or failed: waiters must not hang
                returncode = self._process.returncode
                self._exit = ExitStatus(
                    exit_code=returncode if returncode is not None and returncode >= 0 else None,
                    signal=None
                    if returncode is not None and returncode >= 0
                    else -(returncode or -signal.SIGKILL),
                    stopped=self._stop_requested,
                    duration=time.monotonic() - self._started_monotonic,
                )
                self._done.set()

    async def _finish(self, code: int) -> None:
        oom_evidence = ""
        if self._cgroup is not None:
            kills = self._cgroup.oom_kills()
            if kills:
                oom_evidence = f"{self._cgroup.enforcement.value} oom_kill={kills}"
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(self._cgroup.remove)
        else:
            tail = tail_lines(self._log("stderr"), 20).encode()
            oom_evidence = rlimit_oom_evidence(code, tail)
        self._exit = ExitStatus(
            exit_code=code if code >= 0 else None,
            signal=-code if code < 0 else None,
            oom=bool(oom_evidence),
            oom_evidence=oom_evidence,
            stopped=self._stop_requested and not oom_evidence,
            duration=time.monotonic() - self._started_monotonic,
        )
        self._done.set()

    def _kill_group(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._process.pid, sig)
        if self._cgroup is not None:
            for pid in self._cgroup.pids():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)

    async def wait(self) -> ExitStatus:
        await self._done.wait()
        assert self._exit is not None
        return self._exit

    def note_stop_requested(self) -> None:
        """A stop asked for by other means (a VM guest's shutdown) is reported as a stop."""
        if not self._done.is_set():
            self._stop_requested = True

    async def stop(self, grace: float = 10.0) -> ExitStatus:
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

    async def stats(self) -> ResourceStats:
        return await trio.to_thread.run_sync(group_stats, self.pid)

    async def exec(self, argv: tuple[str, ...], timeout: float) -> ExecResult:
        """Runs `argv` beside the workload; past `timeout` its whole group is killed."""
        code, output = await run_in_own_group(
            list(argv), cwd=self.work, env=self._env, timeout=timeout
        )
        return ExecResult(code, output.decode("utf-8", errors="replace"))

    async def remove(self) -> None:
        await self.stop(grace=0)
        if not self._removed:
            self._removed = True
            shutil.rmtree(self.directory, ignore_errors=True)


class ProcessExecutor:
    """Runs `ExecutionSpec`s with `executor=process` under `root`.

    `cgroups=None` probes for a working cgroup flavour; `False` forces rlimits."""

    def __init__(
        self,
        root: Path,
        *,
        cgroups: bool | None = None,
        log_max_bytes: int = 1 << 20,
        log_backups: int = 3,
        close_grace: float = 5.0,
        provision_timeout: float = 600.0,
    ) -> None:
        self.root = root
        self._provision_timeout = provision_timeout
        self._want_cgroups = cgroups
        self._log_max_bytes = log_max_bytes
        self._log_backups = log_backups
        self._close_grace = close_grace
        self._driver: CgroupDriver | None = None
        self._nursery: trio.Nursery | None = None
        self._stack = contextlib.AsyncExitStack()
        self._executions: list[ProcessExecution] = []

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
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(work)} | spec.env
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
        try:
            # Provision scripts run under the workload's own limits (cgroup or rlimits).
            await self._provision(spec, directory, work, env, preexec)
            process = await trio.lowlevel.open_process(
                list(spec.argv),
                cwd=work,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                preexec_fn=preexec,
            )
        except OSError as error:
            if cgroup is not None:
                cgroup.remove()
            raise InvalidSpec(
                f"cmd: cannot run {spec.argv[0]!r} for {spec.name!r}: {error}"
            ) from error
        except BaseException:
            if cgroup is not None:
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(cgroup.remove)
            raise
        execution = ProcessExecution(spec, process, directory, work, env, cgroup)
        self._executions.append(execution)
        self._nursery.start_soon(execution._watch, self._log_max_bytes, self._log_backups)
        return execution

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
            argv = [*script.interpreter, str(path)]
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
