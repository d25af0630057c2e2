"""Dialing an address that is not a dms node is a failed dial, never a crash.

Each shape is a tiny TCP server on 127.0.0.1 answering what a wrong address answers in
the wild: an HTTP error page, a plain web page, garbage, an immediate close, silence.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Awaitable, Callable

import nacl.signing
import pytest
import trio
from trio_websocket import (
    ConnectionClosed,
    WebSocketConnection,
    WebSocketRequest,
    serve_websocket,
)

from dms.net import Backoff, ConnectFailed, LinkSettings, Mesh, NetError, WebsocketTransport

Answer = Callable[[trio.SocketStream], Awaitable[None]]


async def http_404(stream: trio.SocketStream) -> None:
    await stream.receive_some(65536)
    await stream.send_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found")


async def http_200(stream: trio.SocketStream) -> None:
    await stream.receive_some(65536)
    await stream.send_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")


async def http_404_without_body(stream: trio.SocketStream) -> None:
    await stream.receive_some(65536)
    await stream.send_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")


async def garbage(stream: trio.SocketStream) -> None:
    await stream.send_all(b"\x00\xff not http at all \x13\x37" * 64)


async def garbage_after_request(stream: trio.SocketStream) -> None:
    await stream.receive_some(65536)
    await stream.send_all(b"220 smtp.example ESMTP ready\r\n\r\n")


async def immediate_close(stream: trio.SocketStream) -> None:
    await stream.aclose()


async def never_answers(stream: trio.SocketStream) -> None:
    await trio.sleep_forever()


SHAPES: dict[str, tuple[Answer, str]] = {
    "http 404": (http_404, "answered HTTP 404 instead of a websocket upgrade"),
    "http 404 without body": (http_404_without_body, "answered HTTP 404"),
    "plain http 200": (http_200, "answered HTTP 200 instead of a websocket upgrade"),
    "garbage bytes": (garbage, "does not speak websocket"),
    "garbage after the request": (garbage_after_request, "does not speak websocket"),
    "immediate close": (immediate_close, "closed"),
}


async def serve(nursery: trio.Nursery, answer: Answer) -> str:
    """Serve `answer` on a free loopback port (holding each stream 5 s after it answers)."""

    async def handler(stream: trio.SocketStream) -> None:
        async with stream:
            await answer(stream)
            with trio.move_on_after(5), contextlib.suppress(trio.ClosedResourceError):
                await stream.receive_some(65536)

    listeners = await nursery.start(functools.partial(trio.serve_tcp, handler, 0,
                                                      host="127.0.0.1"))
    return f"ws://127.0.0.1:{listeners[0].socket.getsockname()[1]}"


@pytest.mark.parametrize("shape", SHAPES)
async def test_connect_to_a_non_websocket_address_fails_naming_address_and_answer(shape):
    answer, reason = SHAPES[shape]
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            address = await serve(nursery, answer)
            async with WebsocketTransport(nacl.signing.SigningKey.generate()) as transport:
                with pytest.raises(ConnectFailed, match=reason) as failed:
                    await transport.connect(address)
                assert address in str(failed.value)
                # the transport is still usable: the same failure, not a crash, again
                with pytest.raises(ConnectFailed):
                    await transport.connect(address)
            nursery.cancel_scope.cancel()


async def test_connect_to_a_listener_that_never_answers_fails_after_the_handshake_timeout():
    settings = LinkSettings(handshake_timeout=0.5)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            address = await serve(nursery, never_answers)
            async with WebsocketTransport(nacl.signing.SigningKey.generate(),
                                          settings) as transport:
                start = trio.current_time()
                with pytest.raises(ConnectFailed, match="no websocket connection within 0.5 s"):
                    await transport.connect(address)
                assert trio.current_time() - start < 2
            nursery.cancel_scope.cancel()


@pytest.mark.parametrize("shape", [*SHAPES, "never answers"])
async def test_a_mesh_bootstrapping_at_a_non_websocket_address_counts_and_retries(shape):
    answer = never_answers if shape == "never answers" else SHAPES[shape][0]
    key = nacl.signing.SigningKey.generate()
    transport = WebsocketTransport(key, LinkSettings(handshake_timeout=0.2))
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            address = await serve(nursery, answer)
            mesh = Mesh(key, transport, listen="ws://127.0.0.1:0", bootstrap=[address],
                        backoff=Backoff(initial=0.05, maximum=0.1))
            await nursery.start(mesh.run)
            while mesh.metrics["mesh.dial_failures"] < 3:  # retried, with backoff
                await trio.sleep(0.05)
            assert mesh.connected_peers() == []
            assert mesh.listen_address is not None  # still up and listening
            failure = mesh.dial_failure(address)  # what a caller that gives up can say
            assert isinstance(failure, ConnectFailed) and address in str(failure)
            nursery.cancel_scope.cancel()


# -- websocket servers that are not dms nodes ------------------------------------------------


async def ws_echo(ws: WebSocketConnection) -> None:
    while True:
        await ws.send_message(await ws.get_message())


async def ws_text(ws: WebSocketConnection) -> None:
    await ws.get_message()
    await ws.send_message("hello, browser")
    await trio.sleep_forever()


async def ws_close(ws: WebSocketConnection) -> None:
    await ws.aclose(code=1008, reason="go away")


async def ws_big(ws: WebSocketConnection) -> None:
    await ws.get_message()
    await ws.send_message(b"x" * 100_000)
    await trio.sleep_forever()


WEBSOCKET_SHAPES = {
    "echo": (ws_echo, "answered the handshake wrongly, it may not be a dms node"),
    "text": (ws_text, "answered the handshake wrongly"),
    "close": (ws_close, "closed the connection during the handshake"),
    "big": (ws_big, "answered the handshake wrongly"),
}


@pytest.mark.parametrize("shape", WEBSOCKET_SHAPES)
async def test_connect_to_a_websocket_server_that_is_no_dms_node_fails_naming_it(shape):
    behave, reason = WEBSOCKET_SHAPES[shape]

    async def handler(request: WebSocketRequest) -> None:
        with contextlib.suppress(ConnectionClosed):
            await behave(await request.accept())

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(serve_websocket, handler, "127.0.0.1", 0, None)
            address = f"ws://127.0.0.1:{server.port}"
            async with WebsocketTransport(nacl.signing.SigningKey.generate()) as transport:
                with pytest.raises(NetError, match=reason) as failed:
                    await transport.connect(address)
                assert address in str(failed.value)
            nursery.cancel_scope.cancel()


async def test_a_websocket_server_refusing_the_upgrade_is_a_failed_connect():
    async def handler(request: WebSocketRequest) -> None:
        await request.reject(403, body=b"forbidden")

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(serve_websocket, handler, "127.0.0.1", 0, None)
            async with WebsocketTransport(nacl.signing.SigningKey.generate()) as transport:
                with pytest.raises(ConnectFailed, match="answered HTTP 403"):
                    await transport.connect(f"ws://127.0.0.1:{server.port}")
            nursery.cancel_scope.cancel()
