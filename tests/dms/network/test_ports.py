"""A port on the host that reaches an allocation's port inside its namespace."""

from __future__ import annotations

import functools
import sys

import trio

from dms.network import ensemble_network, plan_addresses, publish_port, records_for

PLAN = plan_addresses("ports-test", ["web"], {})
WEB = PLAN.address_of("web")

ECHO = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 8080)); s.listen(4); print("ready", flush=True)
for _ in range(2):
    c, _ = s.accept()
    while (chunk := c.recv(65536)):
        c.sendall(chunk.upper())
    c.close()
"""


async def exchange(port: int, payload: bytes) -> bytes:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream, trio.open_nursery() as nursery:
        async def send() -> None:
            try:
                await stream.send_all(payload)
                await stream.send_eof()
            except trio.BrokenResourceError:
                pass  # closed from the other end: what it sent back is what counts
        nursery.start_soon(send)
        received = b""
        while chunk := await stream.receive_some(65536):
            received += chunk
    return received


async def test_a_published_port_reaches_the_allocation_inside_its_namespace(
        namespace_prefix: str) -> None:
    namespace = namespace_prefix + "web"
    async with ensemble_network(PLAN, records_for(PLAN)) as net:
        await net.add("web", namespace)
        server = await trio.lowlevel.open_process(
            ["ip", "netns", "exec", namespace, sys.executable, "-u", "-c", ECHO, str(WEB)],
            stdout=-1)
        try:
            assert server.stdout is not None
            with trio.fail_after(10):
                await server.stdout.receive_some(16)
                async with trio.open_nursery() as nursery:
                    port = await nursery.start(publish_port, namespace, WEB, 8080, 0, "127.0.0.1")
                    assert await exchange(port, b"hello " * 50_000) == b"HELLO " * 50_000
                    assert await exchange(port, b"again") == b"AGAIN"
                    nursery.cancel_scope.cancel()
        finally:
            server.kill()
            await server.wait()


async def test_a_connection_to_a_port_nothing_listens_on_is_closed(namespace_prefix: str) -> None:
    namespace = namespace_prefix + "web"
    async with ensemble_network(PLAN, records_for(PLAN)) as net:
        await net.add("web", namespace)
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                port = await nursery.start(publish_port, namespace, WEB, 9999, 0, "127.0.0.1")
                assert await exchange(port, b"anyone?") == b""
                nursery.cancel_scope.cancel()


async def test_connections_beyond_the_limit_are_closed_at_once_and_admitted_after(
        namespace_prefix: str) -> None:
    namespace = namespace_prefix + "web"
    async with ensemble_network(PLAN, records_for(PLAN)) as net:
        await net.add("web", namespace)
        server = await trio.lowlevel.open_process(
            ["ip", "netns", "exec", namespace, sys.executable, "-u", "-c", ECHO, str(WEB)],
            stdout=-1)
        try:
            assert server.stdout is not None
            with trio.fail_after(10):
                await server.stdout.receive_some(16)
                async with trio.open_nursery() as nursery:
                    port = await nursery.start(functools.partial(
                        publish_port, namespace, WEB, 8080, 0, "127.0.0.1", max_connections=1))
                    held = await trio.open_tcp_stream("127.0.0.1", port)
                    await held.send_all(b"first")
                    assert await held.receive_some(100) == b"FIRST"  # it holds the one slot
                    assert await exchange(port, b"second") == b""  # refused at once
                    await held.aclose()
                    with trio.fail_after(5):
                        while (answer := await exchange(port, b"third")) == b"":
                            await trio.sleep(0.01)  # until the slot is released
                    assert answer == b"THIRD"
                    nursery.cancel_scope.cancel()
        finally:
            server.kill()
            await server.wait()


async def test_a_published_port_follows_its_allocation_to_a_renumbered_address(
        namespace_prefix: str) -> None:
    namespace = namespace_prefix + "web"
    moved = plan_addresses(PLAN.ensemble, ["web"], {"p": [PLAN.subnet]}, previous=PLAN)
    async with ensemble_network(PLAN, records_for(PLAN)) as net:
        await net.add("web", namespace)
        server = await trio.lowlevel.open_process(  # on every address of its namespace
            ["ip", "netns", "exec", namespace, sys.executable, "-u", "-c", ECHO, "0.0.0.0"],
            stdout=-1)
        try:
            assert server.stdout is not None
            with trio.fail_after(10):
                await server.stdout.receive_some(16)
                async with trio.open_nursery() as nursery:
                    port = await nursery.start(publish_port, namespace,
                                               lambda: net.plan.address_of("web"), 8080, 0,
                                               "127.0.0.1")
                    assert await exchange(port, b"before") == b"BEFORE"
                    await net.renumber(moved)  # the old address is gone from the TUN
                    assert await exchange(port, b"after") == b"AFTER"
                    nursery.cancel_scope.cancel()
        finally:
            server.kill()
            await server.wait()
