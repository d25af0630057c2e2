"""Secure links over trio-websocket: one binary websocket message per sealed frame.

Addresses look like ``ws://127.0.0.1:9000``; listening on port 0 binds a free port and
`listen` reports the real address. The websocket layer is plain (no TLS): the link's own
handshake authenticates both sides and encrypts every frame.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import nacl.signing
import trio
from trio_websocket import (
    ConnectionClosed,
    HandshakeError,
    WebSocketConnection,
    WebSocketRequest,
    connect_websocket,
    serve_websocket,
)

from dms.net.errors import BadAddress, ConnectFailed, NetError
from dms.net.link import (
    DEFAULT_LINK_SETTINGS,
    MAX_CARRIER_MESSAGE,
    CarrierClosed,
    Link,
    LinkHandler,
    LinkSettings,
)
from dms.net.transport import SecureTransport

_RECEIVE_CHUNK = 64 * 1024


def parse_ws_address(address: str) -> tuple[str, int]:
    """(host, port) of a ``ws://host:port`` address; `BadAddress` names what is wrong."""
    try:
        parts = urlsplit(address)
        port = parts.port
    except ValueError as exc:
        raise BadAddress(address, str(exc)) from None
    if parts.scheme != "ws":
        raise BadAddress(address, "a websocket address starts with 'ws://'")
    if not parts.hostname or port is None:
        raise BadAddress(address, "a websocket address needs a host and a port")
    return parts.hostname, port


def format_ws_address(host: str, port: int) -> str:
    return f"ws://[{host}]:{port}" if ":" in host else f"ws://{host}:{port}"


class _WebsocketCarrier:
    def __init__(self, ws: WebSocketConnection) -> None:
        self._ws = ws

    async def send_message(self, data: bytes) -> None:
        try:
            await self._ws.send_message(data)
        except ConnectionClosed:
            raise CarrierClosed from None

    async def receive_message(self) -> bytes:
        try:
            message = await self._ws.get_message()
        except ConnectionClosed:
            raise CarrierClosed from None
        # A text message is not a frame; as bytes it fails authentication and ends the link.
        return message.encode() if isinstance(message, str) else message

    async def aclose(self) -> None:
        await self._ws.aclose()


class WebsocketTransport(SecureTransport):
    """The `Transport` over trio-websocket."""

    def __init__(
        self, key: nacl.signing.SigningKey, settings: LinkSettings = DEFAULT_LINK_SETTINGS
    ) -> None:
        super().__init__(key, settings)

    async def listen(
        self,
        address: str,
        handle_link: LinkHandler,
        *,
        task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        host, port = parse_ws_address(address)
        settings = self._endpoint.settings

        async def on_request(request: WebSocketRequest) -> None:
            ws = await request.accept()
            await self._endpoint.serve(_WebsocketCarrier(ws), handle_link)

        try:
            async with trio.open_nursery() as nursery:
                server = await nursery.start(
                    lambda task_status: serve_websocket(
                        on_request,
                        host,
                        port,
                        None,
                        max_message_size=MAX_CARRIER_MESSAGE,
                        receive_buffer_size=_RECEIVE_CHUNK,
                        connect_timeout=settings.handshake_timeout,
                        disconnect_timeout=settings.close_timeout,
                        task_status=task_status,
                    )
                )
                bound = format_ws_address(host, server.port)
                self._endpoint.listen_address = bound
                task_status.started(bound)
        finally:
            self._endpoint.listen_address = None

    def check_address(self, address: str) -> None:
        parse_ws_address(address)

    async def connect(self, address: str, expect_peer: str | None = None) -> Link:
        host, port = parse_ws_address(address)
        link: Link = await self._link_nursery().start(
            self._run_connection, address, host, port, expect_peer
        )
        return link

    async def _run_connection(
        self,
        address: str,
        host: str,
        port: int,
        expect_peer: str | None,
        *,
        task_status: trio.TaskStatus[Link] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Own one dialed connection: trio-websocket's reader task and the link's writer."""
        failure: NetError | None = None
        async with trio.open_nursery() as nursery:
            try:
                link = await self._open(nursery, address, host, port, expect_peer)
            except NetError as exc:
                failure = exc
            else:
                await self._endpoint.run_dialed(link, task_status=task_status)
            nursery.cancel_scope.cancel()
        if failure is not None:
            raise failure

    async def _open(
        self,
        nursery: trio.Nursery,
        address: str,
        host: str,
        port: int,
        expect_peer: str | None,
    ) -> Link:
        timeout = self._endpoint.settings.handshake_timeout
        with trio.move_on_after(timeout) as scope:
            try:
                ws = await connect_websocket(
                    nursery,
                    host,
                    port,
                    "/",
                    use_ssl=False,
                    max_message_size=MAX_CARRIER_MESSAGE,
                    receive_buffer_size=_RECEIVE_CHUNK,
                )
            except (OSError, HandshakeError, ConnectionClosed) as exc:
                raise ConnectFailed(address, str(exc) or type(exc).__name__) from None
        if scope.cancelled_caught:
            raise ConnectFailed(address, f"no websocket connection within {timeout} s")
        return await self._endpoint.dial(_WebsocketCarrier(ws), address, expect_peer)
