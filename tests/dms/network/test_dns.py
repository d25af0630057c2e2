"""The `.internal` resolver: what it answers, what it refuses, that it never raises,
and the UDP server answering over real loopback sockets."""

from __future__ import annotations

import socket

import pytest
import trio
from dnslib import QTYPE, RCODE, DNSRecord
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dms.network import (
    DnsRecords,
    InvalidPlan,
    QueryBudget,
    Resolver,
    dns_socket,
    plan_addresses,
    records_for,
    serve_dns,
)

PLAN = plan_addresses("dep", ["web", "db"], {})
WEB = PLAN.address_of("web")
DB = PLAN.address_of("db")


def ask(resolver: Resolver, name: str, qtype: str = "A") -> DNSRecord:
    reply = resolver.answer(DNSRecord.question(name, qtype).pack())
    assert reply is not None
    return DNSRecord.parse(reply)


@pytest.fixture
def resolver() -> Resolver:
    return Resolver(records_for(PLAN, {"web": "www", "db": None}))


def test_an_allocation_resolves_by_its_own_name_and_its_dns_name(resolver: Resolver) -> None:
    for name, address in [("web.internal", WEB), ("www.internal", WEB), ("db.internal", DB)]:
        reply = ask(resolver, name)
        assert reply.header.rcode == RCODE.NOERROR and reply.header.aa == 1
        assert [(str(rr.rname), rr.rtype, str(rr.rdata)) for rr in reply.rr] == [
            (name + ".", QTYPE.A, str(address))]


def test_names_match_in_any_case_and_the_question_is_echoed_as_asked(resolver: Resolver) -> None:
    reply = ask(resolver, "WeB.InTeRnAl")
    assert str(reply.q.qname) == "WeB.InTeRnAl."
    assert str(reply.rr[0].rdata) == str(WEB)


def test_aaaa_of_a_known_name_is_an_empty_answer_not_an_error(resolver: Resolver) -> None:
    reply = ask(resolver, "web.internal", "AAAA")
    assert reply.header.rcode == RCODE.NOERROR and reply.rr == []


def test_an_unknown_internal_name_is_nxdomain(resolver: Resolver) -> None:
    for name in ["cache.internal", "x.web.internal"]:
        assert ask(resolver, name).header.rcode == RCODE.NXDOMAIN


def test_names_outside_internal_are_refused(resolver: Resolver) -> None:
    for name in ["example.com", "web", "web.internal.example.com"]:
        reply = ask(resolver, name)
        assert reply.header.rcode == RCODE.REFUSED and reply.rr == []


def test_a_query_with_two_questions_is_a_format_error(resolver: Resolver) -> None:
    query = DNSRecord.question("web.internal")
    query.add_question(DNSRecord.question("db.internal").q)
    reply = resolver.answer(query.pack())
    assert reply is not None and DNSRecord.parse(reply).header.rcode == RCODE.FORMERR


def test_answers_oversized_packets_and_garbage_get_no_reply(resolver: Resolver) -> None:
    answer = DNSRecord.question("web.internal").reply().pack()
    assert resolver.answer(answer) is None
    assert resolver.answer(b"\x00" * 5000) is None
    assert resolver.answer(b"") is None
    assert resolver.dropped == 3


def question_name_has_a_pointer(data: bytes) -> bool:
    """The rule, spelled out apart from the resolver: walking the labels of the first
    question name (from byte 12), a length byte with either top bit set comes before
    the terminating zero."""
    at = 12
    while at < len(data) and data[at] != 0:
        if data[at] >= 0x40:
            return True
        at += data[at] + 1
    return False


# Hypothesis found it: the question name is a pointer to offset 0, and dnslib read the
# header's bytes as a name (3: a label of id[1] and the flags, ended by qdcount's 0)
# and was answered; a question never needs a pointer, so it gets no reply.
POINTER_INTO_THE_HEADER = (b"\x03a\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
                           b"\xc0\x00\x00\x01\x00\x01")


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=600))
@example(POINTER_INTO_THE_HEADER)
def test_no_bytes_make_the_resolver_raise(data: bytes) -> None:
    reply = Resolver(records_for(PLAN)).answer(data)
    assert reply is None or len(reply) <= len(data) + 64
    if question_name_has_a_pointer(data):
        assert reply is None


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=12, max_size=80))
def test_a_real_query_with_mangled_tail_never_raises(tail: bytes) -> None:
    query = DNSRecord.question("web.internal").pack()
    Resolver(records_for(PLAN)).answer(query[:12] + tail)


def test_replacing_the_records_moves_a_name_at_once(resolver: Resolver) -> None:
    moved = plan_addresses("dep", ["web", "db", "cache"], {}, previous=PLAN)
    resolver.replace(records_for(moved))
    assert str(ask(resolver, "cache.internal").rr[0].rdata) == str(moved.address_of("cache"))
    assert ask(resolver, "www.internal").header.rcode == RCODE.NXDOMAIN


def test_record_names_that_are_not_dns_names_or_clash_are_refused_by_field() -> None:
    with pytest.raises(InvalidPlan, match="dns_names.web: 'bad_name!' is not a DNS name"):
        records_for(PLAN, {"web": "bad_name!"})
    with pytest.raises(InvalidPlan, match="dns_names.web: 'db' already names 'db'"):
        records_for(PLAN, {"web": "db"})
    with pytest.raises(InvalidPlan, match="must not end in .internal"):
        records_for(PLAN, {"web": "www.internal"})
    with pytest.raises(InvalidPlan, match="no allocation 'ghost'"):
        records_for(PLAN, {"ghost": "g"})


def test_the_budget_refuses_beyond_its_burst_and_refills_with_time() -> None:
    budget = QueryBudget(rate=4, burst=3)
    assert [budget.take(100.0) for _ in range(4)] == [True, True, True, False]
    assert budget.take(100.375) and not budget.take(100.375)  # 1.5 tokens refilled
    assert budget.refused == 2


async def test_the_server_answers_over_udp_on_loopback(resolver: Resolver) -> None:
    sock = dns_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    client = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with sock, client:
        async with trio.open_nursery() as nursery:
            await nursery.start(serve_dns, resolver, sock)
            await client.sendto(b"junk", ("127.0.0.1", port))  # dropped, server lives on
            await client.sendto(DNSRecord.question("www.internal").pack(), ("127.0.0.1", port))
            with trio.fail_after(5):
                data = await client.recv(2048)
            assert str(DNSRecord.parse(data).rr[0].rdata) == str(WEB)
            nursery.cancel_scope.cancel()
    assert resolver.dropped == 1


async def test_a_flood_beyond_the_budget_is_dropped_unparsed(resolver: Resolver) -> None:
    sock = dns_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    client = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    budget = QueryBudget(rate=0.001, burst=5)
    query = DNSRecord.question("web.internal").pack()
    with sock, client:
        async with trio.open_nursery() as nursery:
            await nursery.start(serve_dns, resolver, sock, budget)
            for _ in range(20):
                await client.sendto(query, ("127.0.0.1", port))
            answered = 0
            with trio.fail_after(10):  # generous: the machine may be loaded
                while answered < 5:
                    await client.recv(2048)
                    answered += 1
                while budget.refused < 15:
                    await trio.sleep(0.01)
            with trio.move_on_after(0.2):  # and nothing more comes
                await client.recv(2048)
                answered += 1
            nursery.cancel_scope.cancel()
    assert answered == 5 and budget.refused == 15


def test_empty_records_know_no_name() -> None:
    assert ask(Resolver(DnsRecords()), "web.internal").header.rcode == RCODE.NXDOMAIN
