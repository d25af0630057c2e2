"""Ctrl-C while a `dms` command is still importing the node ends it as any Ctrl-C does."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from .conftest import DMS, environment


def test_ctrl_c_while_the_command_starts_is_interrupted_not_a_traceback(
        tmp_path: Path) -> None:
    env = environment(tmp_path)
    interrupted = 0
    # A signal during Python's own start-up (before the console script runs) is
    # Python's to report; aim after it, as long as it takes on this machine right now.
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", "import dms_console"], check=True)
    startup = time.monotonic() - started
    for delay in (startup + 0.05, startup + 0.2):  # within the node's import
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
