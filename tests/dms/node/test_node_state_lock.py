"""One node per state directory: the second is refused, naming the directory."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from dms.net import ListenFailed
from dms.node import open_node
from dms.node._state_lock import StateDirInUse

DMS = Path(sys.executable).with_name("dms")


async def test_a_second_node_on_the_same_state_directory_is_refused(tmp_path: Path):
    state = tmp_path / "state"
    async with open_node(state_dir=state) as first:
        with pytest.raises(StateDirInUse, match=f"state directory {state} is in use") as refused:
            async with open_node(state_dir=state):
                pytest.fail("the second node started")
        assert f"(pid {os.getpid()})" in str(refused.value)
        assert first.store is not None  # the first one runs on
        async with open_node(state_dir=tmp_path / "other"):
            pass  # another directory is another node's
    async with open_node(state_dir=state):
        pass  # released when the first node stopped


async def test_the_lock_is_released_when_the_node_fails_to_start(tmp_path: Path):
    state = tmp_path / "state"
    with pytest.raises(ListenFailed):  # 192.0.2.1 (TEST-NET-1): not ours, bind fails
        async with open_node(state_dir=state, listen="ws://192.0.2.1:0"):
            pass
    async with open_node(state_dir=state):
        pass


def test_a_second_process_on_the_same_state_directory_exits_2_naming_it(tmp_path: Path):
    if not DMS.exists():
        pytest.skip(f"console scripts not installed next to {sys.executable}")
    env = {**os.environ, "UCAN_PASSPHRASE": "correct horse",
           "UCAN_KEYSTORE": str(tmp_path / "keys")}
    state = tmp_path / "state"
    first = subprocess.Popen([str(DMS), "node", "run", "--json", "--state-dir", str(state)],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert first.stdout is not None
        assert json.loads(first.stdout.readline())["event"] == "listening"
        second = subprocess.run([str(DMS), "node", "run", "--state-dir", str(state)], env=env,
                                capture_output=True, text=True, timeout=60)
        assert second.returncode == 2
        assert second.stderr.strip().splitlines() == [
            f"Error: state directory {state} is in use by another node (pid {first.pid}): "
            "stop that node, or give this one another --state-dir"]
        assert first.poll() is None  # the first one runs on
    finally:
        first.send_signal(signal.SIGINT)
        out, err = first.communicate(timeout=20)
    assert first.returncode == 0, err
    assert "Traceback" not in err
    assert json.loads(out.strip().splitlines()[-1])["event"] == "stopped"


async def test_a_lock_left_by_a_killed_node_does_not_block_the_next(tmp_path: Path):
    if not DMS.exists():
        pytest.skip(f"console scripts not installed next to {sys.executable}")
    state = tmp_path / "state"
    env = {**os.environ, "UCAN_KEYSTORE": str(tmp_path / "keys")}
    killed = await trio.lowlevel.open_process(
        [str(DMS), "node", "run", "--ephemeral", "--json", "--state-dir", str(state)],
        env=env, stdout=subprocess.PIPE)
    assert killed.stdout is not None
    await killed.stdout.receive_some(4096)  # listening
    killed.kill()
    await killed.wait()
    async with open_node(state_dir=state):
        pass


@pytest.mark.parametrize("under", ["a-file", "no-such-dir-in-proc"])
def test_a_state_directory_that_cannot_be_made_is_one_line_and_exit_2(tmp_path: Path, under):
    from click.testing import CliRunner

    from dms.cli import main

    if under == "a-file":
        (tmp_path / "a-file").write_text("")
        state = tmp_path / "a-file" / "state"
    else:
        state = Path("/proc/no-such-dir/state")
    result = CliRunner().invoke(main, ["node", "run", "--ephemeral", "--state-dir", str(state)])
    assert result.exit_code == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"Error: state directory {state} cannot be used: "
        + ("Not a directory" if under == "a-file" else "No such file or directory")]
