"""The overlay's degree caps: link roles, connection floods, and a 50-node start-up."""

from __future__ import annotations

import nacl.signing
import pytest
import trio

from dms.net import Delivery, MemoryNetwork, Mesh
from dms.net._degree import DegreeLimits, LinkRole
from dms.net._link import Link

from .test_net_mesh_memory import start_mesh


def test_roles_follow_the_caps():
    limits = DegreeLimits(target=2, maximum=3, leaves=1)
    assert limits.inbound_role(True, 2, 0) is LinkRole.OVERLAY
    assert limits.inbound_role(True, 3, 0) is LinkRole.DIRECT
    assert limits.inbound_role(False, 3, 0) is LinkRole.LEAF
    assert limits.inbound_role(False, 0, 1) is None
    assert limits.outbound_role(True, 1) is LinkRole.OVERLAY
    assert limits.outbound_role(True, 2) is None  # at target: our own dial is not kept
    assert limits.outbound_role(False, 0) is LinkRole.DIRECT


def test_a_maximum_below_the_target_is_refused_naming_both():
    with pytest.raises(ValueError, match=r"maximum \(2\) must be at least target \(3\)"):
        DegreeLimits(target=3, maximum=2)
    with pytest.raises(ValueError, match="leaves must be at least 1"):
        DegreeLimits(leaves=0)


async def test_degree_caps_hold_under_a_thousand_connection_attempts(autojump_clock):
    """1,000 connection attempts from 250 identities (each dials 4 times: a redial
    replaces its link), half announcing a listen address (overlay candidates), half not
    (leaves); every link is held open. Whatever arrives, the victim's overlay, leaves
    and direct links stay within their caps, and it still answers an honest peer.
    (250 identities, not 1,000: a did:key costs ~2 ms to name, see ucan.did.)"""
    limits = DegreeLimits(target=4, maximum=8, leaves=16, direct=16)
    network = MemoryNetwork()
    held: list[Link] = []
    async with trio.open_nursery() as nursery:
        victim = await start_mesh(nursery, network, degree=limits, exchange_interval=1000.0)

        async def ignore(link: Link) -> None:
            await link.wait_closed()

        transports = []
        for identity in range(250):
            transport = network.transport(nacl.signing.SigningKey.generate())
            await nursery.start(_hold_open, transport)
            if identity % 2 == 0:
                await nursery.start(transport.listen, "memory://", ignore)
            transports.append(transport)
        for attempt in range(1000):
            held.append(await transports[attempt % 250].connect(victim.listen_address))
            if attempt % 50 == 0:
                await trio.testing.wait_all_tasks_blocked()
            assert len(victim.overlay_peers()) <= limits.maximum
            assert len(victim._leaves) <= limits.leaves
            assert len(victim._direct) <= limits.direct
        await trio.testing.wait_all_tasks_blocked()
        assert victim.metrics["link.handshakes_ok"] == 1000
        assert len(victim.connected_peers()) <= limits.maximum + limits.leaves + limits.direct
        assert len(victim.overlay_peers()) == limits.maximum  # full, not refusing all
        assert victim.metrics["mesh.refused_leaf"] > 0
        assert victim.metrics["mesh.direct_evicted"] > 0
        honest = await start_mesh(nursery, network, [victim.listen_address])
        await trio.sleep(1)
        await honest.send(victim.peer_id, b"still here?")
        assert await victim.incoming.receive() == Delivery(honest.peer_id, None, b"still here?")
        nursery.cancel_scope.cancel()


async def _hold_open(transport, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    async with transport:
        task_status.started()
        await trio.sleep_forever()


async def test_fifty_nodes_joining_through_one_end_connected_with_bounded_degree(
        autojump_clock):
    """Every node bootstraps to the first (the worst case: it used to end with a link
    to every other node). Full nodes pass newcomers on, so the overlay ends connected
    and no node has more than `maximum` neighbours."""
    limits = DegreeLimits()
    network = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        first = await start_mesh(nursery, network)
        meshes = [first] + [await start_mesh(nursery, network, [first.listen_address])
                            for _ in range(49)]
        await trio.sleep(30)
        degrees = [len(mesh.overlay_peers()) for mesh in meshes]
        assert max(degrees) <= limits.maximum
        assert min(degrees) >= 1
        assert _components(meshes) == 1
        assert sum(degrees) / len(degrees) <= 2 * limits.target + 1
        nursery.cancel_scope.cancel()


def _components(meshes: list[Mesh]) -> int:
    neighbours = {mesh.peer_id: set(mesh.overlay_peers()) for mesh in meshes}
    for peer, others in neighbours.items():
        for other in others:  # a link is a link whichever side counts it
            neighbours[other].add(peer)
    unseen, components = set(neighbours), 0
    while unseen:
        components += 1
        stack = [unseen.pop()]
        while stack:
            for other in neighbours[stack.pop()]:
                if other in unseen:
                    unseen.remove(other)
                    stack.append(other)
    return components


async def test_a_unicast_to_a_peer_without_a_link_goes_over_a_direct_link_that_idles_out(
        autojump_clock):
    network = MemoryNetwork()
    limits = DegreeLimits(direct_idle=30.0)
    async with trio.open_nursery() as nursery:
        hub = await start_mesh(nursery, network, degree=limits)
        a = await start_mesh(nursery, network, [hub.listen_address], max_peers=1, degree=limits)
        b = await start_mesh(nursery, network, [hub.listen_address], max_peers=1, degree=limits)
        await trio.sleep(6)
        await a.send(b.peer_id, b"direct")
        assert await b.incoming.receive() == Delivery(a.peer_id, None, b"direct")
        await trio.testing.wait_all_tasks_blocked()
        assert a.link_role(b.peer_id) is b.link_role(a.peer_id) is LinkRole.DIRECT
        assert b.peer_id not in a.overlay_peers()
        hub.subscribe("t")
        a.subscribe("t")
        await b.publish("t", b"not over the direct link")
        assert (await hub.incoming.receive()).payload == b"not over the direct link"
        await trio.sleep(1)
        assert a.incoming.receive_nowait().payload == b"not over the direct link"
        assert a.incoming.held_by(b.peer_id)[0] == 0  # it came through the hub
        await trio.sleep(40)
        assert a.link_role(b.peer_id) is None and b.link_role(a.peer_id) is None
        assert a.metrics["mesh.direct_idle_closed"] + b.metrics["mesh.direct_idle_closed"] >= 1
        nursery.cancel_scope.cancel()


async def test_a_full_node_passes_a_newcomer_on_and_its_bootstrap_link_does_not_churn(
        autojump_clock):
    limits = DegreeLimits(target=1, maximum=2)
    network = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        hub = await start_mesh(nursery, network, degree=limits)
        first = [await start_mesh(nursery, network, [hub.listen_address], degree=limits)
                 for _ in range(2)]
        for mesh in first:
            await mesh.wait_connected()
        late = await start_mesh(nursery, network, [hub.listen_address], degree=limits)
        await trio.sleep(30)
        assert len(hub.overlay_peers()) <= 2
        assert late.overlay_peers() and hub.peer_id not in late.overlay_peers()
        assert late.metrics["mesh.declined"] == 1  # the hub said so once, not every backoff
        nursery.cancel_scope.cancel()

