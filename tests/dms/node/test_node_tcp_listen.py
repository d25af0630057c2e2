"""A node listening on tcp:// is reached by a node that bootstraps to it, whichever
scheme that node listens on itself."""

from __future__ import annotations

import pytest
import trio

import dms
from dms.node._behaviors import PING


async def test_nodes_link_over_tcp_listen_addresses() -> None:
    async with dms.open_node(listen="tcp://127.0.0.1:0") as a:
        assert a.address is not None and a.address.startswith("tcp://")
        async with dms.open_node(listen="tcp://127.0.0.1:0", bootstrap=[a.address]) as b:
            with trio.fail_after(10):
                while a.mesh.peer_id not in b.mesh.connected_peers():
                    await trio.sleep(0.01)


@pytest.mark.parametrize(("first", "second"), [("tcp", "ws"), ("ws", "tcp")])
async def test_a_tcp_node_and_a_ws_node_reach_each_other_and_answer_requests(
        first: str, second: str) -> None:
    async with dms.open_node(listen=f"{first}://127.0.0.1:0") as a:
        assert a.address is not None and a.address.startswith(f"{first}://")
        async with dms.open_node(listen=f"{second}://127.0.0.1:0", bootstrap=[a.address]) as b:
            assert b.address is not None and b.address.startswith(f"{second}://")
            a.add_proofs(b.grant(a.did, PING))
            b.add_proofs(a.grant(b.did, PING))
            with trio.fail_after(10):
                await b.mesh.wait_connected()
                there = await b.root.invoke(a.root.handle, PING, {"echo": "from b"})
                back = await a.root.invoke(b.root.handle, PING, {"echo": "from a"})
                # a learnt the address b announced in the handshake: the one to dial back on
                while a.mesh.peers.get(b.did) is None or a.mesh.peers[b.did].address is None:
                    await trio.sleep(0.01)
            assert (there["did"], there["echo"]) == (a.did, "from b")
            assert (back["did"], back["echo"]) == (b.did, "from a")
            assert a.mesh.peers[b.did].address == b.address
