"""`dms dev` leaves no workload behind a provider that died: a SIGKILLed provider
cannot stop its workloads, so the network, stopping because a node failed, removes
them (and says which node was killed, by which signal); a workload an earlier run
left is removed before the nodes' state is emptied at the next start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import trio

from dms.cli._supervisor import NodeProcess, NodeSpec, error_of
from dms.executor import ExecutionSpec, ExecutorKind, ProcessExecutor
from dms.executor._leader import process_facts
from dms.provider._workdir import hold_work_dir

from .conftest import DMS, environment, processes_under, start_dev

SLEEPER = """
version: V1
allocations:
  sleeper:
    type: service
    executor: process
    resources: {cpu: 0.1, ram: 16Mi, disk: 1Mi}
    execution: {command: sh, args: ["-c", "sleep 600 & sleep 600"]}
nodes:
  n: {allocations: [sleeper]}
"""


class _Ended:
    """What `obituary` reads of a process: how it ended."""

    def __init__(self, returncode: int) -> None:
        self.returncode = returncode


def _node(returncode: int) -> NodeProcess:
    return NodeProcess(NodeSpec("provider2", (), stage=1), _Ended(returncode))  # type: ignore[arg-type]


def _record(level: str, message: str) -> str:
    return f'{{"time": 1.0, "level": "{level}", "logger": "dms.provider", "message": "{message}"}}'


def test_obituary_of_a_node_killed_by_a_signal_names_the_signal_and_its_last_error() -> None:
    node = _node(-signal.SIGKILL)
    node.take_stderr(_record("ERROR", "records could not be kept"))
    node.take_stderr(_record("INFO", "provider restored: 0 deployments resumed"))
    assert node.obituary() == ("node provider2 was killed by SIGKILL: records could not "
                               "be kept")


def test_obituary_says_no_error_was_logged_rather_than_quoting_info_lines() -> None:
    node = _node(-signal.SIGTERM)
    node.take_stderr(_record("INFO", "provider restored: 0 deployments resumed"))
    node.take_stderr(_record("WARNING", "executor docker left out"))
    assert node.obituary() == "node provider2 was killed by SIGTERM: no error logged"


def test_obituary_of_a_node_that_exited_gives_its_status_and_unlogged_stderr() -> None:
    node = _node(1)
    node.take_stderr(_record("INFO", "listening"))
    node.take_stderr("Error: --anchor: not a did:key")
    node.take_stderr("")
    assert node.obituary() == "node provider2 exited with status 1: Error: --anchor: not a did:key"


def test_error_of_keeps_error_and_critical_records_and_lines_that_are_not_records() -> None:
    assert error_of(_record("CRITICAL", "disk full")) == "disk full"
    assert error_of(_record("DEBUG", "x")) is None
    assert error_of("Traceback (most recent call last):") == "Traceback (most recent call last):"
    assert error_of('"just a string"') == '"just a string"'
    assert error_of("   ") is None


def _alive(pid: int) -> bool:
    facts = process_facts(pid)
    return facts is not None and facts.state != "Z"


def _group(pgid: int) -> list[int]:
    """Live processes in process group `pgid`."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            facts = process_facts(int(entry.name))
            if facts is not None and facts.group == pgid and facts.state != "Z":
                members.append(int(entry.name))
    return members


def _group_gone_within(pgid: int, timeout: float) -> list[int]:
    ends = time.monotonic() + timeout
    while (left := _group(pgid)) and time.monotonic() < ends:
        time.sleep(0.1)
    return left


def _pid_of(tmp_path: Path, words: str) -> int:
    found = [line for line in processes_under(tmp_path) if words in line]
    assert len(found) >= 1, processes_under(tmp_path)
    return int(found[0].split(":", 1)[0])


def test_a_provider_sigkilled_under_dms_dev_stops_the_network_and_leaves_no_workload(
        tmp_path: Path) -> None:
    net = start_dev(tmp_path, providers=1)
    try:
        ensemble = tmp_path / "sleeper.yaml"
        ensemble.write_text(SLEEPER)
        deployed = net.dms("deploy", str(ensemble), "--wait")
        assert deployed.returncode == 0, deployed.stderr
        workload = _pid_of(tmp_path, "sh -c sleep 600")
        assert len(_group(workload)) == 3  # sh and its two sleeps
        provider = _pid_of(tmp_path, "--key-name provider1")
        os.kill(provider, signal.SIGKILL)
        status = net.process.wait(timeout=120)
    finally:
        net.stop()
    stderr = (tmp_path / "dev.stderr").read_text()
    assert status == 1, stderr
    assert "Error: node provider1 was killed by SIGKILL" in stderr, stderr
    assert f"node provider1 left workloads behind; removed 1: {workload}" in stderr, stderr
    assert _group_gone_within(workload, 10) == []
    assert processes_under(tmp_path) == []


def _leave_a_workload(work: Path) -> int:
    """Run `sleep 600` as the provider's process executor would, and leave it running
    (as a provider killed mid-run does): its pid."""
    async def leave() -> int:
        async with ProcessExecutor(work / "process") as executor:
            execution = await executor.start(ExecutionSpec(
                name="left", executor=ExecutorKind.PROCESS, cmd=("sleep", "600")))
            executor.detach()
            return execution.pid
    return trio.run(leave)


def _left_by(tmp_path: Path, node: str) -> int:
    """A workload `node` of an earlier `dms dev` left running in its work directory
    (left by a child process, so that it is no child of this one): its pid."""
    script = ("import sys, pathlib\n"
              "from tests.dms.cli.test_cli_dev_leftovers import _leave_a_workload\n"
              "print(_leave_a_workload(pathlib.Path(sys.argv[1])))\n")
    work = tmp_path / "dev" / "nodes" / node / "work"
    left = subprocess.run([sys.executable, "-c", script, str(work)], capture_output=True,
                          text=True, timeout=60, cwd=Path(__file__).resolve().parents[3])
    assert left.returncode == 0, left.stderr
    pid = int(left.stdout)
    assert _alive(pid)
    return pid


def test_dms_dev_started_over_a_leftover_workload_removes_it_before_emptying_the_state(
        tmp_path: Path) -> None:
    pid = _left_by(tmp_path, "provider1")
    net = start_dev(tmp_path, providers=1)
    try:
        assert not _alive(pid)
    finally:
        status = net.stop()
    stderr = (tmp_path / "dev.stderr").read_text()
    assert status == 0, stderr
    assert f"node provider1 left workloads behind; removed 1: {pid}" in stderr, stderr


def test_dms_dev_refuses_to_start_over_a_work_directory_a_provider_still_holds(
        tmp_path: Path) -> None:
    """A provider of an earlier run still working there (its supervisor was killed and
    it is stopping): its workloads are its own, so they are not removed, and nothing
    is started; what another node left is removed all the same."""
    elsewhere = _left_by(tmp_path, "provider2")
    work = tmp_path / "dev" / "nodes" / "provider1" / "work"
    with hold_work_dir(work):
        refused = subprocess.run([str(DMS), "dev", "--providers", "2", "--json"],
                                 env=environment(tmp_path), capture_output=True, text=True,
                                 timeout=60)
    assert refused.returncode == 2, refused.stderr
    lines = refused.stderr.strip().splitlines()
    assert not _alive(elsewhere)
    assert lines[0] == f"node provider2 left workloads behind; removed 1: {elsewhere}"
    lines = lines[1:]
    assert len(lines) == 1 and lines[0].startswith("Error: node provider1: work directory "
                                                   f"{work} is in use"), refused.stderr
    assert lines[0].endswith("; nothing was started"), refused.stderr
    assert refused.stdout == ""
    assert not (tmp_path / "client.json").exists()
