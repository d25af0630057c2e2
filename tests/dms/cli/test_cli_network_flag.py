"""`--network` is a provider's: asked of a node that provides nothing it is a one-line
usage error, before any key or network is touched."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

DMS = str(Path(sys.executable).with_name("dms"))


def test_network_without_provide_is_one_line_and_exit_2() -> None:
    done = subprocess.run([DMS, "node", "run", "--ephemeral", "--network"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert "--network" in done.stderr and "--provide" in done.stderr
    assert "Traceback" not in done.stderr
