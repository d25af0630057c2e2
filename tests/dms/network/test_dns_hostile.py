"""Hostile review of the `.internal` resolver: compression-pointer tricks and the
reflection bound (a reply is never more than the query plus one record)."""

from __future__ import annotations

import random
from ipaddress import IPv4Address

from dnslib import DNSRecord

from dms.network import DnsRecords, Resolver

ONE_RECORD = 16  # a compressed name pointer, type, class, TTL, length, 4 bytes


def resolver() -> Resolver:
    return Resolver(DnsRecords({"web": IPv4Address("10.0.0.2")}))


def test_compression_pointers_that_loop_or_point_away_get_no_reply() -> None:
    query = DNSRecord.question("web.internal", "A").pack()
    head, tail = query[:12], b"\x00\x01\x00\x01"
    long_name = b"".join(bytes([63]) + b"a" * 63 for _ in range(3)) + b"\x3da" + b"a" * 60 + b"\x00"
    answering = resolver()
    for bad in (head + b"\xc0\x0c" + tail,  # points at itself
                head + b"\xc0\x00" + tail,  # into the header
                head + b"\xc0\x12" + tail + long_name):  # forward, past the question
        assert answering.answer(bad) is None
    assert answering.dropped == 3


def test_no_mangled_query_makes_a_reply_longer_than_it_plus_one_record() -> None:
    base = DNSRecord.question("web.internal", "A").pack()
    rng = random.Random(7)
    answering = resolver()
    replied = 0
    for _ in range(3000):
        query = bytearray(base)
        for _ in range(rng.randint(1, 6)):
            query[rng.randrange(len(query))] = rng.randrange(256)
        query += bytes(rng.randrange(256) for _ in range(rng.choice((0, 0, 8, 40))))
        reply = answering.answer(bytes(query))
        assert reply is None or len(reply) <= len(query) + ONE_RECORD
        replied += reply is not None
    assert replied > 300  # the bound was put to the test, not only garbage dropped
