"""What a websocket listener reads before and after the handshake: a stranger's big
message is cut off at the handshake's bound without being buffered, and a link's big
frames still cross once the handshake is done."""

from __future__ import annotations

import struct
import tracemalloc

import nacl.signing
import pytest
import trio
import trio.testing
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, BytesMessage, CloseConnection, Request

from dms.net import Link, LinkSettings, WebsocketTransport
from dms.net._address import parse_node_address
from dms.net._handshake import InitiatorHandshake, ResponderHandshake
from dms.net._link import DEFAULT_LINK_SETTINGS, MAX_HANDSHAKE_MESSAGE, SecureEndpoint
from dms.net._memory import carrier_pair
from dms.net._metrics import Metrics

MIB = 1024 * 1024
PIECE = 16 * 1024


class RawWebsocket:
    """A websocket client written by hand, so a test can send what no library would:
    one frame whose header announces a megabyte, streamed in small pieces."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.ws = WSConnection(ConnectionType.CLIENT)

    @classmethod
    async def open(cls, address: str) -> RawWebsocket:
        parsed = parse_node_address(address)
        host, port = parsed.host, parsed.port
        self = cls(await trio.open_tcp_stream(host, port))
        await self.stream.send_all(self.ws.send(Request(host=host, target="/")))
        while not any(isinstance(e, AcceptConnection) for e in await self.events()):
            pass
        return self

    async def events(self) -> list[object]:
        data = await self.stream.receive_some(PIECE)
        if not data:
            raise EOFError
        self.ws.receive_data(data)
        return list(self.ws.events())

    async def send_frame_in_pieces(self, size: int) -> None:
        """One binary frame of `size` bytes (mask of zeros), sent PIECE bytes at a time."""
        await self.stream.send_all(b"\x82\xff" + struct.pack(">Q", size) + bytes(4))
        for _ in range(size // PIECE):
            await self.stream.send_all(bytes(PIECE))

    async def send_fragments(self, size: int) -> None:
        """One message of `size` bytes, as continuation frames of PIECE bytes."""
        for sent in range(0, size, PIECE):
            final = sent + PIECE >= size
            event = BytesMessage(data=bytes(PIECE), message_finished=final)
            await self.stream.send_all(self.ws.send(event))

    async def close_code(self) -> int | None:
        """The code of the close frame the server sends, None if it only hangs up."""
        try:
            while True:
                for event in await self.events():
                    if isinstance(event, CloseConnection):
                        return event.code
        except (EOFError, trio.BrokenResourceError):
            return None


async def echo(link: Link) -> None:
    while True:
        await link.send(await link.receive())


@pytest.mark.parametrize("shape", ["one frame", "fragments"])
async def test_a_strangers_megabyte_before_the_handshake_is_cut_off_without_being_buffered(
        shape):
    server = WebsocketTransport(nacl.signing.SigningKey.generate())
    with trio.fail_after(10):
        async with server, trio.open_nursery() as nursery:
            address = await nursery.start(server.listen, "ws://127.0.0.1:0", echo)
            stranger = await RawWebsocket.open(address)
            tracemalloc.start()
            try:
                baseline = tracemalloc.get_traced_memory()[0]
                try:
                    if shape == "one frame":
                        await stranger.send_frame_in_pieces(MIB)
                    else:
                        await stranger.send_fragments(MIB)
                except trio.BrokenResourceError:
                    pass  # cut off while sending: the listener stopped reading
                code = await stranger.close_code()
                peak = tracemalloc.get_traced_memory()[1] - baseline
            finally:
                tracemalloc.stop()
            await stranger.stream.aclose()
            while server.metrics["link.handshakes_failed"] < 1:
                await trio.sleep(0.01)
            nursery.cancel_scope.cancel()
    assert code in (1009, None)  # "message too big", unless the reset overtook it
    assert server.metrics["link.handshakes_oversize"] == 1
    assert server.metrics["link.handshakes_failed"] == 1
    assert peak < 256 * 1024, f"the listener buffered {peak} bytes of a stranger's message"


async def test_a_megabyte_frame_crosses_both_ways_right_after_the_handshake():
    # The dialer's first frame may reach the listener in the same read as its FINISH:
    # it must be read with the frame bound, not the handshake's.
    server = WebsocketTransport(nacl.signing.SigningKey.generate())
    big = bytes(range(256)) * (MIB // 256)
    with trio.fail_after(20):
        async with server, trio.open_nursery() as nursery:
            address = await nursery.start(server.listen, "ws://127.0.0.1:0", echo)
            async with WebsocketTransport(nacl.signing.SigningKey.generate()) as client:
                for _ in range(3):
                    link = await client.connect(address)
                    await link.send(big)
                    assert await link.receive() == big
                    await link.aclose()
            nursery.cancel_scope.cancel()
    assert server.metrics["link.handshakes_ok"] == 3
    assert server.metrics["link.handshakes_oversize"] == 0
    assert server.metrics["link.rejected_oversize"] == 0


async def test_a_frame_over_the_listeners_frame_bound_closes_the_link_and_is_counted():
    server = WebsocketTransport(nacl.signing.SigningKey.generate(), LinkSettings(max_frame=1024))
    with trio.fail_after(10):
        async with server, trio.open_nursery() as nursery:
            address = await nursery.start(server.listen, "ws://127.0.0.1:0", echo)
            async with WebsocketTransport(nacl.signing.SigningKey.generate()) as client:
                link = await client.connect(address)
                await link.send(b"x" * 1024)
                assert await link.receive() == b"x" * 1024
                await link.send(b"x" * 1025)
                await link.wait_closed()
            nursery.cancel_scope.cancel()
    assert server.metrics["link.rejected_oversize"] == 1


async def test_a_plain_http_request_is_refused_and_the_listener_goes_on():
    server = WebsocketTransport(nacl.signing.SigningKey.generate())
    with trio.fail_after(10):
        async with server, trio.open_nursery() as nursery:
            address = await nursery.start(server.listen, "ws://127.0.0.1:0", echo)
            parsed = parse_node_address(address)
            host, port = parsed.host, parsed.port
            async with await trio.open_tcp_stream(host, port) as browser:
                await browser.send_all(b"GET / HTTP/1.1\r\nHost: node\r\n\r\n")
                answer = b""
                while chunk := await browser.receive_some(PIECE):
                    answer += chunk
            assert answer.startswith(b"HTTP/1.1 400")
            async with WebsocketTransport(nacl.signing.SigningKey.generate()) as client:
                link = await client.connect(address)
                await link.send(b"still here")
                assert await link.receive() == b"still here"
            nursery.cancel_scope.cancel()
    assert server.metrics["link.handshakes_failed"] == 1


async def test_a_ping_before_the_handshake_is_answered_and_the_handshake_then_completes():
    from wsproto.events import Ping, Pong

    server = WebsocketTransport(nacl.signing.SigningKey.generate())
    with trio.fail_after(10):
        async with server, trio.open_nursery() as nursery:
            address = await nursery.start(server.listen, "ws://127.0.0.1:0", echo)
            raw = await RawWebsocket.open(address)
            await raw.stream.send_all(raw.ws.send(Ping(payload=b"anyone?")))
            events: list[object] = []
            while not any(isinstance(e, Pong) for e in events):
                events = await raw.events()
            assert Pong(payload=b"anyone?") in events
            await raw.stream.aclose()
            nursery.cancel_scope.cancel()


@pytest.mark.parametrize("address_length", [0, 1024])
def test_every_real_handshake_message_fits_the_pre_handshake_bound(address_length):
    address = "x" * address_length
    dialer = InitiatorHandshake(nacl.signing.SigningKey.generate(), address)
    listener = ResponderHandshake(nacl.signing.SigningKey.generate(), address)
    hello = dialer.start()
    reply = listener.receive_hello(hello)
    finish, _ = dialer.receive_reply(reply)
    listener.receive_finish(finish)
    assert max(len(hello), len(reply), len(finish)) <= MAX_HANDSHAKE_MESSAGE


async def test_endpoints_announcing_the_longest_address_complete_the_handshake(autojump_clock):
    left, right = carrier_pair()
    dialer = SecureEndpoint(nacl.signing.SigningKey.generate(), DEFAULT_LINK_SETTINGS, Metrics())
    listener = SecureEndpoint(nacl.signing.SigningKey.generate(), DEFAULT_LINK_SETTINGS,
                              Metrics())
    dialer.listen_address = listener.listen_address = "memory://" + "x" * (1024 - 9)
    accepted = []

    async def accept() -> None:
        accepted.append(await listener.accept(right))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(accept)
        link = await dialer.dial(left, "memory://listener", None)
    assert accepted[0] is not None and accepted[0].remote_address == dialer.listen_address
    assert link.remote_address == listener.listen_address
