"""The websocket transport on 127.0.0.1: addresses, failures, large frames."""

from __future__ import annotations

import nacl.signing
import pytest
import trio

from dms.net import MAX_FRAME, BadAddress, ConnectFailed, Link, WebsocketTransport
from dms.net.websocket import parse_ws_address


async def echo(link: Link) -> None:
    while True:
        await link.send(await link.receive())


@pytest.mark.parametrize(
    ("address", "problem"),
    [("http://127.0.0.1:1", "starts with 'ws://'"), ("ws://127.0.0.1", "needs a host and a port")],
)
def test_bad_addresses_name_the_problem(address, problem):
    with pytest.raises(BadAddress, match=problem):
        parse_ws_address(address)


async def test_connect_to_a_closed_port_fails_naming_the_address():
    with trio.fail_after(10):
        async with WebsocketTransport(nacl.signing.SigningKey.generate()) as transport:
            with pytest.raises(ConnectFailed, match="ws://127.0.0.1:1"):
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
