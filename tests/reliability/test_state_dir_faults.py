"""A provider's state directory gone bad: a file that is not a database, a database
with a damaged page, a directory on a full disk (a 512 KiB tmpfs, filled, in a mount
namespace of its own). `dms node run` must end at once (no retrying in a loop) with an
error naming the file or the cause, in one line without a traceback (spec/security.md,
"Fault model", "State directory")."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from dms.store._database import DATABASE_FILE, NodeDatabase

DMS = Path(sys.executable).with_name("dms")
RUN = [str(DMS), "node", "run", "--ephemeral", "--listen", "ws://127.0.0.1:0",
       "--provide", "cpu=1,ram=1Gi,disk=1Gi"]
CASES = {"garbage": "file is not a database", "damaged_page": "malformed",
         "disk_full": "No space left on device"}


def _garbage(state: Path) -> None:
    state.mkdir(parents=True)
    (state / DATABASE_FILE).write_bytes(os.urandom(8192))


def _damaged_page(state: Path) -> None:
    NodeDatabase.open(state / DATABASE_FILE).close()  # a real one, schema and all
    with open(state / DATABASE_FILE, "r+b") as file:
        file.seek(4096)  # past the header page: sqlite opens it, then finds the damage
        file.write(os.urandom(4096))


def start_on(case: str, root: Path) -> subprocess.Popen[str]:
    """`dms node run` on a state directory under `root` broken as `case` says."""
    state = root / "state"
    command = [*RUN, "--state-dir", str(state)]
    if case == "disk_full":
        mount = root / "full"
        mount.mkdir()
        script = (f"mount -t tmpfs -o size=512k tmpfs {mount} && mkdir {mount}/state && "
                  f"{{ dd if=/dev/zero of={mount}/fill bs=4k 2>/dev/null; true; }} && "
                  f"exec {shlex.join([*RUN, '--state-dir', f'{mount}/state'])}")
        command = ["unshare", "--mount", "sh", "-c", script]
    else:
        (_garbage if case == "garbage" else _damaged_page)(state)
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, subprocess.CompletedProcess[str]]:
    """Each case run once, all at the same time (each in a directory of its own: a node
    starting is mostly waiting on imports); both tests read the same run."""
    started = {case: start_on(case, tmp_path_factory.mktemp(case)) for case in CASES}
    try:
        done = {}
        for case, process in started.items():
            out, err = process.communicate(timeout=30)
            done[case] = subprocess.CompletedProcess(process.args, process.returncode, out, err)
        return done
    finally:
        for process in started.values():
            if process.poll() is None:
                process.kill()
                process.wait()


@pytest.mark.parametrize("case", list(CASES))
def test_a_broken_state_directory_ends_the_node_at_once_naming_the_cause(
        runs: dict[str, subprocess.CompletedProcess[str]], case: str) -> None:
    done = runs[case]  # returns at all: the node did not keep retrying
    assert done.returncode not in (0, None), done
    assert CASES[case] in done.stderr, done.stderr[-2000:]
    if case != "disk_full":
        assert DATABASE_FILE in done.stderr


@pytest.mark.parametrize("case", list(CASES))
def test_a_broken_state_directory_is_reported_in_one_line_without_a_traceback(
        runs: dict[str, subprocess.CompletedProcess[str]], case: str) -> None:
    done = runs[case]
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
