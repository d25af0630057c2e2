"""An orchestrator node in a process of its own, for tests that kill it: key seed (hex),
state dir, org DID (anchor), grant file (the org's delegation, DAG-CBOR), listen and
bootstrap addresses; optionally the commit lease in seconds, and `hang-before-allocate`:
every deployment stops once its commits are in (its providers hold the reservations),
and `committed` is printed, so a test can kill it exactly there. Prints its listen
address on stdout, then serves until killed."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import attrs
import trio

from dms.deployment import DeploymentSettings
from dms.deployment._orchestrator import Orchestrator
from dms.node import open_node
from ucan import Delegation, SigningKey

SETTINGS = DeploymentSettings(deadline=30.0, bid_round=0.5, poll_interval=0.2,
                              request_timeout=5.0, start_timeout=20.0)
HANG_BEFORE_ALLOCATE = "hang-before-allocate"


async def _hang(self: Orchestrator, *args: Any) -> None:
    print("committed", flush=True)
    await trio.sleep_forever()


async def main(seed: str, state: str, org: str, grant: str, listen: str,
               bootstrap: str, lease: str = "", fault: str = "") -> None:
    key = SigningKey.from_seed(bytes.fromhex(seed))
    settings = attrs.evolve(SETTINGS, lease=float(lease)) if lease else SETTINGS
    if fault == HANG_BEFORE_ALLOCATE:
        Orchestrator._allocate = _hang  # type: ignore[method-assign]
    async with open_node(key, state_dir=state, anchors=[org], listen=listen,
                         bootstrap=[bootstrap], deployments=settings) as node:
        node.add_proofs(Delegation.decode(Path(grant).read_bytes()))
        print(node.address, flush=True)
        await trio.sleep_forever()


if __name__ == "__main__":
    trio.run(main, *sys.argv[1:9])
