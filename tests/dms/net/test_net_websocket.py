"""The websocket transport on 127.0.0.1: addresses, failures, large frames."""

from __future__ import annotations

import socket

import nacl.signing
import pytest
import trio
import trio.testing

from dms.net import MAX_FRAME, ConnectFailed, Link, WebsocketTransport
from dms.net._address import parse_node_address

UNRESOLVABLE = "no-such-host.invalid"  # answered by the `unresolvable` fixture (conftest)


async def echo(link: Link) -> None:
    while True:
        await link.send(await link.receive())


async def test_connect_to_a_closed_port_fails_naming_the_address():
    with trio.fail_after(10):
        async with WebsocketTransport(nacl.signing.SigningKey.generate()) as transport:
            with pytest.raises(ConnectFailed, match="ws://127.0.0.1:1: .*Connection refused"):
                await transport.connect("ws://127.0.0.1:1")


async def test_listening_on_port_zero_reports_the_bound_address():
    transport = WebsocketTransport(nacl.signing.SigningKey.generate())
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            address = await nursery.start(transport.listen, "ws://127.0.0.1:0", echo)
            assert address.startswith("ws://127.0.0.1:") and not address.endswith(":0")
            assert transport.listen_address == address
            nursery.cancel_scope.cancel()
    assert transport.listen_address is None


async def test_a_maximal_frame_crosses_and_the_listener_outlives_closed_links():
    server = WebsocketTransport(nacl.signing.SigningKey.generate())
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            address = await nursery.start(server.listen, "ws://127.0.0.1:0", echo)
            async with WebsocketTransport(nacl.signing.SigningKey.generate()) as client:
                big = bytes(range(256)) * (MAX_FRAME // 256)
                first = await client.connect(address)
                await first.send(big)
                assert await first.receive() == big
                await first.aclose()  # the server's echo ends with LinkClosed
                second = await client.connect(address, expect_peer=server.peer_id)
                await second.send(b"still serving")
                assert await second.receive() == b"still serving"
            nursery.cancel_scope.cancel()
    assert server.metrics["link.handshakes_ok"] == 2


async def test_a_newcomer_evicts_the_oldest_half_open_handshake_and_big_messages_fail():
    import trio_websocket

    from dms.net import LinkSettings

    settings = LinkSettings(pending_handshakes=1, accept_timeout=5)
    server = WebsocketTransport(nacl.signing.SigningKey.generate(), settings)
    client = WebsocketTransport(nacl.signing.SigningKey.generate())

    async def echo(link: Link) -> None:
        await link.send(await link.receive())

    with trio.fail_after(10):
        async with server, client, trio.open_nursery() as nursery:
            address = await nursery.start(server.listen, "ws://127.0.0.1:0", echo)
            parsed = parse_node_address(address)
            host, port = parsed.host, parsed.port
            # one silent connection holds the only handshake slot...
            async with trio_websocket.open_websocket(host, port, "/", use_ssl=False) as silent:
                await trio.testing.wait_all_tasks_blocked()
                # ...and a real node that comes next takes it: the silent one is closed
                link = await client.connect(address, expect_peer=server.peer_id)
                await link.send(b"through")
                assert await link.receive() == b"through"
                with pytest.raises(trio_websocket.ConnectionClosed):
                    await silent.get_message()
            assert server.metrics["link.handshakes_evicted"] == 1
            # an oversized first message fails the handshake
            async with trio_websocket.open_websocket(host, port, "/", use_ssl=False) as ws:
                await ws.send_message(b"\x01" * 100_000)
                with pytest.raises(trio_websocket.ConnectionClosed):
                    await ws.get_message()
            nursery.cancel_scope.cancel()


async def test_a_half_open_socket_holds_a_slot_for_the_accept_timeout_only():
    import trio_websocket

    from dms.net import LinkSettings

    server = WebsocketTransport(nacl.signing.SigningKey.generate(),
                                LinkSettings(accept_timeout=0.5))

    async def ignore(link: Link) -> None:
        await trio.sleep_forever()

    with trio.fail_after(10):
        async with server, trio.open_nursery() as nursery:
            address = await nursery.start(server.listen, "ws://127.0.0.1:0", ignore)
            parsed = parse_node_address(address)
            host, port = parsed.host, parsed.port
            started = trio.current_time()
            async with trio_websocket.open_websocket(host, port, "/", use_ssl=False) as silent:
                with pytest.raises(trio_websocket.ConnectionClosed):
                    await silent.get_message()  # closed by the server at its deadline
            assert 0.4 < trio.current_time() - started < 5
            assert server.metrics["link.handshakes_failed"] == 1
            nursery.cancel_scope.cancel()


@pytest.mark.parametrize(("address", "reason"), [
    (None, "in use"),
    ("ws://192.0.2.1:0", "assign requested address"),  # TEST-NET-1: not this machine's
    (f"ws://{UNRESOLVABLE}:0", "not known"),
])
async def test_an_address_that_cannot_be_listened_on_is_one_plain_listen_failed(
        address, reason, unresolvable):
    from dms.net import ListenFailed

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = address or f"ws://127.0.0.1:{taken.getsockname()[1]}"
        transport = WebsocketTransport(nacl.signing.SigningKey.generate())
        with pytest.raises(ListenFailed, match=f"cannot listen on {address}: .*{reason}"):
            await transport.listen(address, echo)
