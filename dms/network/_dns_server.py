"""The thin trio shell around `Resolver`: one UDP socket, one loop.

The socket is the caller's (made inside an allocation's namespace, bound to
127.0.0.53:53 there, or on loopback in tests), so one server per namespace and each
namespace's queries are its own: a flood from one allocation fills its own socket
buffer and spends its own budget, not its neighbours'. Budget: `QueryBudget` queries
per second with a burst; beyond it queries are dropped and counted, before parsing.
"""

from __future__ import annotations

import socket
import time

import attrs
import trio

from dms.network._dns import MAX_QUERY, Resolver


@attrs.define
class QueryBudget:
    """A token bucket: `rate` queries/s, up to `burst` at once."""

    rate: float = 2000.0
    burst: float = 200.0
    tokens: float = attrs.field(default=-1.0)
    stamp: float = 0.0
    refused: int = 0

    def take(self, now: float) -> bool:
        if self.tokens < 0:
            self.tokens, self.stamp = self.burst, now
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            self.refused += 1
            return False
        self.tokens -= 1
        return True


async def serve_dns(resolver: Resolver, sock: trio.socket.SocketType,
                    budget: QueryBudget | None = None,
                    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Answer every query arriving on `sock` until cancelled. Send failures (an ICMP
    error from a vanished client) are ignored: they concern one client only."""
    budget = budget or QueryBudget()
    task_status.started()
    while True:
        data, peer = await sock.recvfrom(MAX_QUERY + 1)
        if not budget.take(time.monotonic()):
            continue
        reply = resolver.answer(data)
        if reply is None:
            continue
        try:
            await sock.sendto(reply, peer)
        except OSError:
            continue


def dns_socket(host: str = "127.0.0.53", port: int = 53) -> trio.socket.SocketType:
    """A UDP socket bound to (host, port) in the calling thread's network namespace
    (a socket stays in the namespace it was made in, whichever thread uses it later)."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        raw.bind((host, port))
    except OSError:
        raw.close()
        raise
    return trio.socket.from_stdlib_socket(raw)
