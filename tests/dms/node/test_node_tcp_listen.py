"""A node listening on tcp:// is reached by a node that bootstraps to it."""

from __future__ import annotations

import trio

import dms


async def test_nodes_link_over_tcp_listen_addresses() -> None:
    async with dms.open_node(listen="tcp://127.0.0.1:0") as a:
        assert a.address is not None and a.address.startswith("tcp://")
        async with dms.open_node(listen="tcp://127.0.0.1:0", bootstrap=[a.address]) as b:
            with trio.fail_after(10):
                while a.mesh.peer_id not in b.mesh.connected_peers():
                    await trio.sleep(0.01)
