"""The one interface both transports implement, and `SecureTransport`, what they share.

A transport turns addresses into secure `Link`s. `listen` is started with
`address = await nursery.start(transport.listen, address, handle_link)` and runs until
cancelled, calling `handle_link(link)` in a new task per accepted link (the link is
closed when the handler returns, as with `trio.serve_tcp`). `connect` needs the
transport to be open (`async with transport:`), because the tasks that own dialed
links live in the transport's nursery; leaving the block closes every dialed link.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Protocol, Self

import nacl.signing
import trio

from dms._nursery import sole_failure
from dms.net._errors import ListenFailed, TransportNotOpen
from dms.net._link import (
    DEFAULT_LINK_SETTINGS,
    Carrier,
    Link,
    LinkHandler,
    LinkSettings,
    SecureEndpoint,
)
from dms.net._metrics import Metrics
from ucan.did import did_from_public_key


class Transport(Protocol):
    """Secure links to peers, identified by their proven did:key."""

    peer_id: str
    """This node's did:key, proven to every remote in the handshake."""

    metrics: Metrics
    """Counters shared by this transport's links (see `dms.net._metrics`)."""

    @property
    def listen_address(self) -> str | None:
        """The bound listen address once `listen` started, else None."""
        ...

    async def listen(
        self,
        address: str,
        handle_link: LinkHandler,
        *,
        task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Accept links on `address` until cancelled; `task_status` gets the bound address."""
        ...

    async def connect(self, address: str, expect_peer: str | None = None) -> Link:
        """Open a link to `address`; `PeerMismatch` if it proves a key other than `expect_peer`."""
        ...

    def check_address(self, address: str) -> None:
        """Raise `BadAddress` unless this transport can listen on or dial `address`."""
        ...

    async def __aenter__(self) -> Transport: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None: ...


def describe_os_error(exc: OSError) -> str:
    """One line for a user: why a TCP connection could not be opened. trio's
    "all attempts to connect failed" carries each attempt's reason in its cause."""
    if isinstance(exc.__cause__, ExceptionGroup):
        return ", ".join(sorted({_reason(e) for e in exc.__cause__.exceptions}))
    return _reason(exc)


def _reason(exc: BaseException) -> str:
    errno = getattr(exc, "errno", None)
    if isinstance(errno, int) and errno > 0:
        # trio puts "Error connecting to ('HOST', PORT): " before the reason in
        # strerror; the caller already names the address, once
        return os.strerror(errno)
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


class SecureTransport:
    """What every transport shares whatever its carrier: this node's `SecureEndpoint`
    (identity, metrics, announced address) and the `async with` part, a nursery owning
    the dialed links' tasks. A transport adds `listen` and `connect` for its carrier."""

    def __init__(self, key: nacl.signing.SigningKey,
                 settings: LinkSettings = DEFAULT_LINK_SETTINGS, *,
                 sharing: SecureTransport | None = None) -> None:
        """`sharing`: another transport whose endpoint (identity, metrics, announced
        address) and nursery this one uses, so that one node speaking several carriers
        is one peer with one set of counters (see `dms.net._node_transport`)."""
        self.peer_id = did_from_public_key(bytes(key.verify_key))
        if sharing is None:
            self.metrics = Metrics()
            self._endpoint = SecureEndpoint(key, settings, self.metrics)
        elif sharing.peer_id != self.peer_id:
            raise ValueError(f"a transport for {self.peer_id} cannot share the endpoint of "
                             f"{sharing.peer_id}")
        else:
            self.metrics = sharing.metrics
            self._endpoint = sharing._endpoint
        self._sharing = sharing
        self._nursery_manager: AbstractAsyncContextManager[trio.Nursery] | None = None
        self._nursery: trio.Nursery | None = None

    @property
    def listen_address(self) -> str | None:
        return self._endpoint.listen_address

    async def __aenter__(self) -> Self:
        if self._sharing is not None:
            raise RuntimeError(f"open the {type(self._sharing).__name__} this "
                               f"{type(self).__name__} shares, not it")
        if self._nursery_manager is not None:
            raise RuntimeError(f"{type(self).__name__} is already open")
        manager = trio.open_nursery()
        self._nursery = await manager.__aenter__()
        self._nursery_manager = manager
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        manager, nursery = self._nursery_manager, self._nursery
        assert manager is not None and nursery is not None
        self._nursery_manager = self._nursery = None
        nursery.cancel_scope.cancel()
        try:
            return bool(await manager.__aexit__(exc_type, exc, tb))
        except BaseExceptionGroup as group:
            # The body's own exception, only wrapped by the nursery: let it through as is.
            if exc is not None and sole_failure(group) is exc:
                return False
            raise

    async def _serve_tcp(
        self,
        address: str,
        host: str,
        port: int,
        carrier_for: Callable[[trio.SocketStream], Carrier],
        bound_address: Callable[[int], str],
        handle_link: LinkHandler,
        task_status: trio.TaskStatus[str],
    ) -> None:
        """`listen` for a carrier over TCP sockets: each accepted stream becomes
        `carrier_for(stream)` served by this node's endpoint; `bound_address(port)` is the
        address reported once bound."""

        async def on_connection(stream: trio.SocketStream) -> None:
            try:
                carrier = carrier_for(stream)
            except (OSError, ValueError):  # already gone, or no IP socket
                await stream.aclose()
                return
            await self._endpoint.serve(carrier, handle_link)

        try:
            # Bound here, outside any nursery, so a port in use or an address that is not
            # this machine's is one plain `ListenFailed`.
            listeners = await trio.open_tcp_listeners(port, host=host)
        except OSError as exc:
            raise ListenFailed(address, exc.strerror or str(exc)) from None
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(trio.serve_listeners, on_connection, listeners)
                bound = bound_address(listeners[0].socket.getsockname()[1])
                self._endpoint.listen_address = bound
                task_status.started(bound)
        finally:
            self._endpoint.listen_address = None

    def _link_nursery(self) -> trio.Nursery:
        if self._sharing is not None:
            return self._sharing._link_nursery()
        if self._nursery is None:
            raise TransportNotOpen(
                f"open the transport with `async with {type(self).__name__}(...)` "
                "before calling connect()"
            )
        return self._nursery
