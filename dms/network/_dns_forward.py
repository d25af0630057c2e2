"""Forwarding names outside `.internal` to an upstream resolver, sans-IO: which upstream
(parsed from the provider's `network_dns_upstream` setting), what a forwarded query
is, and which upstream datagram may be relayed back as its answer.

Only a reply that is an answer (QR set) to a standard query with the forwarded query's
id and exactly its question (name in any case, type, class) is relayed: anything else
arriving on the forwarding socket (a stale answer, a spoofed one, garbage) is not,
and the forward keeps waiting until its deadline.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address

import attrs
from dnslib import RCODE, DNSQuestion, DNSRecord

from dms.network._errors import InvalidPlan

MAX_REPLY = 4096  # the largest EDNS answer relayed; above it the reply is dropped
DEFAULT_TIMEOUT = 2.0  # the resolv.conf inside allows 1 s x 2 attempts
DEFAULT_IN_FLIGHT = 64  # forwards under way at once, per ensemble resolver

Question = tuple[tuple[bytes, ...], int, int]  # lowercase labels, qtype, qclass


@attrs.frozen
class DnsUpstream:
    """Where non-.internal queries go, how long each may take (`timeout`, seconds) and
    how many of one ensemble's may be under way at once (`in_flight`)."""

    host: IPv4Address | IPv6Address
    port: int = 53
    timeout: float = DEFAULT_TIMEOUT
    in_flight: int = DEFAULT_IN_FLIGHT

    def __attrs_post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise InvalidPlan("network_dns_upstream", f"port {self.port} is not 1 to 65535")
        if not 0 < self.timeout <= 30:
            raise InvalidPlan("network_dns_upstream.timeout",
                              f"{self.timeout} is not a number of seconds in (0, 30]")
        if not 0 < self.in_flight <= 4096:
            raise InvalidPlan("network_dns_upstream.in_flight",
                              f"{self.in_flight} is not between 1 and 4096")


def parse_upstream(text: str) -> DnsUpstream:
    """`IP`, `IP:PORT` or `[IPv6]:PORT` as an upstream; InvalidPlan naming the
    setting and what is wrong with it otherwise (a name is refused: resolving the
    resolver would need a resolver)."""
    host, port = text.strip(), "53"
    if host.startswith("["):
        host, _, rest = host[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise InvalidPlan("network_dns_upstream", f"{text!r} is not [IPv6]:PORT")
            port = rest[1:]
    elif host.count(":") == 1:
        host, port = host.split(":")
    try:
        address = ip_address(host)
    except ValueError:
        raise InvalidPlan("network_dns_upstream",
                          f"{text!r} is not an IP address (or IP:PORT)") from None
    if not port.isdigit():
        raise InvalidPlan("network_dns_upstream", f"port {port!r} is not a number")
    return DnsUpstream(address, int(port))


@attrs.frozen
class Forward:
    """A query to send upstream as it came (`query`), and what its answer must carry."""

    query: bytes
    id: int
    question: Question

    @classmethod
    def of(cls, query: bytes, request: DNSRecord) -> Forward:
        (asked,) = request.questions
        return cls(query, request.header.id, _question(asked))


def reply_matches(forward: Forward, datagram: bytes) -> bool:
    """Whether `datagram` is the upstream's answer to `forward`. Never raises."""
    if len(datagram) > MAX_REPLY or len(datagram) < 12:
        return False
    if int.from_bytes(datagram[:2], "big") != forward.id:
        return False  # the cheap test first: most strays fail it
    try:
        reply = DNSRecord.parse(datagram)
    except Exception:  # dnslib fails in more ways than DNSError
        return False
    header = reply.header
    return (header.qr == 1 and header.opcode == 0 and len(reply.questions) == 1
            and _question(reply.questions[0]) == forward.question)


def failure_reply(forward: Forward) -> bytes | None:
    """SERVFAIL for `forward` (the upstream did not answer in time, or refused the
    connection), so the client stops waiting; None if it cannot be built."""
    try:
        reply = DNSRecord.parse(forward.query).reply(ra=1, aa=0)
        reply.rr, reply.auth, reply.ar = [], [], []
        reply.header.rcode = RCODE.SERVFAIL
        packed: bytes = reply.pack()
        return packed
    except Exception:
        return None


def _question(asked: DNSQuestion) -> Question:
    labels = tuple(bytes(label).lower() for label in asked.qname.label)
    return labels, int(asked.qtype), int(asked.qclass)
