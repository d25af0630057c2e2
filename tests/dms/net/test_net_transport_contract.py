"""The transport contract on 127.0.0.1, run over each carrier a node speaks (tcp://, ws://):
addresses, failures, large frames, the bounded half-open handshakes, hostile dialers."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import nacl.signing
import pytest
import trio
import trio.testing
import trio_websocket

from dms.net import (
    MAX_FRAME,
    ConnectFailed,
    Link,
    LinkSettings,
    ListenFailed,
    TcpTransport,
    WebsocketTransport,
)
from dms.net._address import parse_node_address
from dms.net._handshake import InitiatorHandshake
from dms.net._link import MAX_HANDSHAKE_MESSAGE
from dms.net._transport import SecureTransport

UNRESOLVABLE = "no-such-host.invalid"  # answered by the `unresolvable` fixture (conftest)
WaitClosed = Callable[[], Awaitable[None]]
TRANSPORTS: dict[str, Callable[..., SecureTransport]] = {
    "tcp": TcpTransport, "ws": WebsocketTransport}


@pytest.fixture(params=sorted(TRANSPORTS))
def scheme(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def transport(scheme: str, settings: LinkSettings | None = None) -> SecureTransport:
    key = nacl.signing.SigningKey.generate()
    return TRANSPORTS[scheme](key) if settings is None else TRANSPORTS[scheme](key, settings)


async def echo(link: Link) -> None:
    while True:
        await link.send(await link.receive())


@asynccontextmanager
async def silent_connection(scheme: str, address: str) -> AsyncIterator[WaitClosed]:
    """A connection that got past the carrier's own opening (for ws://, the upgrade) and
    then sends nothing, as a half-open dialer does; yields a wait for the listener to
    close it."""
    parsed = parse_node_address(address)
    if scheme == "ws":
        async with trio_websocket.open_websocket(parsed.host, parsed.port, "/",
                                                 use_ssl=False) as ws:
            async def ws_closed() -> None:
                with pytest.raises(trio_websocket.ConnectionClosed):
                    await ws.get_message()

            yield ws_closed
    else:
        async with await trio.open_tcp_stream(parsed.host, parsed.port) as stream:
            async def tcp_closed() -> None:
                with contextlib.suppress(trio.BrokenResourceError):  # a reset is closed too
                    assert await stream.receive_some(1024) == b""

            yield tcp_closed


async def test_connect_to_a_closed_port_fails_naming_the_address(scheme: str) -> None:
    with trio.fail_after(10):
        async with transport(scheme) as client:
            with pytest.raises(ConnectFailed,
                               match=f"{scheme}://127.0.0.1:1: .*Connection refused"):
                await client.connect(f"{scheme}://127.0.0.1:1")


async def test_a_refused_tcp_connect_says_the_address_once_and_the_reason() -> None:
    """trio's own message repeats the address as a tuple; the user reads it once."""
    with trio.fail_after(10):
        async with transport("tcp") as client:
            with pytest.raises(ConnectFailed) as refused:
                await client.connect("tcp://127.0.0.1:1")
    assert str(refused.value) == "cannot connect to tcp://127.0.0.1:1: Connection refused"


async def test_listening_on_port_zero_reports_the_bound_address(scheme: str) -> None:
    server = transport(scheme)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            address = await nursery.start(server.listen, f"{scheme}://127.0.0.1:0", echo)
            assert address.startswith(f"{scheme}://127.0.0.1:") and not address.endswith(":0")
            assert server.listen_address == address
            nursery.cancel_scope.cancel()
    assert server.listen_address is None


async def test_a_maximal_frame_crosses_and_the_listener_outlives_closed_links(
        scheme: str) -> None:
    server = transport(scheme)
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            address = await nursery.start(server.listen, f"{scheme}://127.0.0.1:0", echo)
            async with transport(scheme) as client:
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


async def test_a_newcomer_evicts_the_oldest_half_open_handshake(scheme: str) -> None:
    server = transport(scheme, LinkSettings(pending_handshakes=1, accept_timeout=5))

    async def echo_once(link: Link) -> None:
        await link.send(await link.receive())

    with trio.fail_after(10):
        async with server, transport(scheme) as client, trio.open_nursery() as nursery:
            address = await nursery.start(server.listen, f"{scheme}://127.0.0.1:0", echo_once)
            # one silent connection holds the only handshake slot...
            async with silent_connection(scheme, address) as wait_closed:
                await trio.testing.wait_all_tasks_blocked()
                # ...and a real node that comes next takes it: the silent one is closed
                link = await client.connect(address, expect_peer=server.peer_id)
                await link.send(b"through")
                assert await link.receive() == b"through"
                await wait_closed()
            assert server.metrics["link.handshakes_evicted"] == 1
            nursery.cancel_scope.cancel()


async def test_an_oversized_first_message_fails_the_handshake() -> None:
    """websocket's own framing (tcp://'s length header: see `test_net_tcp`)."""
    server = transport("ws")
    with trio.fail_after(10):
        async with server, trio.open_nursery() as nursery:
            address = await nursery.start(server.listen, "ws://127.0.0.1:0", echo)
            parsed = parse_node_address(address)
            async with trio_websocket.open_websocket(parsed.host, parsed.port, "/",
                                                     use_ssl=False) as ws:
                await ws.send_message(b"\x01" * 100_000)
                with pytest.raises(trio_websocket.ConnectionClosed):
                    await ws.get_message()
            nursery.cancel_scope.cancel()


async def test_a_half_open_socket_holds_a_slot_for_the_accept_timeout_only(
        scheme: str) -> None:
    server = transport(scheme, LinkSettings(accept_timeout=0.5))

    async def ignore(link: Link) -> None:
        await trio.sleep_forever()

    with trio.fail_after(10):
        async with server, trio.open_nursery() as nursery:
            address = await nursery.start(server.listen, f"{scheme}://127.0.0.1:0", ignore)
            started = trio.current_time()
            async with silent_connection(scheme, address) as wait_closed:
                await wait_closed()  # closed by the server at its deadline
            assert 0.4 < trio.current_time() - started < 5
            await trio.testing.wait_all_tasks_blocked()  # the server counts after closing
            assert server.metrics["link.handshakes_failed"] == 1
            nursery.cancel_scope.cancel()


@pytest.mark.parametrize(("address", "reason"), [
    (None, "in use"),
    ("192.0.2.1:0", "assign requested address"),  # TEST-NET-1: not this machine's
    (f"{UNRESOLVABLE}:0", "not known"),
])
async def test_an_address_that_cannot_be_listened_on_is_one_plain_listen_failed(
        scheme: str, address: str | None, reason: str, unresolvable: object) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        full = f"{scheme}://{address or f'127.0.0.1:{taken.getsockname()[1]}'}"
        with pytest.raises(ListenFailed, match=f"cannot listen on {full}: .*{reason}"):
            await transport(scheme).listen(full, echo)


# -- hostile dialers --------------------------------------------------------------------------

HOSTILE_KINDS = ("garbage", "silent", "oversize header", "half handshake")


async def _hostile_tcp_dial(kind: str, host: str, port: int, done: trio.Event) -> None:
    """One stranger doing `kind` to a tcp:// listener until the listener drops it (or the
    test ends): it never completes a handshake."""
    with trio.move_on_after(30):
        try:
            async with await trio.open_tcp_stream(host, port) as stream:
                if kind == "garbage":
                    await stream.send_all(b"\xff\x00GET / HTTP/1.1\r\n" * 64)
                elif kind == "oversize header":
                    await stream.send_all((MAX_HANDSHAKE_MESSAGE + 1).to_bytes(4, "big"))
                elif kind == "half handshake":  # a real HELLO, then never the FINISH
                    hello = InitiatorHandshake(nacl.signing.SigningKey.generate(),
                                               None).start()
                    await stream.send_all(len(hello).to_bytes(4, "big") + hello)
                with trio.move_on_after(20):
                    while await stream.receive_some(65536):
                        pass  # a REPLY to the half handshake: read, never answered
        except (OSError, trio.BrokenResourceError):
            pass  # refused or reset: the listener dropped it
    done.set()


async def test_the_tcp_listener_accepts_a_good_dial_while_50_hostile_dials_run() -> None:
    server = TcpTransport(nacl.signing.SigningKey.generate(), LinkSettings(accept_timeout=1))
    with trio.fail_after(30):
        async with server, TcpTransport(nacl.signing.SigningKey.generate()) as client, \
                trio.open_nursery() as nursery:
            address = await nursery.start(server.listen, "tcp://127.0.0.1:0", echo)
            parsed = parse_node_address(address)
            ended = [trio.Event() for _ in range(50)]
            for n, done in enumerate(ended):
                nursery.start_soon(_hostile_tcp_dial, HOSTILE_KINDS[n % len(HOSTILE_KINDS)],
                                   parsed.host, parsed.port, done)
            await trio.testing.wait_all_tasks_blocked(0.05)  # all 50 at it at once
            link = await client.connect(address, expect_peer=server.peer_id)
            await link.send(b"served")
            assert await link.receive() == b"served"
            for done in ended:  # none of them got a link, and each ends
                await done.wait()
            again = await client.connect(address, expect_peer=server.peer_id)
            await again.send(b"still served")
            assert await again.receive() == b"still served"
            nursery.cancel_scope.cancel()
    assert server.metrics["link.handshakes_ok"] == 2
    assert server.metrics["link.handshakes_failed"] == 50  # every stranger, dropped


async def test_the_listening_side_writes_a_frame_on_a_quiet_link_from_the_sending_task(
        scheme: str) -> None:
    server = transport(scheme)
    direct: list[int] = []

    async def greet(link: Link) -> None:
        await trio.testing.wait_all_tasks_blocked()
        link.send_nowait(b"hello")  # no checkpoint after it: the writer task never runs
        direct.append(server.metrics["link.frames_direct"])
        await trio.sleep_forever()

    with trio.fail_after(10):
        async with transport(scheme) as client, trio.open_nursery() as nursery:
            address = await nursery.start(server.listen, f"{scheme}://127.0.0.1:0", greet)
            link = await client.connect(address, expect_peer=server.peer_id)
            assert await link.receive() == b"hello"
            nursery.cancel_scope.cancel()
    assert direct == [1]
