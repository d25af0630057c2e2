"""The plain TCP transport: links, bounds before the body, hostile peers."""

from __future__ import annotations

from functools import partial

import nacl.signing
import pytest
import trio
import trio.socket
import trio.testing

from dms.net import BadAddress, ConnectFailed, HandshakeFailed, Link, LinkBusy, ListenFailed
from dms.net._address import parse_node_address
from dms.net._link import MAX_HANDSHAKE_MESSAGE
from dms.net._tcp import TcpTransport


async def _echo(link: Link) -> None:
    while True:
        await link.send(await link.receive())


async def test_tcp_link_carries_frames_both_ways() -> None:
    server = TcpTransport(nacl.signing.SigningKey.generate())
    client = TcpTransport(nacl.signing.SigningKey.generate())
    async with trio.open_nursery() as nursery, client:
        address = await nursery.start(server.listen, "tcp://127.0.0.1:0", _echo)
        link = await client.connect(address, expect_peer=server.peer_id)
        for size in (0, 1, 70_000, 300_000):
            await link.send(b"x" * size)
            assert await link.receive() == b"x" * size
        nursery.cancel_scope.cancel()


async def test_oversize_length_is_refused_before_the_body() -> None:
    server = TcpTransport(nacl.signing.SigningKey.generate())
    async with trio.open_nursery() as nursery:
        address = await nursery.start(server.listen, "tcp://127.0.0.1:0", _echo)
        port = parse_node_address(address).port
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all((MAX_HANDSHAKE_MESSAGE + 1).to_bytes(4, "big"))
        with trio.fail_after(5):
            assert await stream.receive_some(10) == b""  # closed without waiting for a body
        await trio.testing.wait_all_tasks_blocked()  # the server counts after closing
        assert server.metrics["link.handshakes_oversize"] == 1
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("answer", [b"HTTP/1.1 200 OK\r\n\r\nhello", b"\xff" * 64, b""])
async def test_a_peer_that_is_not_a_node_fails_the_dial(answer: bytes) -> None:
    async def fake(stream: trio.SocketStream) -> None:
        await stream.send_all(answer)
        await trio.sleep(0.2)

    client = TcpTransport(nacl.signing.SigningKey.generate())
    async with trio.open_nursery() as nursery, client:
        listeners = await nursery.start(partial(trio.serve_tcp, fake, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        with pytest.raises((ConnectFailed, HandshakeFailed)):
            await client.connect(f"tcp://127.0.0.1:{port}")
        nursery.cancel_scope.cancel()


async def test_refused_port_is_connect_failed_naming_the_address() -> None:
    client = TcpTransport(nacl.signing.SigningKey.generate())
    with trio.socket.socket() as sock:
        await sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with client:
        with pytest.raises(ConnectFailed, match=f"127.0.0.1:{port}"):
            await client.connect(f"tcp://127.0.0.1:{port}")


async def test_port_in_use_is_listen_failed_and_bad_address_named() -> None:
    transport = TcpTransport(nacl.signing.SigningKey.generate())
    with pytest.raises(BadAddress):
        transport.check_address("ws://127.0.0.1:1")
    async with trio.open_nursery() as nursery:
        address = await nursery.start(transport.listen, "tcp://127.0.0.1:0", _echo)
        with pytest.raises(ListenFailed):
            await TcpTransport(nacl.signing.SigningKey.generate()).listen(address, _echo)
        nursery.cancel_scope.cancel()


async def test_frames_split_into_tiny_segments_and_packed_in_one_both_parse() -> None:
    from dms.net._tcp import TcpCarrier

    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    raw = await trio.open_tcp_stream("127.0.0.1", listener.socket.getsockname()[1])
    carrier = TcpCarrier(await listener.accept(), "test")
    frames = [b"a" * 5, b"", b"b" * 300]
    wire = b"".join(len(f).to_bytes(4, "big") + f for f in frames)
    for i in range(len(wire)):  # one byte per segment
        await raw.send_all(wire[i : i + 1])
        await trio.sleep(0)
    await raw.send_all(wire)  # then all three in one segment
    with trio.fail_after(5):
        assert [await carrier.receive_message(1000) for _ in range(6)] == frames * 2


async def _carrier_pair() -> tuple[trio.SocketStream, object]:
    from dms.net._tcp import TcpCarrier

    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    raw = await trio.open_tcp_stream("127.0.0.1", listener.socket.getsockname()[1])
    carrier = TcpCarrier(await listener.accept(), "test")
    await listener.aclose()
    return raw, carrier


async def test_a_peer_sending_without_pause_cannot_keep_the_reader_from_yielding() -> None:
    raw, carrier = await _carrier_pair()
    wire = b"".join(len(f).to_bytes(4, "big") + f for f in [b"m" * 10] * 100)
    await raw.send_all(wire)  # a hundred messages at once
    await trio.sleep(0.05)  # all of them in the socket: no receive below has to wait
    others_ran = 0

    async def other() -> None:
        nonlocal others_ran
        while True:
            others_ran += 1
            await trio.sleep(0)

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(other)
            for _ in range(100):
                with trio.testing.assert_checkpoints():
                    assert await carrier.receive_message(1000) == b"m" * 10  # type: ignore[attr-defined]
            nursery.cancel_scope.cancel()
    assert others_ran >= 99  # it ran between every two messages


async def test_a_frame_on_a_quiet_link_is_written_by_its_sender_at_once() -> None:
    server = TcpTransport(nacl.signing.SigningKey.generate())
    got: list[bytes] = []
    arrived = trio.Event()

    async def collect(link: Link) -> None:
        got.append(await link.receive())
        arrived.set()
        await trio.sleep_forever()

    with trio.fail_after(10):
        async with TcpTransport(nacl.signing.SigningKey.generate()) as client, \
                trio.open_nursery() as nursery:
            address = await nursery.start(server.listen, "tcp://127.0.0.1:0", collect)
            link = await client.connect(address, expect_peer=server.peer_id)
            await trio.testing.wait_all_tasks_blocked()
            link.send_nowait(b"now")  # no checkpoint after it: the writer task never runs
            assert client.metrics["link.frames_direct"] == 1
            assert client.metrics["link.frames_out"] == 1
            await arrived.wait()
            assert got == [b"now"]
            nursery.cancel_scope.cancel()


async def test_frames_waiting_behind_a_full_socket_leave_together_in_order() -> None:
    server = TcpTransport(nacl.signing.SigningKey.generate())
    count, frame = 200, bytes(64 * 1024)  # 13 MB: more than loopback socket buffers hold
    read = trio.Event()
    got: list[bytes] = []

    async def slow_reader(link: Link) -> None:
        await read.wait()  # nothing read until every frame was queued
        for _ in range(count):
            got.append(await link.receive())
        await trio.sleep_forever()

    with trio.fail_after(20):
        async with TcpTransport(nacl.signing.SigningKey.generate()) as client, \
                trio.open_nursery() as nursery:
            address = await nursery.start(server.listen, "tcp://127.0.0.1:0", slow_reader)
            link = await client.connect(address, expect_peer=server.peer_id)
            for n in range(count):
                while True:
                    try:
                        link.send_nowait(n.to_bytes(4, "big") + frame)
                        break
                    except LinkBusy:  # the buffer is full: let the reader drain it
                        read.set()
                        await trio.sleep(0.001)
            read.set()
            while len(got) < count:
                await trio.sleep(0.01)
            nursery.cancel_scope.cancel()
    assert [int.from_bytes(f[:4], "big") for f in got] == list(range(count))
    assert all(f[4:] == frame for f in got)
    assert client.metrics["link.frames_coalesced"] > 0  # several frames, one write
    assert client.metrics["link.frames_out"] == count


async def test_messages_across_the_receive_buffers_end_and_past_its_size_parse_in_order() -> None:
    from dms.net._tcp import _RECEIVE_BUFFER

    raw, carrier = await _carrier_pair()
    sizes = [
        _RECEIVE_BUFFER - 4 - 2,  # the next header starts 2 bytes before the buffer's end
        100,
        3 * _RECEIVE_BUFFER + 17,  # longer than the buffer: one of its own size
        0,
        _RECEIVE_BUFFER - 4,  # exactly fills it
        5,
    ]
    frames = [bytes([n]) * size for n, size in enumerate(sizes)]
    wire = b"".join(len(f).to_bytes(4, "big") + f for f in frames)

    async def send() -> None:
        for at in range(0, len(wire), 100_003):  # segments that split headers and bodies
            await raw.send_all(wire[at:at + 100_003])

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(send)
            got = [await carrier.receive_message(4 * _RECEIVE_BUFFER)  # type: ignore[attr-defined]
                   for _ in frames]
    assert got == frames
    assert len(carrier._buffer) == _RECEIVE_BUFFER  # type: ignore[attr-defined]  # given back


async def test_before_the_handshake_a_connection_buffers_no_more_than_the_limit() -> None:
    raw, carrier = await _carrier_pair()
    await raw.send_all((10).to_bytes(4, "big") + b"x" * 10 + b"y" * 100_000)
    with trio.fail_after(5):
        assert await carrier.receive_message(MAX_HANDSHAKE_MESSAGE) == b"x" * 10  # type: ignore[attr-defined]
    assert len(carrier._buffer) <= MAX_HANDSHAKE_MESSAGE + 4  # type: ignore[attr-defined]


async def test_a_length_prefix_alone_does_not_make_the_reader_allocate_the_message() -> None:
    # Hostile: after the handshake any peer may claim a 4 MiB message in 4 bytes and then
    # stay silent (slowloris). The reader's memory follows what arrived (doubling), not
    # what was claimed: else a few bytes per connection pin MAX_FRAME each.
    from dms.net._link import MAX_CARRIER_MESSAGE
    from dms.net._tcp import _RECEIVE_BUFFER

    raw, carrier = await _carrier_pair()
    body = bytes(range(256)) * (MAX_CARRIER_MESSAGE // 256)
    claimed = len(body)
    await raw.send_all(claimed.to_bytes(4, "big") + body[:10])
    async with trio.open_nursery() as nursery:
        got: list[bytes] = []

        async def read() -> None:
            got.append(await carrier.receive_message(MAX_CARRIER_MESSAGE))  # type: ignore[attr-defined]

        nursery.start_soon(read)
        with trio.fail_after(5):
            await trio.testing.wait_all_tasks_blocked(0.05)
        assert len(carrier._buffer) <= _RECEIVE_BUFFER  # type: ignore[attr-defined]
        sent = 10
        for chunk in (300_000, 500_000):  # the buffer grows no faster than 8x the data
            await raw.send_all(body[sent:sent + chunk])
            sent += chunk
            with trio.fail_after(5):
                await trio.testing.wait_all_tasks_blocked(0.05)
            assert len(carrier._buffer) <= min(8 * (sent + 4), claimed + 4)  # type: ignore[attr-defined]
        await raw.send_all(body[sent:])
    assert got == [body]
    assert len(carrier._buffer) == _RECEIVE_BUFFER  # type: ignore[attr-defined]
