"""Meshes of real nodes on 127.0.0.1, over tcp:// and over ws:// (each test runs on
both): pubsub, peer exchange, reconnect, slow peers and clean cancellation.

Real sockets need the real clock. So that a loaded machine cannot fail them, these tests
wait for what they expect to happen (bounded by one generous deadline per test), never
for a guessed number of seconds; a quiet period only ever looks for something extra.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import nacl.signing
import pytest
import trio

from dms.net import Backoff, Delivery, Mesh, NodeTransport

FAST_BACKOFF = Backoff(initial=0.05, maximum=0.4)


@pytest.fixture(params=["tcp", "ws"])
def start_mesh(request: pytest.FixtureRequest) -> Callable[..., object]:
    """`_start_mesh` listening on the scheme under test."""
    return functools.partial(_start_mesh, request.param)


async def _start_mesh(
    scheme: str,
    nursery: trio.Nursery,
    key: nacl.signing.SigningKey | None = None,
    bootstrap: Sequence[str] = (),
    listen: str | None = None,
    **options,
) -> Mesh:
    key = key or nacl.signing.SigningKey.generate()
    mesh = Mesh(
        key,
        NodeTransport(key),
        listen=listen or f"{scheme}://127.0.0.1:0",
        bootstrap=bootstrap,
        exchange_interval=0.3,
        backoff=FAST_BACKOFF,
        **options,
    )
    await nursery.start(mesh.run)
    return mesh


async def drain(mesh: Mesh, quiet: float = 0.3) -> list[Delivery]:
    """Everything that arrives until nothing has for `quiet` seconds."""
    got = []
    while True:
        with trio.move_on_after(quiet):
            got.append(await mesh.incoming.receive())
            continue
        return got


async def receive_exactly(mesh: Mesh, count: int) -> list[Delivery]:
    """The next `count` deliveries however long they take, then any extra (a duplicate)
    that shows up while the mesh stays quiet."""
    got = [await mesh.incoming.receive() for _ in range(count)]
    return got + await drain(mesh)


async def wait_until(condition: Callable[[], bool]) -> None:
    while not condition():
        await trio.sleep(0.01)


async def full_mesh(meshes: list[Mesh]) -> None:
    for mesh in meshes:
        await mesh.wait_connected(len(meshes) - 1)


async def test_publish_reaches_every_subscriber_exactly_once(start_mesh):
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            hub = await start_mesh(nursery)
            others = [await start_mesh(nursery, bootstrap=[hub.listen_address]) for _ in range(3)]
            meshes = [hub, *others]
            await full_mesh(meshes)
            for mesh in meshes[:-1]:
                mesh.subscribe("/nunet/deployment")
            bystander = meshes[-1]  # not subscribed: forwards, never delivers
            publisher = others[0]
            for n in range(5):
                sent = await publisher.publish("/nunet/deployment", b"bid %d" % n)
                # whole to its eager neighbours, announced to the rest (a link that is
                # settling which of two dials to keep may be neither for a moment)
                assert 1 <= sent <= 3
            for mesh in meshes:
                if mesh is publisher or mesh is bystander:
                    assert await receive_exactly(mesh, 0) == []
                else:
                    got = await receive_exactly(mesh, 5)
                    assert sorted(d.payload for d in got) == [b"bid %d" % n for n in range(5)]
                    assert {d.topic for d in got} == {"/nunet/deployment"}
            await wait_until(lambda: bystander.metrics["mesh.duplicates"] > 0)  # flooded twice
            assert bystander.metrics["mesh.delivered"] == 0
            nursery.cancel_scope.cancel()


async def test_late_joiner_learns_peers_by_exchange_and_receives_later_publications(start_mesh):
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            hub = await start_mesh(nursery)
            first = [await start_mesh(nursery, bootstrap=[hub.listen_address]) for _ in range(2)]
            await full_mesh([hub, *first])
            late = await start_mesh(nursery, bootstrap=[hub.listen_address])
            await full_mesh([hub, *first, late])
            for mesh in first:
                info = late.peers[mesh.peer_id]
                assert info.connected and info.address == mesh.listen_address
            late.subscribe("/nunet/revocation")
            await first[1].publish("/nunet/revocation", b"revoke")
            got = await receive_exactly(late, 1)
            assert [d.payload for d in got] == [b"revoke"]
            assert got[0].peer in {m.peer_id for m in [hub, *first]}
            nursery.cancel_scope.cancel()


async def test_reconnects_after_a_peer_restarts(start_mesh):
    server_key = nacl.signing.SigningKey.generate()
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            server = await start_mesh(nursery, server_key)
            address = server.listen_address
            assert address is not None
            client = await start_mesh(nursery, bootstrap=[address])
            await client.wait_connected()
            await server.aclose()
            await wait_until(lambda: server.peer_id not in client.connected_peers())
            assert not client.peers[server.peer_id].connected
            restarted = await start_mesh(nursery, server_key, listen=address)
            await client.wait_connected()
            assert client.connected_peers() == [restarted.peer_id]
            await client.send(restarted.peer_id, b"hello again")
            delivery = await restarted.incoming.receive()
            assert delivery == Delivery(client.peer_id, None, b"hello again")
            nursery.cancel_scope.cancel()


async def test_a_peer_that_stops_reading_does_not_stall_the_others(start_mesh):
    frame = bytes(64 * 1024)
    count = 400  # 26 MB: more than loopback socket buffers hold
    in_flight = 32  # to the reader: far below its send buffer, so only the stalled peer drops
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            publisher = await start_mesh(nursery)
            reader = await start_mesh(nursery, bootstrap=[publisher.listen_address])
            reader.subscribe("bulk")
            stalled_key = nacl.signing.SigningKey.generate()
            async with NodeTransport(stalled_key) as stalled:
                # Connects, then never reads a frame.
                await stalled.connect(publisher.listen_address)
                await publisher.wait_connected(2)
                received = 0

                async def consume():
                    nonlocal received
                    async for _ in reader.incoming:
                        received += 1

                nursery.start_soon(consume)
                for n in range(count):  # distinct content: ids are content hashes
                    # Paced by the reader's progress, not the clock: a starved reader is slow,
                    # not a peer that stopped reading.
                    await wait_until(lambda n=n: received >= n - in_flight)
                    await publisher.publish("bulk", frame[:-4] + n.to_bytes(4, "big"))
                await wait_until(lambda: received == count)
                assert publisher.metrics["link.dropped_busy"] > 0
            nursery.cancel_scope.cancel()


def _all_tasks() -> set[trio.lowlevel.Task]:
    root = trio.lowlevel.current_root_task()
    assert root is not None
    found, stack = set(), [root]
    while stack:
        task = stack.pop()
        found.add(task)
        for nursery in task.child_nurseries:
            stack.extend(nursery.child_tasks)
    return found


async def test_cancelling_meshes_leaves_no_tasks_and_ends_incoming(start_mesh):
    before = _all_tasks()
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            hub = await start_mesh(nursery)
            meshes = [hub] + [
                await start_mesh(nursery, bootstrap=[hub.listen_address]) for _ in range(2)
            ]
            await full_mesh(meshes)
            assert len(_all_tasks()) > len(before)
            nursery.cancel_scope.cancel()
    assert _all_tasks() == before
    for mesh in meshes:
        assert mesh.connected_peers() == []
        async for _ in mesh.incoming:
            raise AssertionError("incoming should be empty and closed")
