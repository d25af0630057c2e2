"""The behaviors every node offers, behind the same authorization as any other."""

from __future__ import annotations

import pytest
import trio

from dms.actor import RemoteError
from dms.node import PEERS, PING
from dms.testing import grant, open_testbed


async def test_ping_and_peers_answer_a_granted_caller(autojump_clock):
    async with open_testbed(3) as net:
        grant(net[0], net[1], "/dms/node")
        with trio.fail_after(10):
            pong = await net[1].root.invoke(net[0].root.handle, PING, {"echo": 7})
            table = await net[1].root.invoke(net[0].root.handle, PEERS)
        assert pong["did"] == net[0].did and pong["echo"] == 7
        peers = {row["peer"] for row in table["peers"]}
        assert {net[1].did, net[2].did} <= peers


async def test_node_behaviors_refuse_a_caller_without_a_grant(autojump_clock):
    async with open_testbed(2) as net:
        with trio.fail_after(10), pytest.raises(RemoteError) as refused:
            await net[1].root.invoke(net[0].root.handle, PEERS)
        assert refused.value.name == "InvalidClaim"
