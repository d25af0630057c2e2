"""Two nodes by hand, as an operator makes them: `dms init` each, the orchestrator
grants itself a market and the provider a place in it (`dms cap grant`), the provider
anchors and holds it (`dms cap anchor add`, `dms cap add`), and the owner deploys on
the orchestrator with no flags; a location constraint selects (or rejects) the
provider by the place it was started with."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import attrs
import pytest
from click.testing import CliRunner, Result

from dms.cli import main

from .conftest import DMS, environment, free_port, processes_under

TASK = """\
version: V1
allocations:
  hi:
    type: task
    executor: process
    resources: {{cpu: 0.1, ram: 16Mi, disk: 1Mi}}
    execution: {{command: echo, args: [hello from {country}]}}
nodes:
  n:
    allocations: [hi]
    location:
      accept: [{{continent: EU, country: {country}}}]
"""


def dms(env: dict[str, str], *args: str) -> Result:
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return result


def init(env: dict[str, str], data: Path, settings: dict[str, str]) -> str:
    made = dms(env, "init", "--data-dir", str(data), "--json")
    assert made.exit_code == 0, made.stderr
    config = data / "config.yaml"
    lines = [line for line in config.read_text().splitlines()
             if line.split(":", 1)[0] not in settings]
    config.write_text("\n".join([*lines, *(f"{k}: {v}" for k, v in settings.items())]) + "\n")
    steps = json.loads(made.stdout)["steps"]
    return str(next(step["detail"] for step in steps if step["what"] == "node key"))


def start(env: dict[str, str], data: Path, stack: ExitStack, *flags: str) -> dict[str, Any]:
    process = subprocess.Popen([str(DMS), "node", "run", "--data-dir", str(data), "--json",
                                "--exit-with-stdin", *flags], env=env, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)

    def stop() -> None:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)

    stack.callback(stop)
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], 60)
    assert ready, f"the node of {data} did not start"
    listening: dict[str, Any] = json.loads(process.stdout.readline())
    return listening


def join(env: dict[str, str], home: Path, market: Path, port: int, name: str) -> tuple[Path, str]:
    """A provider node `name` made to bid in the market of the node at `market`: it
    listens on websocket (a config written before tcp:// was the default) and dials the
    market's tcp:// address."""
    data = home / name
    did = init(env, data, {"listen": "ws://127.0.0.1:0",
                           "bootstrap": f"[tcp://127.0.0.1:{port}]",
                           "provide": "cpu=1,ram=256Mi,disk=64Mi"})
    place = home / f"{name}-in-market.ucan"
    granted = dms(env, "cap", "grant", "--data-dir", str(market), "--to", did,
                  "--cmd", "/dms/deployment", "--exp", "1h", "-o", str(place))
    assert granted.exit_code == 0, granted.stderr
    market_did = json.loads(dms(env, "cap", "list", "--data-dir", str(market),
                                "--json").stdout)["node"]
    for argv in (("anchor", "add", market_did), ("add", str(place))):
        done = dms(env, "cap", *argv, "--data-dir", str(data))
        assert done.exit_code == 0, done.stderr
    return data, did


@attrs.frozen
class Market:
    env: dict[str, str]  # the orchestrator's owner's
    home: Path
    data: Path  # the orchestrator's data directory
    port: int


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Market]:
    home = tmp_path_factory.mktemp("two")
    env = environment(home)
    a = home / "a"
    port = free_port()
    a_did = init(env, a, {"listen": f"tcp://127.0.0.1:{port}"})
    own_market = dms(env, "cap", "grant", "--data-dir", str(a), "--to", a_did,
                     "--cmd", "/dms/deployment", "--exp", "1h", "--json")
    assert own_market.exit_code == 0 and json.loads(own_market.stdout)["held"], \
        own_market.stderr
    b, b_did = join(env, home, a, port, "b")
    with ExitStack() as stack:
        start(env, a, stack)
        start(env, b, stack, "--location", "EU/FR/Paris")
        owner = {**env, "DMS_DATA_DIR": str(a)}
        linked(owner, b_did)
        yield Market(owner, home, a, port)


def linked(env: dict[str, str], peer: str, timeout: float = 30) -> None:
    """Wait until the orchestrator is linked with `peer` (as its owner sees it)."""
    ends = time.monotonic() + timeout
    while time.monotonic() < ends:
        table = dms(env, "peers", "--json")
        assert table.exit_code == 0, table.stderr
        if any(row["peer"] == peer and row["connected"]
               for row in json.loads(table.stdout)["peers"]):
            return
        time.sleep(0.2)
    raise AssertionError(f"{peer} did not link with the orchestrator within {timeout:g} s")


def test_the_orchestrator_says_it_orchestrates_in_its_own_market(
        market: Market) -> None:
    env = market.env
    status = dms(env, "node", "status", "--json")
    assert status.exit_code == 0, status.stderr
    info = json.loads(status.stdout)
    assert info["roles"] == ["orchestrator"] and info["markets"] == [info["did"]]


def test_a_location_constraint_selects_the_provider_by_its_place(
        market: Market) -> None:
    env, home = market.env, market.home
    (home / "fr.yaml").write_text(TASK.format(country="FR"))
    placed = dms(env, "deploy", str(home / "fr.yaml"), "--wait", "--timeout", "30")
    assert placed.exit_code == 0, placed.stderr
    assert "hello from FR" in placed.stdout


def test_a_location_constraint_rejects_a_provider_elsewhere_saying_why(
        market: Market) -> None:
    env, home = market.env, market.home
    (home / "de.yaml").write_text(TASK.format(country="DE"))
    refused = dms(env, "deploy", str(home / "de.yaml"), "--wait", "--timeout", "5")
    assert refused.exit_code == 1
    assert "location: continent EU country FR city Paris not accepted" in refused.stderr


SERVICE = """\
version: V1
allocations:
  idle:
    type: service
    executor: process
    resources: {cpu: 0.1, ram: 16Mi, disk: 1Mi}
    execution: {command: sleep, args: ["300"]}
nodes:
  n:
    allocations: [idle]
    location:
      accept: [{continent: EU, country: IT}]
"""


def workload_pids(work: Path) -> set[int]:
    """The processes whose working directory is under `work` (the provider's workloads)."""
    return {int(line.split(":", 1)[0]) for line in processes_under(work)}


def test_kept_workloads_run_on_while_the_provider_restarts(market: Market) -> None:
    data, did = join(market.env, market.home, market.data, market.port, "kept")
    flags = ("--location", "EU/IT/Rome", "--keep-workloads")
    (market.home / "it.yaml").write_text(SERVICE)
    with ExitStack() as first:
        start(market.env, data, first, *flags)
        linked(market.env, did)
        placed = dms(market.env, "deploy", str(market.home / "it.yaml"), "--wait",
                     "--timeout", "30", "--json")
        assert placed.exit_code == 0, placed.stderr
        deployment = json.loads(placed.stdout.splitlines()[0])["id"]
        running = workload_pids(data / "work")
        assert running, "the service runs under the provider's work directory"
    try:
        assert workload_pids(data / "work") == running  # left running by the stopped node
        with ExitStack() as second:
            start(market.env, data, second, *flags)
            linked(market.env, did)
            ends = time.monotonic() + 30
            while time.monotonic() < ends:
                status = json.loads(dms(market.env, "status", deployment, "--json").stdout)
                if status["phase"] == "running" and all(
                        a["state"] in ("running", "healthy") for a in status["allocations"]):
                    break
                time.sleep(0.3)
            assert status["phase"] == "running", status
            assert workload_pids(data / "work") == running  # re-adopted, not started again
            down = dms(market.env, "shutdown", deployment, "--wait")
            assert down.exit_code == 0, down.stderr
    finally:
        for pid in workload_pids(data / "work") & running:  # only what this test started
            os.kill(pid, signal.SIGKILL)
