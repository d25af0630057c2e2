"""A `dms dev` network in subprocesses for the CLI's end-to-end tests, and a way to
see what is still running under its data directory (nodes by their command line,
workloads by their working directory)."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import attrs
import pytest

DMS = Path(sys.executable).with_name("dms")
UCAN = Path(sys.executable).with_name("ucan")
ROOT = Path(__file__).resolve().parents[3]
HELLO_WEB = ROOT / "examples" / "ensembles" / "hello-web.yaml"
READY_TIMEOUT = 90.0


def environment(tmp_path: Path) -> dict[str, str]:
    if not DMS.exists() or not UCAN.exists():
        pytest.skip(f"console scripts not installed next to {sys.executable}")
    return {**os.environ, "UCAN_PASSPHRASE": "dev test", "DMS_DATA_DIR": str(tmp_path),
            "UCAN_KEYSTORE": str(tmp_path / "own-keys"), "UCAN_STORE": str(tmp_path / "tokens"),
            "COLUMNS": "160"}


@attrs.define
class DevNet:
    process: subprocess.Popen[str]
    ready: dict[str, Any]
    env: dict[str, str]
    data_dir: Path

    def dms(self, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(DMS), *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout)

    def stop(self, timeout: float = 90) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # what Ctrl-C sends
        try:
            return self.process.wait(timeout=timeout)
        finally:
            if self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGKILL)


def start_dev(tmp_path: Path, providers: int) -> DevNet:
    env = environment(tmp_path)
    stderr = (tmp_path / "dev.stderr").open("w")
    process = subprocess.Popen([str(DMS), "dev", "--providers", str(providers), "--json"],
                               env=env, stdout=subprocess.PIPE, stderr=stderr, text=True,
                               start_new_session=True)
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], READY_TIMEOUT)
    line = process.stdout.readline() if ready else ""
    if not line:
        process.kill()
        process.wait()
        raise AssertionError(f"dms dev did not get ready: {(tmp_path / 'dev.stderr').read_text()}")
    return DevNet(process, json.loads(line), env, tmp_path)


def processes_under(path: Path) -> list[str]:
    """Processes (other than this one) whose command line names `path` or whose working
    directory is inside it: "pid: command"."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue  # gone, or not ours to read
        if str(path) in command or cwd.startswith(str(path)):
            found.append(f"{entry.name}: {command.strip()}")
    return found


def gone_within(path: Path, timeout: float) -> list[str]:
    """What still runs under `path` after up to `timeout` seconds."""
    ends = time.monotonic() + timeout
    while (left := processes_under(path)) and time.monotonic() < ends:
        time.sleep(0.1)
    return left


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def hello_web_on(path: Path, port: int) -> Path:
    """hello-web.yaml, its fixed port changed (tests must not fight over 8765)."""
    path.write_text(HELLO_WEB.read_text().replace("8765", str(port)))
    return path


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]
