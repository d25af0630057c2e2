"""examples/deploy.py does what its docstring says, run as a user runs it."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import trio

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "deploy.py"


async def test_the_deploy_example_runs_both_allocations_in_order_and_leaves_nothing() -> None:
    with trio.fail_after(90):
        done = await trio.run_process([sys.executable, str(EXAMPLE)], capture_stdout=True,
                                      capture_stderr=True, check=False)
    out = done.stdout.decode()
    assert done.returncode == 0, out + done.stderr.decode()
    started = [m.group(1) for m in re.finditer(r"allocation  (\w+) on provider [AB]: running",
                                               out)]
    assert started == ["db", "report"]
    assert re.search(r"report on provider [AB]: completed \(exit code 0\)", out)
    assert "| report done" in out  # the task's log tail came through the events
    assert "final: completed" in out
    assert len(set(re.findall(r"ran on (provider [AB])", out))) == 2
    assert out.count("0 reservations held, free == offered") == 2
