"""Process executions outliving their executor: detached, found again (`leftovers`),
adopted by the next executor on the same root or discarded; a pid that now belongs to
another process is never adopted nor signalled."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
import trio

from dms.executor import (
    ExecutionSpec,
    ExecutionState,
    ExecutorKind,
    ExitStatus,
    NotAdoptable,
    ProcessExecution,
    ProcessExecutor,
    WorkloadKind,
)
from dms.executor._leader import process_facts

PY = sys.executable
# Prints 0, 1, 2, ... on stdout, one line each 20 ms, until killed.
COUNTER = ("import itertools, time\n"
           "for n in itertools.count():\n"
           "    print(n, flush=True)\n"
           "    time.sleep(0.02)\n")


def spec(name: str, *cmd: str, **kw: object) -> ExecutionSpec:
    return ExecutionSpec(name=name, executor=ExecutorKind.PROCESS, cmd=cmd, **kw)  # type: ignore[arg-type]


def alive(pid: int) -> bool:
    facts = process_facts(pid)
    return facts is not None and facts.state != "Z"


def reap(pid: int) -> None:
    """The test process is the workloads' real parent: reap what ended, if it is ours."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


async def gone(pid: int) -> None:
    with trio.fail_after(10):
        while alive(pid):
            await trio.sleep(0.02)


async def printed(execution: ProcessExecution, at_least: int) -> list[int]:
    """The numbers the counter printed, once it has printed `at_least` of them."""
    with trio.fail_after(30):
        while True:
            lines = (await execution.logs(tail=100_000)).stdout.split()
            if len(lines) >= at_least:
                return [int(line) for line in lines]
            await trio.sleep(0.02)


@contextlib.contextmanager
def stranger() -> Iterator[subprocess.Popen[bytes]]:
    """A process the executor did not start."""
    process = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        yield process
    finally:
        process.kill()
        process.wait()


async def test_a_detached_workload_runs_on_and_the_next_executor_adopts_it_losing_no_output(
        tmp_path: Path) -> None:
    counter = spec("counter", PY, "-c", COUNTER)
    async with ProcessExecutor(tmp_path) as first:
        old = await first.start(counter)
        await printed(old, 5)
        first.detach()
    pid = old.pid
    await trio.sleep(0.3)  # nobody reads its output now: it must not die of SIGPIPE
    assert alive(pid)

    async with ProcessExecutor(tmp_path) as second:
        (left,) = await second.leftovers()
        assert left == old.identity
        adopted = await second.adopt(left, counter)
        assert adopted.pid == pid
        assert adopted.status().state is ExecutionState.RUNNING
        numbers = await printed(adopted, len(await printed(adopted, 1)) + 20)
        assert numbers == list(range(len(numbers)))  # what it printed meanwhile is there
        assert await second.leftovers() == ()  # it runs it now

        exit = await adopted.stop(grace=5)
        assert exit.stopped and exit.state is ExecutionState.STOPPED
        assert adopted.group_members() == []
    reap(pid)


async def test_an_adopted_workload_that_ends_by_itself_is_noticed(tmp_path: Path) -> None:
    task = spec("task", PY, "-c", "import os, time\n"
                "while not os.path.exists('done'): time.sleep(0.02)\n"
                "raise SystemExit(3)", kind=WorkloadKind.TASK)
    async with ProcessExecutor(tmp_path) as first:
        old = await first.start(task)
        first.detach()
    async with ProcessExecutor(tmp_path) as second:
        adopted = await second.adopt(old.identity, task)
        (adopted.work / "done").write_text("")
        with trio.fail_after(10):
            exit = await adopted.wait()
        # Still our child here (the same process adopted it), so its code is known; a
        # restarted provider's adoptee is not its child and reports it unknown.
        assert exit.exit_code == 3
        assert adopted.status().state is ExecutionState.EXITED


def test_an_unknown_exit_status_says_so() -> None:
    assert ExitStatus(exit_code=None, duration=1.0).describe() == (
        "exit status unknown after 1.00s")


async def test_a_pid_that_belongs_to_another_process_now_is_not_adopted_nor_signalled(
        tmp_path: Path) -> None:
    async with ProcessExecutor(tmp_path) as first:
        old = await first.start(spec("victim", "sleep", "60"))
        first.detach()
    recorded = old.identity
    with stranger() as other:
        facts = process_facts(other.pid)
        assert facts is not None
        # The record names the stranger's pid with the start time the workload had.
        reused = attrs.evolve(recorded, ident=str(other.pid), started=facts.started + 1)
        async with ProcessExecutor(tmp_path) as second:
            with pytest.raises(NotAdoptable, match=f"pid {other.pid} is another process now"):
                await second.adopt(reused, spec("victim", "sleep", "60"))
            await second.discard(reused)
            assert other.poll() is None  # never signalled
            assert not old.directory.exists()  # its files went all the same
    os.killpg(old.pid, signal.SIGKILL)
    await gone(old.pid)
    reap(old.pid)


async def test_a_record_from_before_a_reboot_or_outside_the_root_is_not_adopted(
        tmp_path: Path) -> None:
    async with ProcessExecutor(tmp_path / "root") as first:
        old = await first.start(spec("sleeper", "sleep", "60"))
        first.detach()
    try:
        async with ProcessExecutor(tmp_path / "root") as second:
            rebooted = attrs.evolve(old.identity,
                                    details=old.identity.details | {"boot": "another-boot"})
            with pytest.raises(NotAdoptable, match="before this machine last booted"):
                await second.adopt(rebooted, old.spec)
            elsewhere = attrs.evolve(old.identity, details=old.identity.details
                                     | {"directory": str(tmp_path / "elsewhere")})
            with pytest.raises(NotAdoptable, match="is not an execution under"):
                await second.adopt(elsewhere, old.spec)
            with pytest.raises(NotAdoptable, match="is not an execution under"):
                await second.discard(elsewhere)
            assert alive(old.pid)
            await second.discard(old.identity)
            assert not alive(old.pid)
    finally:
        reap(old.pid)


async def test_an_ended_leftover_is_not_adopted_and_discarding_it_removes_its_files(
        tmp_path: Path) -> None:
    async with ProcessExecutor(tmp_path) as first:
        old = await first.start(spec("short", "sleep", "60"))
        first.detach()
    os.killpg(old.pid, signal.SIGKILL)
    await gone(old.pid)
    async with ProcessExecutor(tmp_path) as second:
        with pytest.raises(NotAdoptable, match=f"pid {old.pid} is no longer running"):
            await second.adopt(old.identity, old.spec)
        (left,) = await second.leftovers()
        await second.discard(left)
        assert await second.leftovers() == ()
    reap(old.pid)


async def test_discarding_a_running_leftover_ends_its_whole_group(tmp_path: Path) -> None:
    async with ProcessExecutor(tmp_path, discard_grace=0.5) as first:
        old = await first.start(spec("family", "sh", "-c", "sleep 300 & sleep 300"))
        with trio.fail_after(10):
            while len(old.group_members()) < 2:
                await trio.sleep(0.02)
        members = old.group_members()
        first.detach()
    async with ProcessExecutor(tmp_path, discard_grace=0.5) as second:
        (left,) = await second.leftovers()
        await second.discard(left)
        for pid in members:
            await gone(pid)
        assert not old.directory.exists()
    for pid in members:
        reap(pid)


async def test_a_leftover_without_a_readable_identity_is_listed_by_its_directory(
        tmp_path: Path) -> None:
    damaged = tmp_path / "damaged-0000"
    damaged.mkdir()
    (damaged / "identity.json").write_text("{not json")
    async with ProcessExecutor(tmp_path) as executor:
        (left,) = await executor.leftovers()
        assert left.ident == "damaged-0000" and left.started is None
        with pytest.raises(NotAdoptable, match="does not name a process"):
            await executor.adopt(left, spec("damaged", "true"))
        await executor.discard(left)
    assert not damaged.exists()


async def test_leaving_without_detaching_still_stops_what_it_adopted(tmp_path: Path) -> None:
    async with ProcessExecutor(tmp_path) as first:
        old = await first.start(spec("sleeper", "sleep", "300"))
        first.detach()
    async with ProcessExecutor(tmp_path, close_grace=1) as second:
        await second.adopt(old.identity, old.spec)
    await gone(old.pid)
    reap(old.pid)
