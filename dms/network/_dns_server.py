"""The thin trio shell around `Resolver`: one UDP socket, one loop.

The socket is the caller's (made inside an allocation's namespace, bound to
127.0.0.53:53 there, or on loopback in tests), so one server per namespace and each
namespace's queries are its own: a flood from one allocation fills its own socket
buffer and spends its own budget, not its neighbours'. Budget: `QueryBudget` queries
per second with a burst; beyond it queries are dropped and counted, before parsing.

With a `Forwarder` (the provider's `network_dns_upstream`), names outside `.internal`
are relayed to the upstream, each from a socket of its own in the host's namespace
(the loop's thread is there) with a deadline; the forwards under way are bounded per
ensemble (the forwarder is shared by the ensemble's servers), queries beyond the bound
are dropped and counted, so a flood from one allocation cannot hold more than that many
sockets nor make the upstream's slowness anyone else's.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections import Counter

import attrs
import trio

from dms.network._dns import MAX_QUERY, Resolver
from dms.network._dns_forward import (
    MAX_REPLY,
    DnsUpstream,
    Forward,
    failure_reply,
    reply_matches,
)


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


class Forwarder:
    """Relays one ensemble's forwarded queries to `upstream`. `counters`: `forwarded`
    (sent upstream), `relayed` (a matching answer went back), `busy` (dropped: the
    bound of forwards under way was reached), `timed_out` and `failed` (the client got
    SERVFAIL), `mismatched` (a datagram on a forward's socket that was not its answer)."""

    def __init__(self, upstream: DnsUpstream) -> None:
        self.upstream = upstream
        self.under_way = 0
        self.counters: Counter[str] = Counter()

    def admit(self) -> bool:
        """Take a slot for one forward (give it back with `relay`), or count it busy."""
        if self.under_way >= self.upstream.in_flight:
            self.counters["busy"] += 1
            return False
        self.under_way += 1
        return True

    async def relay(self, forward: Forward, sock: trio.socket.SocketType,
                    client: tuple[object, ...]) -> None:
        """Ask the upstream, free the slot `admit` took (whatever happens), and send
        its answer, or SERVFAIL, to `client` on `sock`."""
        reply: bytes | None = None
        try:
            with trio.move_on_after(self.upstream.timeout) as deadline:
                try:
                    reply = await self._ask(forward)
                except OSError:  # ICMP unreachable, no route: the upstream's failure
                    self.counters["failed"] += 1
        finally:
            self.under_way -= 1
        if deadline.cancelled_caught:
            self.counters["timed_out"] += 1
        if reply is None:
            reply = failure_reply(forward)
        else:
            self.counters["relayed"] += 1
        if reply is not None:
            with contextlib.suppress(OSError):
                await sock.sendto(reply, client)

    async def _ask(self, forward: Forward) -> bytes:
        family = socket.AF_INET6 if self.upstream.host.version == 6 else socket.AF_INET
        with trio.socket.socket(family, socket.SOCK_DGRAM) as up:
            await up.connect((str(self.upstream.host), self.upstream.port))
            await up.send(forward.query)
            self.counters["forwarded"] += 1
            while True:
                datagram = await up.recv(MAX_REPLY + 1)
                if reply_matches(forward, datagram):
                    return datagram
                self.counters["mismatched"] += 1


async def serve_dns(resolver: Resolver, sock: trio.socket.SocketType,
                    budget: QueryBudget | None = None, forwarder: Forwarder | None = None,
                    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Answer every query arriving on `sock` until cancelled (forwards under way are
    cancelled with it). Send failures (an ICMP error from a vanished client) are
    ignored: they concern one client only."""
    budget = budget or QueryBudget()
    async with trio.open_nursery() as forwards:
        task_status.started()
        while True:
            data, peer = await sock.recvfrom(MAX_QUERY + 1)
            if not budget.take(time.monotonic()):
                continue
            reply = resolver.answer(data, forwarding=forwarder is not None)
            if reply is None:
                continue
            if isinstance(reply, Forward):
                assert forwarder is not None
                if forwarder.admit():
                    forwards.start_soon(forwarder.relay, reply, sock, peer)
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
