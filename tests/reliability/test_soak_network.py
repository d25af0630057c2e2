"""bench/soak_bench.py --network: the pair really runs on the ensemble network, and
after each shutdown nothing of it is left on the host (a 3-cycle soak, ~5 s)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.capabilities import needs_network

SOAK = Path(__file__).resolve().parents[2] / "bench" / "soak_bench.py"


@needs_network
def test_a_network_soak_holds_namespaces_while_running_and_none_after_shutdown():
    done = subprocess.run([sys.executable, str(SOAK), "--network", "--cycles", "3",
                           "--warmup", "1", "--sample", "1", "--json"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(done.stdout)
    running = figures["while_running"]
    # Two allocations, each in a namespace with a TUN link and resolver files of its own.
    assert running["namespaces"][0] >= 2 and running["tuns"][0] >= 2, running
    assert running["netns_etc"][0] >= 2 and running["hosted"][0] >= 1, running
    last = figures["last"]
    assert (last["namespaces"], last["tuns"], last["netns_etc"], last["hosted"]) == (0, 0, 0, 0)
