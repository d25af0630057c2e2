"""Two nodes by hand, as an operator makes them: `dms init` each, the orchestrator
grants itself a market and the provider a place in it (`dms cap grant`), the provider
anchors and holds it (`dms cap anchor add`, `dms cap add`), and the owner deploys on
the orchestrator with no flags; a location constraint selects (or rejects) the
provider by the place it was started with."""

from __future__ import annotations

import json
import select
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from dms.cli import main

from .conftest import DMS, environment, free_port

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


@pytest.fixture(scope="module")
def orchestrator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, str], Path]]:
    home = tmp_path_factory.mktemp("two")
    env = environment(home)
    a, b = home / "a", home / "b"
    port = free_port()
    a_did = init(env, a, {"listen": f"ws://127.0.0.1:{port}"})
    b_did = init(env, b, {"listen": "ws://127.0.0.1:0",
                          "bootstrap": f"[ws://127.0.0.1:{port}]",
                          "provide": "cpu=1,ram=256Mi,disk=64Mi"})
    market = dms(env, "cap", "grant", "--data-dir", str(a), "--to", a_did,
                 "--cmd", "/dms/deployment", "--exp", "1h", "--json")
    assert market.exit_code == 0 and json.loads(market.stdout)["held"], market.stderr
    place = home / "b-in-a.ucan"
    granted = dms(env, "cap", "grant", "--data-dir", str(a), "--to", b_did,
                  "--cmd", "/dms/deployment", "--exp", "1h", "-o", str(place))
    assert granted.exit_code == 0, granted.stderr
    for argv in (("anchor", "add", a_did), ("add", str(place))):
        done = dms(env, "cap", *argv, "--data-dir", str(b))
        assert done.exit_code == 0, done.stderr
    with ExitStack() as stack:
        start(env, a, stack)
        start(env, b, stack, "--location", "EU/FR/Paris")
        owner = {**env, "DMS_DATA_DIR": str(a)}
        linked(owner, b_did)
        yield owner, home


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
        orchestrator: tuple[dict[str, str], Path]) -> None:
    env, _ = orchestrator
    status = dms(env, "node", "status", "--json")
    assert status.exit_code == 0, status.stderr
    info = json.loads(status.stdout)
    assert info["roles"] == ["orchestrator"] and info["markets"] == [info["did"]]


def test_a_location_constraint_selects_the_provider_by_its_place(
        orchestrator: tuple[dict[str, str], Path]) -> None:
    env, home = orchestrator
    (home / "fr.yaml").write_text(TASK.format(country="FR"))
    placed = dms(env, "deploy", str(home / "fr.yaml"), "--wait", "--timeout", "30")
    assert placed.exit_code == 0, placed.stderr
    assert "hello from FR" in placed.stdout


def test_a_location_constraint_rejects_a_provider_elsewhere_saying_why(
        orchestrator: tuple[dict[str, str], Path]) -> None:
    env, home = orchestrator
    (home / "de.yaml").write_text(TASK.format(country="DE"))
    refused = dms(env, "deploy", str(home / "de.yaml"), "--wait", "--timeout", "5")
    assert refused.exit_code == 1
    assert "location: continent EU country FR city Paris not accepted" in refused.stderr
