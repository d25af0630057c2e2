"""An orchestrator node in a process of its own, for tests that kill it: key seed (hex),
state dir, org DID (anchor), grant file (the org's delegation, DAG-CBOR), listen and
bootstrap addresses. Prints its listen address on stdout, then serves until killed."""

from __future__ import annotations

import sys
from pathlib import Path

import trio

from dms.deployment import DeploymentSettings
from dms.node import open_node
from ucan import Delegation, SigningKey

SETTINGS = DeploymentSettings(deadline=30.0, bid_round=0.5, poll_interval=0.2,
                              request_timeout=5.0, start_timeout=20.0)


async def main(seed: str, state: str, org: str, grant: str, listen: str,
               bootstrap: str) -> None:
    key = SigningKey.from_seed(bytes.fromhex(seed))
    async with open_node(key, state_dir=state, anchors=[org], listen=listen,
                         bootstrap=[bootstrap], deployments=SETTINGS) as node:
        node.add_proofs(Delegation.decode(Path(grant).read_bytes()))
        print(node.address, flush=True)
        await trio.sleep_forever()


if __name__ == "__main__":
    trio.run(main, *sys.argv[1:7])
