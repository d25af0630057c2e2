"""Secure links over trio-websocket: one binary websocket message per sealed frame.

Addresses look like ``ws://127.0.0.1:9000``; a dialer may add the path a proxy routes on
(``ws://proxy.example:80/dms``, see `dms.net._address`), and the listener answers on any
path. Listening on port 0 binds a free port and `listen` reports the real address. The websocket layer is plain (no TLS): the link's own
handshake authenticates both sides and encrypts every frame.

The listening side reads with `WebsocketServerCarrier` (see its module for why it is
not trio-websocket's): messages before the handshake are bounded by the handshake's
size, after it by the frame size, and the upgrade itself counts against the handshake's
slot and deadline. The dialing side uses trio-websocket.

A dial is one boundary: whatever the address answers (an HTTP page, a 404, garbage, a
closed or silent socket) and whatever the socket, h11, wsproto or trio-websocket raise
about it, in the dialing task or in trio-websocket's reader task, `connect` raises
`ConnectFailed` naming the address. Nothing a remote sends can crash the transport.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from typing import Any, cast

import h11
import trio
import wsproto.utilities
from trio_websocket import (
    ConnectionClosed,
    ConnectionRejected,
    Endpoint,
    HandshakeError,
    WebSocketConnection,
    connect_websocket,
)

from dms.net._address import NodeAddress, parse_node_address
from dms.net._errors import ConnectFailed, NetError
from dms.net._link import (
    MAX_CARRIER_MESSAGE,
    CarrierClosed,
    Link,
    LinkHandler,
    OversizeMessage,
)
from dms.net._transport import SecureTransport, describe_os_error
from dms.net._websocket_server import WebsocketServerCarrier

_RECEIVE_CHUNK = 64 * 1024


_MESSAGE_TOO_BIG = 1009
_TOO_BIG = "Exceeded maximum message size"  # trio-websocket's own reason for 1009


def source_of(ip: str) -> str:
    """The source an IP address counts as: itself, an IPv4-mapped address as IPv4, and
    an IPv6 address as its /64 (one host usually has a whole /64 to pick from)."""
    address = ipaddress.ip_address(ip.partition("%")[0])
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class _WebsocketCarrier:
    """The dialing side's carrier, on trio-websocket: its reader takes messages up to
    `MAX_CARRIER_MESSAGE` and the limit a receive asks for is checked on arrival."""

    def __init__(self, ws: WebSocketConnection) -> None:
        self._ws = ws
        remote = ws.remote
        self.source = source_of(str(remote.address)) if isinstance(remote, Endpoint) else remote

    async def send_message(self, data: bytes) -> None:
        try:
            await self._ws.send_message(data)
        except ConnectionClosed:
            raise CarrierClosed from None

    async def receive_message(self, limit: int) -> bytes:
        try:
            message = await self._ws.get_message()
        except ConnectionClosed as exc:
            # trio-websocket refusing a message past `MAX_CARRIER_MESSAGE` itself closes
            # with 1009 and this reason: an oversize message, not the remote's goodbye.
            reason = exc.reason
            if (reason is not None and reason.code == _MESSAGE_TOO_BIG
                    and (reason.reason or "").startswith(_TOO_BIG)):
                raise OversizeMessage(MAX_CARRIER_MESSAGE + 1, MAX_CARRIER_MESSAGE) from None
            raise CarrierClosed from None
        # A text message is not a frame; as bytes it fails authentication and ends the link.
        data = message.encode() if isinstance(message, str) else message
        if len(data) > limit:
            raise OversizeMessage(len(data), limit)
        return data

    async def aclose(self) -> None:
        await self._ws.aclose()


class WebsocketTransport(SecureTransport):
    """The `Transport` over trio-websocket."""

    async def listen(
        self,
        address: str,
        handle_link: LinkHandler,
        *,
        task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        parsed = parse_node_address(address, scheme="ws", listening=True)
        await self._serve_tcp(
            address, parsed.host, parsed.port,
            lambda stream: WebsocketServerCarrier(
                stream, source_of(stream.socket.getpeername()[0])),
            lambda bound_port: str(NodeAddress("ws", parsed.host, bound_port)),
            handle_link, task_status,
        )

    def check_address(self, address: str) -> None:
        parse_node_address(address, scheme="ws")

    async def connect(self, address: str, expect_peer: str | None = None) -> Link:
        parsed = parse_node_address(address, scheme="ws")
        link: Link = await self._link_nursery().start(
            self._run_connection, address, parsed, expect_peer
        )
        return link

    async def _run_connection(
        self,
        address: str,
        parsed: NodeAddress,
        expect_peer: str | None,
        *,
        task_status: trio.TaskStatus[Link] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Own one dialed connection: trio-websocket's reader task and the link's writer.

        Until the link is handed over through `task_status`, every way the connection
        can fail ends here as `ConnectFailed` (or the handshake's own `NetError`); once
        it is up, the reader ending for whatever reason closes the link.
        """
        failure: NetError | None = None
        link_up = False
        with trio.CancelScope() as connection_scope:
            async with trio.open_nursery() as nursery:
                reader = _GuardedReader(nursery, on_end=connection_scope.cancel)
                try:
                    link = await self._open(reader, address, parsed, expect_peer)
                except _CARRIER_ERRORS as exc:
                    failure = ConnectFailed(address, _describe(exc))
                except NetError as exc:
                    failure = exc
                else:
                    link_up = True  # run_dialed hands it over before its first checkpoint
                    await self._endpoint.run_dialed(link, task_status=task_status)
                nursery.cancel_scope.cancel()
        if link_up:
            return
        if reader.failure is not None:  # the reader's reason is the real one
            failure = ConnectFailed(address, _describe(reader.failure))
        raise failure or ConnectFailed(
            address, "the connection closed before the websocket handshake completed"
        )

    async def _open(
        self,
        reader: _GuardedReader,
        address: str,
        parsed: NodeAddress,
        expect_peer: str | None,
    ) -> Link:
        timeout = self._endpoint.settings.handshake_timeout
        with trio.move_on_after(timeout) as scope:
            # trio-websocket only calls `start_soon` on the nursery it is given.
            ws = await connect_websocket(
                cast(trio.Nursery, reader),
                parsed.host,
                parsed.port,
                parsed.path,
                use_ssl=False,
                max_message_size=MAX_CARRIER_MESSAGE,
                receive_buffer_size=_RECEIVE_CHUNK,
            )
        if scope.cancelled_caught:
            raise ConnectFailed(address, f"no websocket connection within {timeout:g} s")
        return await self._endpoint.dial(_WebsocketCarrier(ws), address, expect_peer)


_CARRIER_ERRORS: tuple[type[Exception], ...] = (
    OSError,  # refused, unreachable, unresolvable (socket.gaierror), reset
    HandshakeError,  # ConnectionRejected: an HTTP answer instead of an upgrade; timeouts
    ConnectionClosed,
    h11.ProtocolError,
    wsproto.utilities.ProtocolError,
    trio.BrokenResourceError,
    trio.ClosedResourceError,
)
"""What opening a websocket can raise in the dialing task, besides our own `NetError`."""


class _GuardedReader:
    """The nursery trio-websocket starts a dialed connection's reader task in.

    The reader parses what the remote sends, so it raises whatever a hostile or
    confused remote provokes: `ConnectionRejected` for an HTTP answer, h11's
    `LocalProtocolError` for garbage, and whatever else a library version adds. Left
    in a real nursery that would crash the transport; here it is kept as `failure`,
    and the reader ending (with or without one) calls `on_end`, so that a dial waiting
    for a handshake that can no longer come fails at once.
    """

    def __init__(self, nursery: trio.Nursery, on_end: Callable[[], None]) -> None:
        self._nursery = nursery
        self._on_end = on_end
        self.failure: Exception | None = None

    def start_soon(
        self, async_fn: Callable[..., Awaitable[object]], *args: Any, name: object = None
    ) -> None:
        self._nursery.start_soon(self._guard, async_fn, *args, name=name)

    async def _guard(self, async_fn: Callable[..., Awaitable[object]], *args: Any) -> None:
        try:
            await async_fn(*args)
        except Exception as exc:  # anything the remote provoked: see the class docstring
            self.failure = exc
        finally:
            self._on_end()


def _describe(exc: BaseException) -> str:
    """One line for a user: what the address answered instead of a websocket."""
    if isinstance(exc, ConnectionRejected):
        return (
            f"it answered HTTP {exc.status_code} instead of a websocket upgrade "
            "(is this a dms node's address?)"
        )
    if isinstance(exc, (h11.ProtocolError, wsproto.utilities.ProtocolError)):
        return f"it does not speak websocket ({type(exc).__name__}: {exc})"
    if isinstance(exc, OSError):
        return describe_os_error(exc)
    return str(exc) or type(exc).__name__
