"""`dms node run` and `dms node ping`, as separate processes on loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

DMS = Path(sys.executable).with_name("dms")
UCAN = Path(sys.executable).with_name("ucan")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("node-command")


@pytest.fixture(scope="module")
def env(home: Path) -> dict[str, str]:
    if not DMS.exists() or not UCAN.exists():
        pytest.skip(f"console scripts not installed next to {sys.executable}")
    return {**os.environ, "UCAN_PASSPHRASE": "correct horse",
            "UCAN_KEYSTORE": str(home / "keys"), "UCAN_STORE": str(home / "tokens")}


@pytest.fixture(scope="module")
def server(env: dict[str, str], home: Path) -> Iterator[dict[str, str]]:
    """One node for the module (a node's start is most of each test's time): the refused
    ping presents no grant and the granted one its own, so neither depends on the other."""
    proc = subprocess.Popen([str(DMS), "node", "run", "--json", "--state-dir",
                             str(home / "state")], env=env, stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None
        listening = json.loads(proc.stdout.readline())
        yield listening
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
        stopped = json.loads(out.strip().splitlines()[-1])
        assert stopped["event"] == "stopped"


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), env=env, capture_output=True, text=True, timeout=60)


def test_a_node_listens_on_tcp_by_default(server) -> None:
    assert server["event"] == "listening" and server["address"].startswith("tcp://127.0.0.1:")


def test_a_ping_without_a_grant_is_refused_with_the_failure_named(env, server) -> None:
    result = run(env, str(DMS), "node", "ping", server["address"], "--json")
    assert result.returncode == 1, result.stderr
    assert json.loads(result.stdout)["refused"] == "InvalidClaim"


def test_a_granted_ping_is_answered(env, server, tmp_path: Path) -> None:
    # the node's key is the keystore's "node": the operator grants in its name
    assert run(env, str(UCAN), "key", "new", "me").returncode == 0
    me = run(env, str(UCAN), "did", "me").stdout.strip()
    grant = tmp_path / "ping.ucan"
    issued = run(env, str(UCAN), "grant", "--as", "node", "--aud", me, "--cmd", "/dms/node",
                 "--exp", "1h", "-o", str(grant))
    assert issued.returncode == 0, issued.stderr
    result = run(env, str(DMS), "node", "ping", server["address"], "--as", "me",
                 "--proof", str(grant), "--count", "2", "--json")
    assert result.returncode == 0, result.stderr
    pongs = [json.loads(line) for line in result.stdout.splitlines()]
    assert [p["seq"] for p in pongs] == [1, 2]
    assert all(p["peer"] == server["did"] for p in pongs)


def test_an_unreachable_address_exits_2(env) -> None:
    result = run(env, str(DMS), "node", "ping", "ws://127.0.0.1:9", "--timeout", "1")
    assert result.returncode == 2
    assert "unreachable" in result.stderr
