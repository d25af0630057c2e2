"""`NodeTransport`: one transport that dials each address over the carrier its scheme names."""

from __future__ import annotations

import nacl.signing
import pytest
import trio

from dms.net import BadAddress, Link, NodeTransport, TcpTransport, WebsocketTransport


async def echo(link: Link) -> None:
    while True:
        await link.send(await link.receive())


async def test_one_transport_dials_tcp_and_ws_listeners_as_one_peer() -> None:
    key = nacl.signing.SigningKey.generate()
    tcp_server = TcpTransport(nacl.signing.SigningKey.generate())
    ws_server = WebsocketTransport(nacl.signing.SigningKey.generate())
    with trio.fail_after(10):
        async with NodeTransport(key) as client, trio.open_nursery() as nursery:
            listening = await nursery.start(client.listen, "tcp://127.0.0.1:0", echo)
            for server in (tcp_server, ws_server):
                scheme = "tcp" if server is tcp_server else "ws"
                address = await nursery.start(server.listen, f"{scheme}://127.0.0.1:0", echo)
                link = await client.connect(address, expect_peer=server.peer_id)
                await link.send(b"over " + scheme.encode())
                assert await link.receive() == b"over " + scheme.encode()
                await link.aclose()
            assert client.listen_address == listening  # what both handshakes announced
            nursery.cancel_scope.cancel()
    assert client.metrics["link.handshakes_ok"] == 2  # one set of counters for both carriers


async def test_it_refuses_a_scheme_no_carrier_speaks_before_dialing() -> None:
    transport = NodeTransport(nacl.signing.SigningKey.generate())
    with pytest.raises(BadAddress, match="'udp' is not a scheme"):
        transport.check_address("udp://127.0.0.1:1")
    async with transport:
        with pytest.raises(BadAddress, match="'udp' is not a scheme"):
            await transport.connect("udp://127.0.0.1:1")


async def test_a_carrier_sharing_an_endpoint_is_not_opened_on_its_own() -> None:
    key = nacl.signing.SigningKey.generate()
    owner = NodeTransport(key)
    with pytest.raises(RuntimeError, match="open the NodeTransport"):
        async with TcpTransport(key, sharing=owner):
            pass
    with pytest.raises(ValueError, match="cannot share the endpoint"):
        TcpTransport(nacl.signing.SigningKey.generate(), sharing=owner)
