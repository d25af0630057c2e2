"""Ctrl-C while a `dms` command is still importing the node ends it as any Ctrl-C does."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from .conftest import DMS, environment


def test_ctrl_c_while_the_command_starts_is_interrupted_not_a_traceback(
        tmp_path: Path) -> None:
    env = environment(tmp_path)
    interrupted = 0
    for delay in (0.15, 0.3):  # after Python's own start-up, within the node's import
        process = subprocess.Popen([str(DMS), "status"], env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
        assert "Traceback" not in err, err
        if process.returncode == 130:
            assert err.strip().splitlines()[-1] == "interrupted"
            interrupted += 1
        else:  # done before the signal came: there is no client config here
            assert process.returncode == 2, (process.returncode, err)
    assert interrupted
