import os
import signal
import sys
from pathlib import Path

import pytest
import trio

from dms.ensemble._requirements import Resources
from dms.executor import (
    Execution,
    ExecutionSpec,
    ExecutionState,
    ExecutorKind,
    ExecutorNotOpen,
    FileDelivery,
    InvalidSpec,
    LimitEnforcement,
    ProcessExecutor,
    ProvisionFailed,
    ProvisionScript,
    WorkloadKind,
)
from dms.executor._cgroups import probe_cgroups

PY = sys.executable
MiB = 1 << 20


def spec(name: str, *cmd: str, **kw: object) -> ExecutionSpec:
    return ExecutionSpec(name=name, executor=ExecutorKind.PROCESS, cmd=cmd, **kw)  # type: ignore[arg-type]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


async def logs_show(execution: Execution, line: str) -> None:
    """Waits (30 s at most, for a loaded machine) until the workload has printed `line`."""
    with trio.fail_after(30):
        while line not in (await execution.logs()).stdout:
            await trio.sleep(0.01)


async def test_task_exit_code_duration_and_logs_are_reported(tmp_path: Path) -> None:
    async with ProcessExecutor(tmp_path) as executor:
        execution = await executor.start(
            spec(
                "job",
                "sh",
                "-c",
                "echo out-line; echo err-line >&2; exit 7",
                kind=WorkloadKind.TASK,
            )
        )
        exit = await execution.wait()
        logs = await execution.logs(tail=10)
    assert exit.exit_code == 7 and not exit.succeeded and not exit.oom
    assert exit.duration > 0
    assert logs.stdout == "out-line\n" and logs.stderr == "err-line\n"
    assert execution.status().state is ExecutionState.EXITED


async def test_environment_working_directory_and_files_reach_the_process(tmp_path: Path) -> None:
    work = tmp_path / "somewhere"
    async with ProcessExecutor(tmp_path / "root") as executor:
        execution = await executor.start(
            spec(
                "env",
                "sh",
                "-c",
                "echo $GREETING; pwd; cat keys/id.pub",
                environment=("GREETING=hello=world",),
                working_directory=str(work),
                files=(FileDelivery("keys/id.pub", b"ssh-ed25519 AAAA"),),
            )
        )
        assert (await execution.wait()).succeeded
        logs = await execution.logs()
    assert logs.stdout.splitlines() == ["hello=world", str(work), "ssh-ed25519 AAAA"]


async def test_provision_scripts_run_in_order_before_start(tmp_path: Path) -> None:
    scripts = (
        ProvisionScript("first", "echo one > order.txt"),
        ProvisionScript("second", "echo two >> order.txt"),
    )
    async with ProcessExecutor(tmp_path) as executor:
        execution = await executor.start(spec("prov", "cat", "order.txt", provision=scripts))
        await execution.wait()
        assert (await execution.logs()).stdout == "one\ntwo\n"


async def test_failing_provision_script_aborts_with_its_output(tmp_path: Path) -> None:
    scripts = (
        ProvisionScript("ok", "true"),
        ProvisionScript("broken", "echo cannot fetch model >&2; exit 3"),
    )
    async with ProcessExecutor(tmp_path) as executor:
        with pytest.raises(ProvisionFailed, match="'broken' exited 3") as raised:
            await executor.start(spec("prov", "true", provision=scripts))
    assert raised.value.output == "cannot fetch model\n"


async def test_absolute_file_path_names_its_field(tmp_path: Path) -> None:
    async with ProcessExecutor(tmp_path) as executor:
        with pytest.raises(InvalidSpec, match=r"files\[0\]\.path"):
            await executor.start(spec("f", "true", files=(FileDelivery("/etc/x", b""),)))


async def test_missing_program_names_the_command(tmp_path: Path) -> None:
    async with ProcessExecutor(tmp_path) as executor:
        with pytest.raises(InvalidSpec, match="no-such-program"):
            await executor.start(spec("f", "no-such-program"))


async def test_start_outside_the_context_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ExecutorNotOpen):
        await ProcessExecutor(tmp_path).start(spec("x", "true"))


async def test_stop_kills_the_whole_group_leaving_no_orphan(tmp_path: Path) -> None:
    # the leader ignores SIGTERM, so stop must escalate to SIGKILL after the grace period
    script = "trap '' TERM; sleep 300 & sleep 300 & echo started; wait"
    async with ProcessExecutor(tmp_path) as executor:
        execution = await executor.start(spec("svc", "sh", "-c", script))
        await logs_show(execution, "started")
        members = execution.group_members()
        assert len(members) == 3
        exit = await execution.stop(grace=0.3)
    assert exit.stopped and exit.signal == signal.SIGKILL
    assert execution.status().state is ExecutionState.STOPPED
    assert not any(alive(pid) for pid in members)


async def test_stop_is_graceful_when_the_workload_honours_sigterm(tmp_path: Path) -> None:
    async with ProcessExecutor(tmp_path) as executor:
        execution = await executor.start(spec("svc", "sleep", "300"))
        exit = await execution.stop(grace=5)
    assert exit.signal == signal.SIGTERM and exit.duration < 5


async def test_leaving_the_executor_stops_every_execution(tmp_path: Path) -> None:
    async with ProcessExecutor(tmp_path, close_grace=1) as executor:
        execution = await executor.start(spec("svc", "sleep", "300"))
        pid = execution.pid
    assert not alive(pid)
    assert execution.status().exit is not None


async def test_exec_runs_in_the_workload_environment(tmp_path: Path) -> None:
    async with ProcessExecutor(tmp_path) as executor:
        execution = await executor.start(spec("svc", "sleep", "300", environment=("MODE=ready",)))
        result = await execution.exec(("sh", "-c", "echo $MODE"), timeout=5)
        await execution.stop(grace=1)
    assert result.exit_code == 0 and result.output == "ready\n"


async def test_stats_report_the_group(tmp_path: Path) -> None:
    async with ProcessExecutor(tmp_path) as executor:
        execution = await executor.start(spec("svc", "sh", "-c", "sleep 300 & echo started; wait"))
        await logs_show(execution, "started")  # the child is forked: the group has two
        stats = await execution.stats()
        await execution.stop(grace=1)
    assert stats.pids == 2 and stats.memory_bytes > 0


ALLOCATE = f"{PY} -c \"blocks = [bytearray(16 << 20) for _ in range(64)]; print('survived')\""


async def test_memory_limit_under_rlimit_is_reported_out_of_memory(tmp_path: Path) -> None:
    limits = Resources(ram=256 * MiB)
    async with ProcessExecutor(tmp_path, cgroups=False) as executor:
        execution = await executor.start(spec("hog", "sh", "-c", ALLOCATE, resources=limits))
        exit = await execution.wait()
    assert execution.status().enforcement is LimitEnforcement.RLIMIT
    assert exit.oom and exit.oom_evidence == "stderr: MemoryError"
    assert execution.status().state is ExecutionState.OUT_OF_MEMORY


async def test_memory_limit_under_cgroup_is_killed_and_reported(tmp_path: Path) -> None:
    if os.geteuid() != 0 or probe_cgroups() is None:
        pytest.skip("no writable cgroup memory controller (needs root and cgroup v2 or v1)")
    limits = Resources(ram=128 * MiB, cpu=1.0)
    async with ProcessExecutor(tmp_path) as executor:
        execution = await executor.start(spec("hog", "sh", "-c", ALLOCATE, resources=limits))
        exit = await execution.wait()
        logs = await execution.logs()
    assert execution.status().enforcement in (
        LimitEnforcement.CGROUP_V1,
        LimitEnforcement.CGROUP_V2,
    )
    assert exit.oom and "oom_kill=" in exit.oom_evidence
    assert "survived" not in logs.stdout


async def test_within_the_memory_limit_nothing_is_reported(tmp_path: Path) -> None:
    async with ProcessExecutor(tmp_path) as executor:
        execution = await executor.start(
            spec("small", PY, "-c", "x = bytearray(8 << 20)", resources=Resources(ram=512 * MiB))
        )
        exit = await execution.wait()
    assert exit.succeeded and not exit.oom


async def test_cpu_time_limit_ends_a_busy_task(tmp_path: Path) -> None:
    async with ProcessExecutor(tmp_path, cgroups=False) as executor:
        execution = await executor.start(
            spec("busy", PY, "-c", "while True: pass", cpu_time_limit=1, kind=WorkloadKind.TASK)
        )
        exit = await execution.wait()
    assert exit.signal in (signal.SIGXCPU, signal.SIGKILL)


async def test_provision_script_killing_its_group_cannot_reach_dms(tmp_path: Path) -> None:
    # `kill 0` signals the script's process group: it must not be the test's (dms's) own.
    # The script ignores SIGTERM itself so that only dms's fate decides the outcome.
    script = "trap '' TERM\ntrap 'kill 0' EXIT\nsleep 5 &\necho provisioned\n"
    provision = (ProvisionScript("setup", script),)
    async with ProcessExecutor(tmp_path) as executor:
        execution = await executor.start(spec("prov", "true", provision=provision))
        exit = await execution.wait()
    assert exit.exit_code == 0


async def test_provision_script_runs_under_the_workload_limits(tmp_path: Path) -> None:
    provision = (ProvisionScript("limits", "echo $(ulimit -v) > limit.txt"),)
    ram = 256 * MiB
    async with ProcessExecutor(tmp_path, cgroups=False) as executor:
        execution = await executor.start(
            spec("prov", "cat", "limit.txt", provision=provision, resources=Resources(ram=ram))
        )
        await execution.wait()
        assert (await execution.logs()).stdout == f"{ram // 1024}\n"


async def test_provision_script_past_its_timeout_is_killed_with_its_children(
    tmp_path: Path,
) -> None:
    pid_file = tmp_path / "child.pid"
    provision = (ProvisionScript("hang", f"sleep 300 & echo $! > {pid_file}; sleep 300"),)
    async with ProcessExecutor(tmp_path / "root", provision_timeout=0.5) as executor:
        with trio.fail_after(3), pytest.raises(ProvisionFailed, match="'hang'"):
            await executor.start(spec("prov", "true", provision=provision))
    assert not alive(int(pid_file.read_text()))


async def test_exec_probe_ignoring_sigterm_is_killed_at_its_timeout(tmp_path: Path) -> None:
    probe = ("sh", "-c", "trap '' TERM; sleep 300 & echo $! > probe.pid; sleep 300")
    async with ProcessExecutor(tmp_path) as executor:
        execution = await executor.start(spec("svc", "sleep", "300"))
        started = trio.current_time()
        with pytest.raises(trio.TooSlowError):
            await execution.exec(probe, timeout=0.5)
        assert trio.current_time() - started < 1.5
        child = int((execution.work / "probe.pid").read_text())
        await execution.stop(grace=0)
    with trio.fail_after(10):  # SIGKILL was sent; a loaded kernel may take a moment
        while alive(child):
            await trio.sleep(0.01)


async def test_a_failing_log_disk_drops_output_without_harming_other_executions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dms.executor._logfile import RotatingLogFile

    real_write = RotatingLogFile.write

    def write(self: RotatingLogFile, data: bytes | bytearray) -> None:
        if "chatty" in str(self.path) and self.path.name == "stdout.log":
            raise OSError(28, "No space left on device")
        real_write(self, data)

    monkeypatch.setattr(RotatingLogFile, "write", write)
    with trio.fail_after(10):
        async with ProcessExecutor(tmp_path, close_grace=0) as executor:
            quiet = await executor.start(spec("quiet", "sleep", "300"))
            chatty = await executor.start(
                spec("chatty", "sh", "-c", "yes hello | head -c 300000", kind=WorkloadKind.TASK)
            )
            exit = await chatty.wait()
            assert exit.exit_code == 0
            assert quiet.status().state is ExecutionState.RUNNING
            assert "300000 bytes of stdout.log dropped: [Errno 28]" in (await chatty.logs()).stderr


async def test_failed_provision_leaves_no_secrets_on_disk(tmp_path: Path) -> None:
    secret = (FileDelivery("keys/id_ed25519", b"SECRET-KEY", 0o600),)
    provision = (ProvisionScript("db/init", "ls -l keys/id_ed25519 > /dev/null; exit 2"),)
    async with ProcessExecutor(tmp_path) as executor:
        with pytest.raises(ProvisionFailed, match="'db/init' exited 2"):
            await executor.start(spec("bad", "true", files=secret, provision=provision))
    assert list(tmp_path.iterdir()) == []


async def test_delivered_secret_is_private_from_creation(tmp_path: Path) -> None:
    secret = (FileDelivery("keys/id_ed25519", b"SECRET-KEY", 0o600),)
    async with ProcessExecutor(tmp_path) as executor:
        execution = await executor.start(
            spec("keys", "stat", "-c", "%a", "keys", "keys/id_ed25519", files=secret)
        )
        await execution.wait()
        assert (await execution.logs()).stdout == "700\n600\n"
        assert (execution.directory.stat().st_mode & 0o777) == 0o700


async def test_working_directory_that_is_a_file_names_its_field(tmp_path: Path) -> None:
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("x")
    async with ProcessExecutor(tmp_path / "root") as executor:
        with pytest.raises(InvalidSpec, match="working_directory: .*file"):
            await executor.start(spec("wd", "true", working_directory=str(not_a_directory)))
