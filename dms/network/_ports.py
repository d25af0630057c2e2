"""Port mappings: a port on the provider's host that reaches an allocation's port.

Each accepted connection is spliced to a socket made inside the allocation's namespace
and connected to the allocation's own address there, so the host never routes to 10/8
itself: the inner hop is local to the namespace. Connections are bounded
(`max_connections`; one more is closed at once, not queued) and each direction moves
through one 64 KiB buffer, so a client that stops reading holds memory for one read.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from ipaddress import IPv4Address

import trio

from dms.network._netns import entered

MAX_CONNECTIONS = 256
CHUNK = 65536


async def publish_port(namespace: str, address: IPv4Address | Callable[[], IPv4Address],
                       private: int, public: int = 0, host: str = "0.0.0.0", *,
                       max_connections: int = MAX_CONNECTIONS,
                       task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve `host:public` (0: any free port) until cancelled, forwarding to
    `address:private` inside `namespace`; `task_status.started(port)` with the port
    actually bound. OSError when the port cannot be bound. A callable `address` is
    asked at each connection (a renumbered ensemble moves the allocation's address;
    a KeyError from it, the allocation gone from the plan, closes the connection)."""
    current = address if callable(address) else (lambda: address)
    listeners = await trio.open_tcp_listeners(public, host=host)
    limiter = trio.CapacityLimiter(max_connections)

    async def handle(client: trio.SocketStream) -> None:
        async with client:
            try:
                limiter.acquire_nowait()
            except trio.WouldBlock:
                return  # at the limit: refuse this one at once
            try:
                try:
                    target = current()
                except KeyError:
                    return
                await _splice(client, namespace, target, private)
            finally:
                limiter.release()

    port: int = listeners[0].socket.getsockname()[1]
    async with trio.open_nursery() as nursery:
        task_status.started(port)
        await trio.serve_listeners(handle, listeners, handler_nursery=nursery)


async def _splice(client: trio.SocketStream, namespace: str, address: IPv4Address,
                  private: int) -> None:
    with entered(namespace):
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    inner_socket = trio.socket.from_stdlib_socket(raw)
    try:
        await inner_socket.connect((str(address), private))
    except OSError:
        inner_socket.close()
        return  # nothing listens there (yet): the client sees the connection close
    async with trio.SocketStream(inner_socket) as inner, trio.open_nursery() as nursery:
        nursery.start_soon(_copy, client, inner, nursery.cancel_scope)
        nursery.start_soon(_copy, inner, client, nursery.cancel_scope)


async def _copy(source: trio.SocketStream, sink: trio.SocketStream,
                done: trio.CancelScope) -> None:
    """One direction until EOF, then half-close the other side; a broken side ends
    both directions."""
    try:
        while data := await source.receive_some(CHUNK):
            await sink.send_all(data)
        await sink.send_eof()
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        done.cancel()
