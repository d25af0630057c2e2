"""`make run`'s script: a dev network, hello-web deployed and healthy across two
providers, its status, its shutdown, and nothing left running."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .conftest import ROOT, environment, gone_within


def test_make_runs_script_deploys_hello_web_and_leaves_nothing_running(tmp_path: Path) -> None:
    env = environment(tmp_path)
    del env["DMS_DATA_DIR"]  # the script picks its own
    result = subprocess.run([sys.executable, "examples/hello_web.py", "--data-dir",
                             str(tmp_path)], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "$ dms deploy " in out and "hello-web.yaml --wait" in out  # a copy if 8765 is taken
    assert "ready: 1 service up, 1 task completed" in out
    assert "| hello from web" in out
    placement = next(line for line in out.splitlines() if line.startswith("placement:"))
    assert "caller → provider" in placement and "server → provider" in placement
    assert len({part.rsplit("→", 1)[1].strip() for part in placement.split(",")}) == 2
    assert "completed: shutdown requested" in out
    assert "nothing is left running" in out
    assert gone_within(tmp_path, 10) == []
