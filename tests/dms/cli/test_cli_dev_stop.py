"""`dms dev` leaves nothing running: Ctrl-C stops its nodes and their workloads, and a
node whose supervisor is gone stops by itself."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

from .conftest import DMS, environment, gone_within, processes_under, start_dev

SLEEPER = """
version: V1
allocations:
  sleeper:
    type: service
    executor: process
    resources: {cpu: 0.1, ram: 16Mi, disk: 1Mi}
    execution: {command: sleep, args: ["300"]}
nodes:
  n: {allocations: [sleeper]}
"""


def test_ctrl_c_stops_every_node_and_running_workload_leaving_nothing(tmp_path: Path) -> None:
    net = start_dev(tmp_path, providers=1)
    try:
        ensemble = tmp_path / "sleeper.yaml"
        ensemble.write_text(SLEEPER)
        deployed = net.dms("deploy", str(ensemble), "--wait")
        assert deployed.returncode == 0, deployed.stderr
        running = processes_under(tmp_path)
        assert any("sleep 300" in line for line in running), running
    finally:
        status = net.stop()
    assert status == 0, (tmp_path / "dev.stderr").read_text()
    assert gone_within(tmp_path, 10) == []
    assert not (tmp_path / "client.json").exists()


def test_a_node_started_with_exit_with_stdin_stops_when_stdin_closes(tmp_path: Path) -> None:
    """What keeps `dms dev`'s nodes from outliving it, even when it is killed: their
    stdin is a pipe from it, which the kernel closes when it ends."""
    node = subprocess.Popen([str(DMS), "node", "run", "--ephemeral", "--json",
                             "--exit-with-stdin"], env=environment(tmp_path),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert node.stdout is not None and node.stdin is not None
        assert json.loads(node.stdout.readline())["event"] == "listening"
        node.stdin.close()
        assert node.wait(timeout=30) == 0
    finally:
        if node.poll() is None:
            node.send_signal(signal.SIGKILL)
