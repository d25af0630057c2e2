"""A provider node in a process of its own, for tests that SIGKILL it: key seed (hex),
state dir, work dir, org DID (anchor), grant file (the org's delegation, DAG-CBOR),
bootstrap address, price, then flags (`network`: host the ensemble network). Prints
its listen address on stdout, then serves until killed."""

from __future__ import annotations

import sys
from pathlib import Path

import trio

from dms.node import open_node
from dms.provider import Capacity, ProviderConfig, millicores
from dms.workload import ExecutorKind
from ucan import Delegation, SigningKey

CAPACITY = Capacity(millicores=millicores(4, round_up=False), ram=8 * 2**30, disk=100 * 2**30)


async def main(seed: str, state: str, work: str, org: str, grant: str, bootstrap: str,
               price: str, *flags: str) -> None:
    key = SigningKey.from_seed(bytes.fromhex(seed))
    config = ProviderConfig(Path(work), (ExecutorKind.PROCESS,), capacity=CAPACITY,
                            price=float(price), network="network" in flags)
    async with open_node(key, state_dir=state, anchors=[org], listen="ws://127.0.0.1:0",
                         bootstrap=[bootstrap], provider=config) as node:
        node.add_proofs(Delegation.decode(Path(grant).read_bytes()))
        print(node.address, flush=True)
        await trio.sleep_forever()


if __name__ == "__main__":
    trio.run(main, *sys.argv[1:])
