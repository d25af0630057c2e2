"""Forwarding names outside `.internal` to a configured upstream: only a reply with the
query's id and question is relayed, each forward has a deadline (SERVFAIL after it),
and the forwards under way per ensemble are bounded (beyond: dropped and counted).
The upstream is a fake on 127.0.0.1 in the test's own process."""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from ipaddress import IPv4Address, IPv6Address

import pytest
import trio
from dnslib import QTYPE, RCODE, RR, A, DNSRecord
from hypothesis import given, settings
from hypothesis import strategies as st

from dms.network import (
    DnsUpstream,
    Forward,
    Forwarder,
    InvalidPlan,
    Resolver,
    dns_socket,
    ensemble_network,
    parse_upstream,
    plan_addresses,
    records_for,
    serve_dns,
)
from dms.network._dns_forward import reply_matches
from dms.provider import ProviderConfig

PLAN = plan_addresses("forward-test", ["web"], {})
FORWARDED = "192.0.2.7"  # TEST-NET-1: what the fake upstream says every name is

Upstream = Callable[[trio.socket.SocketType, bytes, tuple[str, int]], Awaitable[None]]


def answer_of(query: bytes, address: str = FORWARDED) -> DNSRecord:
    reply = DNSRecord.parse(query).reply()
    reply.add_answer(RR(reply.q.qname, QTYPE.A, rdata=A(address), ttl=60))
    return reply


async def answering(sock: trio.socket.SocketType, query: bytes, peer: tuple[str, int]) -> None:
    await sock.sendto(answer_of(query).pack(), peer)


@pytest.mark.parametrize(("text", "host", "port"), [
    ("192.0.2.53", IPv4Address("192.0.2.53"), 53),
    ("127.0.0.1:5353", IPv4Address("127.0.0.1"), 5353),
    ("[2001:db8::1]:5300", IPv6Address("2001:db8::1"), 5300),
    ("2001:db8::1", IPv6Address("2001:db8::1"), 53),
])
def test_an_upstream_setting_reads_as_an_address_and_port(
        text: str, host: IPv4Address | IPv6Address, port: int) -> None:
    assert parse_upstream(text) == DnsUpstream(host, port)


@pytest.mark.parametrize(("text", "says"), [
    ("dns.example", "not an IP address"),
    ("127.0.0.1:dns", "port 'dns' is not a number"),
    ("127.0.0.1:0", "port 0 is not 1 to 65535"),
    ("[2001:db8::1]x", "is not [IPv6]:PORT"),
    ("", "not an IP address"),
])
def test_a_wrong_upstream_setting_is_refused_naming_it(text: str, says: str) -> None:
    with pytest.raises(InvalidPlan) as caught:
        parse_upstream(text)
    assert caught.value.field == "network_dns_upstream" and says in caught.value.problem


def test_a_provider_config_checks_its_upstream_and_wants_the_network_with_it(
        tmp_path: object) -> None:
    config = ProviderConfig("/tmp/w", network=True, network_dns_upstream="127.0.0.1:5353")
    assert config.network_dns_upstream == DnsUpstream(IPv4Address("127.0.0.1"), 5353)
    assert ProviderConfig("/tmp/w", network=True).network_dns_upstream is None
    with pytest.raises(InvalidPlan, match="network_dns_upstream: 'x' is not an IP"):
        ProviderConfig("/tmp/w", network=True, network_dns_upstream="x")
    with pytest.raises(InvalidPlan, match="network_dns_upstream: .* set network too"):
        ProviderConfig("/tmp/w", network_dns_upstream="127.0.0.1")


def test_only_names_outside_the_zone_are_forwarded_and_only_when_asked() -> None:
    resolver = Resolver(records_for(PLAN))
    query = DNSRecord.question("Example.COM", "AAAA").pack()
    forward = resolver.answer(query, forwarding=True)
    assert forward == Forward(query, DNSRecord.parse(query).header.id,
                              ((b"example", b"com"), QTYPE.AAAA, 1))
    refused = resolver.answer(query)
    assert isinstance(refused, bytes | bytearray) and DNSRecord.parse(refused).header.rcode == RCODE.REFUSED
    local = resolver.answer(DNSRecord.question("web.internal").pack(), forwarding=True)
    assert isinstance(local, bytes | bytearray) and DNSRecord.parse(local).rr[0].rdata == A(
        str(PLAN.address_of("web")))


def test_an_upstream_reply_is_relayed_only_with_the_query_s_id_and_question() -> None:
    query = DNSRecord.question("example.com", "A")
    forward = Forward.of(query.pack(), query)
    good = answer_of(query.pack())
    assert reply_matches(forward, good.pack())
    shouting = answer_of(DNSRecord.question("EXAMPLE.com", "A").pack())
    shouting.header.id = query.header.id
    assert reply_matches(forward, shouting.pack())  # names match in any case
    wrong_id = answer_of(query.pack())
    wrong_id.header.id = (query.header.id + 1) % 65536
    other_name = answer_of(DNSRecord.question("example.org", "A").pack())
    other_name.header.id = query.header.id
    other_type = answer_of(DNSRecord.question("example.com", "MX").pack())
    other_type.header.id = query.header.id
    not_an_answer = DNSRecord.question("example.com", "A")
    not_an_answer.header.id = query.header.id
    for bad in (wrong_id.pack(), other_name.pack(), other_type.pack(), not_an_answer.pack(),
                query.pack()[:2] + b"\x81\x80garbage", good.pack() + bytes(5000), b""):
        assert not reply_matches(forward, bad)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.binary(max_size=300))
def test_no_bytes_make_forwarding_or_matching_raise(data: bytes, datagram: bytes) -> None:
    outcome = Resolver(records_for(PLAN)).answer(data, forwarding=True)
    if isinstance(outcome, Forward):
        assert outcome.query == data and outcome.question[0][-1:] != (b"internal",)
        assert not reply_matches(outcome, data)  # a query is no answer to itself
        reply_matches(outcome, datagram)
        reply_matches(outcome, data[:2] + datagram)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.from_regex(r"[a-zA-Z0-9]{1,12}", fullmatch=True), min_size=1, max_size=4),
       st.sampled_from(["A", "AAAA", "MX", "TXT", "ANY"]), st.binary(max_size=40))
def test_every_query_outside_the_zone_is_forwarded_and_every_one_inside_is_not(
        labels: list[str], qtype: str, junk: bytes) -> None:
    query = DNSRecord.question(".".join(labels), qtype).pack()
    outcome = Resolver(records_for(PLAN)).answer(query + junk, forwarding=True)
    if not junk:
        inside = labels[-1].lower() == "internal"
        assert isinstance(outcome, Forward) is not inside
        if isinstance(outcome, Forward):
            assert outcome.question == (tuple(label.lower().encode() for label in labels),
                                        getattr(QTYPE, qtype), 1)
            assert reply_matches(outcome, answer_of(query).pack())


@pytest.fixture
async def upstream_socket() -> AsyncIterator[trio.socket.SocketType]:
    with dns_socket("127.0.0.1", 0) as sock:
        yield sock


async def fake_upstream(sock: trio.socket.SocketType, handle: Upstream) -> None:
    async with trio.open_nursery() as nursery:
        while True:
            query, peer = await sock.recvfrom(4096)
            nursery.start_soon(handle, sock, query, peer)


class Client:
    def __init__(self, server: tuple[str, int]) -> None:
        self.server = server
        self.sock = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    async def ask(self, name: str, qtype: str = "A") -> DNSRecord:
        query = DNSRecord.question(name, qtype)
        await self.sock.sendto(query.pack(), self.server)
        return await self.receive()

    async def receive(self) -> DNSRecord:
        with trio.fail_after(10):
            return DNSRecord.parse(await self.sock.recv(4096))


async def serving(nursery: trio.Nursery, upstream: trio.socket.SocketType, handle: Upstream,
                  **limits: float) -> tuple[Client, Forwarder]:
    port = upstream.getsockname()[1]
    forwarder = Forwarder(DnsUpstream(IPv4Address("127.0.0.1"), port, **limits))  # type: ignore[arg-type]
    server = dns_socket("127.0.0.1", 0)
    nursery.start_soon(fake_upstream, upstream, handle)
    await nursery.start(serve_dns, Resolver(records_for(PLAN)), server, None, forwarder)
    return Client(server.getsockname()), forwarder


async def test_a_name_outside_the_zone_is_answered_by_the_upstream(
        upstream_socket: trio.socket.SocketType) -> None:
    async with trio.open_nursery() as nursery:
        client, forwarder = await serving(nursery, upstream_socket, answering)
        reply = await client.ask("example.com")
        assert [str(rr.rdata) for rr in reply.rr] == [FORWARDED]
        local = await client.ask("web.internal")
        assert [str(rr.rdata) for rr in local.rr] == [str(PLAN.address_of("web"))]
        assert forwarder.counters["forwarded"] == forwarder.counters["relayed"] == 1
        assert forwarder.under_way == 0
        nursery.cancel_scope.cancel()


async def test_upstream_datagrams_not_answering_the_query_are_not_relayed(
        upstream_socket: trio.socket.SocketType) -> None:
    async def tricky(sock: trio.socket.SocketType, query: bytes, peer: tuple[str, int]) -> None:
        stale = answer_of(query, "198.51.100.1")
        stale.header.id = (stale.header.id + 1) % 65536
        other = answer_of(DNSRecord.question("evil.example").pack(), "198.51.100.2")
        other.header.id = DNSRecord.parse(query).header.id
        for datagram in (stale.pack(), other.pack(), b"\x00", answer_of(query).pack()):
            await sock.sendto(datagram, peer)

    async with trio.open_nursery() as nursery:
        client, forwarder = await serving(nursery, upstream_socket, tricky)
        reply = await client.ask("example.com")
        assert [str(rr.rdata) for rr in reply.rr] == [FORWARDED]
        assert forwarder.counters["mismatched"] == 3
        nursery.cancel_scope.cancel()


async def test_a_slow_upstream_gets_the_client_servfail_at_the_deadline_and_its_late_reply_is_dropped(
        upstream_socket: trio.socket.SocketType) -> None:
    gave_up, late_sent = trio.Event(), trio.Event()

    async def slow(sock: trio.socket.SocketType, query: bytes, peer: tuple[str, int]) -> None:
        await gave_up.wait()  # answers only once the client has had its SERVFAIL
        await sock.sendto(answer_of(query).pack(), peer)
        late_sent.set()

    async with trio.open_nursery() as nursery:
        client, forwarder = await serving(nursery, upstream_socket, slow, timeout=0.3)
        reply = await client.ask("example.com")
        assert reply.header.rcode == RCODE.SERVFAIL and reply.rr == []
        assert forwarder.counters["timed_out"] == 1 and forwarder.under_way == 0
        gave_up.set()
        await late_sent.wait()
        local = await client.ask("web.internal")  # the next datagram is its own answer
        assert [str(rr.rdata) for rr in local.rr] == [str(PLAN.address_of("web"))]
        assert forwarder.counters["relayed"] == 0
        nursery.cancel_scope.cancel()


async def test_a_flood_beyond_the_bound_is_dropped_and_counted_and_the_zone_still_answers(
        upstream_socket: trio.socket.SocketType) -> None:
    held: list[bytes] = []

    async def silent(sock: trio.socket.SocketType, query: bytes, peer: tuple[str, int]) -> None:
        held.append(query)

    async with trio.open_nursery() as nursery:
        client, forwarder = await serving(nursery, upstream_socket, silent, timeout=30,
                                          in_flight=4)
        for n in range(10):
            await client.sock.sendto(DNSRecord.question(f"n{n}.example").pack(), client.server)
        with trio.fail_after(10):
            while len(held) < 4 or forwarder.counters["busy"] < 6:
                await trio.sleep(0.01)
        local = await client.ask("web.internal")  # answered while four forwards wait
        assert [str(rr.rdata) for rr in local.rr] == [str(PLAN.address_of("web"))]
        assert forwarder.counters["busy"] == 6 and forwarder.under_way == 4
        assert len(held) == 4
        nursery.cancel_scope.cancel()
    assert forwarder.under_way == 0  # cancelled forwards gave their slots back


async def test_an_upstream_refusing_the_connection_gives_servfail_at_once() -> None:
    with dns_socket("127.0.0.1", 0) as closed:
        port = closed.getsockname()[1]  # nobody listens there once this closes
    forwarder = Forwarder(DnsUpstream(IPv4Address("127.0.0.1"), port, timeout=30))
    with dns_socket("127.0.0.1", 0) as server:
        async with trio.open_nursery() as nursery:
            await nursery.start(serve_dns, Resolver(records_for(PLAN)), server, None, forwarder)
            reply = await Client(server.getsockname()).ask("example.com")
            assert reply.header.rcode == RCODE.SERVFAIL
            assert forwarder.counters["failed"] == 1 and forwarder.under_way == 0
            nursery.cancel_scope.cancel()


LOOKUP = """
import json, socket
found = {}
for name in ("somewhere.example", "web"):
    try: found[name] = socket.gethostbyname(name)
    except socket.gaierror as e: found[name] = e.errno
print(json.dumps(found))
"""


async def test_a_workload_resolves_outside_names_through_the_upstream_from_its_namespace(
        namespace_prefix: str, upstream_socket: trio.socket.SocketType) -> None:
    port = upstream_socket.getsockname()[1]
    upstream = DnsUpstream(IPv4Address("127.0.0.1"), port)
    async with trio.open_nursery() as nursery, \
            ensemble_network(PLAN, records_for(PLAN), dns_upstream=upstream) as net:
        nursery.start_soon(fake_upstream, upstream_socket, answering)
        await net.add("web", namespace_prefix + "web")
        with trio.fail_after(20):
            done = await trio.run_process(
                ["ip", "netns", "exec", namespace_prefix + "web", sys.executable, "-c", LOOKUP],
                capture_stdout=True)
        found = json.loads(done.stdout)
        assert found == {"somewhere.example": FORWARDED, "web": str(PLAN.address_of("web"))}
        assert net.forwarder is not None and net.forwarder.counters["relayed"] >= 1
        nursery.cancel_scope.cancel()
