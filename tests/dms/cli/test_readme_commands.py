"""Every command README.md shows in a shell block is run here, in the order shown, and
exits as the README says (0, or the `# exit N` its comment names).

The blocks run as a reader types them, with what a test must change: `...` (the
passphrase a reader chooses) is a test passphrase, `/tmp/` is this test's directory,
the ports 7000 and 7001 are free ones (and hello-web's 8765), `ID` is the deployment just made, and a command
the README runs in a shell of its own (`dms dev`) or in the background (`... &`) is
started and waited for until it is ready, then stopped at the end."""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from .conftest import DMS, ROOT, environment, gone_within, hello_web_on

README = ROOT / "README.md"
COMMAND_TIMEOUT = 120
READY_TIMEOUT = 60
READY = {"dms dev": "ready:", "dms node run": "listening"}
"""What a long-running command prints once it is ready (its first such line)."""
ENOUGH_PEERS = "linked with 1 peer"  # a node started with --bootstrap has linked


def shell_blocks(text: str) -> list[list[str]]:
    """The ```sh blocks, as logical lines (continuations joined), blank lines dropped."""
    blocks = []
    for body in re.findall(r"```sh\n(.*?)```", text, re.S):
        lines: list[str] = []
        for raw in body.replace("\\\n", " ").splitlines():
            if raw.strip():
                lines.append(raw.strip())
        blocks.append(lines)
    return blocks


def expected_exit(line: str) -> int:
    found = re.search(r"#\s*exit (\d+)", line)
    return int(found.group(1)) if found else 0


def without_comment(line: str) -> str:
    """The command before its `#` comment (none of README's commands quote a `#`)."""
    return line.split(" #", 1)[0].strip() if not line.startswith("#") else ""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def bootstraps(command: str) -> bool:
    """Whether the node `command` runs dials peers: by a flag, or its config's setting."""
    words = shlex.split(command)
    if "--bootstrap" in words:
        return True
    if "--data-dir" not in words:
        return False
    config = Path(words[words.index("--data-dir") + 1]) / "config.yaml"
    return config.exists() and bool((yaml.safe_load(config.read_text()) or {}).get("bootstrap"))


class Reader:
    """Types README's commands into one shell session: variables carry over."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.env = {**environment(tmp_path), "PATH": f"{DMS.parent}:{os.environ['PATH']}"}
        self.ports = {"7000": str(free_port()), "7001": str(free_port())}
        self.deployment = ""
        self.background: list[subprocess.Popen[str]] = []
        self.hello_web = hello_web_on(tmp_path / "hello-web.yaml", free_port())

    def typed(self, line: str) -> str:
        line = line.replace("=...", "=readme-test").replace("/tmp/", f"{self.tmp}/")
        line = line.replace("./state", f"{self.tmp}/state")
        line = line.replace("examples/ensembles/hello-web.yaml", str(self.hello_web))
        line = line.replace("examples/", f"{ROOT}/examples/")
        for port, free in self.ports.items():
            line = line.replace(f"127.0.0.1:{port}", f"127.0.0.1:{free}")
        if self.deployment:
            line = re.sub(r"\bID\b", self.deployment, line)
        return line

    def run(self, line: str) -> None:
        command = self.typed(without_comment(line))
        if not command:
            return
        if command.startswith("export "):
            for assignment in shlex.split(command)[1:]:
                name, _, value = assignment.partition("=")
                self.env[name] = os.path.expandvars(value)
            return
        assigned = re.fullmatch(r"([A-Z_]+)=\$\((.*)\)", command)
        if assigned:
            self.env[assigned.group(1)] = self.shell(assigned.group(2), 0).stdout.strip()
            return
        if command.endswith("&") or command.startswith(("dms dev", "dms node run")):
            self.start(command.rstrip("&").strip())
            return
        result = self.shell(command, expected_exit(line))
        if command.startswith("dms init "):  # its config's default port, made free
            for config in self.tmp.glob("*/config.yaml"):
                config.write_text(self.typed(config.read_text()))
        if command.startswith("dms deploy "):  # it prints the id first
            self.deployment = result.stdout.split("\n", 1)[0].strip()
            assert re.fullmatch(r"[0-9a-f-]{36}", self.deployment), result.stdout

    def shell(self, command: str, expected: int) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(["bash", "-c", command], env=self.env, cwd=self.tmp,
                                capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
        assert result.returncode == expected, (
            f"`{command}` exited {result.returncode}, README says {expected}:\n"
            f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
        assert "Traceback" not in result.stderr, result.stderr
        return result

    def start(self, command: str) -> None:
        process = subprocess.Popen(["bash", "-c", f"exec {command}"], env=self.env,
                                   cwd=self.tmp, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True,
                                   start_new_session=True)
        self.background.append(process)
        ready = next(mark for start, mark in READY.items() if command.startswith(start))
        wanted = [ready] + ([ENOUGH_PEERS] if bootstraps(command) else [])
        ends = time.monotonic() + READY_TIMEOUT
        assert process.stdout is not None
        seen = []
        for text in process.stdout:
            seen.append(text)
            wanted = [mark for mark in wanted if mark not in text]
            if not wanted or time.monotonic() > ends:
                break
        assert not wanted, f"`{command}` did not get ready:\n{''.join(seen)[-3000:]}"

    def stop(self) -> None:
        for process in reversed(self.background):  # the orchestrator last in, first out
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C sends
            try:
                process.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.fixture
def reader(tmp_path: Path) -> Iterator[Reader]:
    typing = Reader(tmp_path)
    try:
        yield typing
    finally:
        typing.stop()
    assert gone_within(tmp_path, 15) == []


BLOCKS = shell_blocks(README.read_text())


def block_with(command: str) -> int:
    return next(i for i, block in enumerate(BLOCKS) if any(command in ln for ln in block))


def test_every_shell_block_of_the_readme_is_run_by_a_test() -> None:
    # `make run` and `make test`: CI runs the one, test_make_run.py the other's script
    made = {i for i, block in enumerate(BLOCKS) if all(ln.startswith("make ") for ln in block)}
    tested = made | {block_with("dms dev"), block_with("dms plan examples"),
              block_with("dms init --data-dir /tmp/a"), block_with("ucan key new org"),
              block_with("dms node ping"), block_with("dms validate")}
    assert tested == set(range(len(BLOCKS))), [BLOCKS[i][0] for i in
                                                set(range(len(BLOCKS))) - tested]


def test_the_five_minute_tour(reader: Reader) -> None:
    for line in [*BLOCKS[block_with("dms dev")], *BLOCKS[block_with("dms plan examples")]]:
        reader.run(line)
    assert reader.deployment


def test_two_nodes_by_hand(reader: Reader) -> None:
    for line in BLOCKS[block_with("dms init --data-dir /tmp/a")]:
        reader.run(line)
    assert reader.deployment


def test_running_a_node_from_the_shell_and_pinging_it(reader: Reader) -> None:
    for line in BLOCKS[block_with("dms node ping")]:
        reader.run(line)


def test_capabilities_from_the_command_line(reader: Reader) -> None:
    for line in BLOCKS[block_with("ucan key new org")]:
        reader.run(line)


def test_validating_ensembles(reader: Reader) -> None:
    (reader.tmp / "broken.yaml").write_text("version: V1\nallocations: {}\n")
    for line in BLOCKS[block_with("dms validate")]:
        reader.run(line)
