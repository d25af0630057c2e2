"""A testbed larger than the overlay's degree cap opens (it used to wait for every node
to link to every other, which a capped overlay never does)."""

from __future__ import annotations

import trio

from dms.net import DegreeLimits
from dms.testing import open_testbed


async def test_a_testbed_past_the_degree_cap_opens_with_every_node_linked(autojump_clock):
    limits = DegreeLimits()
    with trio.fail_after(120):
        async with open_testbed(limits.maximum + 3) as net:
            for node in net.nodes:
                assert node.mesh is not None
                assert limits.target <= len(node.mesh.overlay_peers()) <= limits.maximum
