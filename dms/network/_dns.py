"""The `.internal` resolver of one ensemble, sans-IO: query bytes in, reply bytes out.

What it answers (spec/network.md has the table): A for `<dns_name>.internal` and
`<allocation>.internal`; an empty NOERROR answer for any other type of a known name
(AAAA above all: there is no IPv6 on the private network, and NXDOMAIN there would make
resolvers give up on the A record too); NXDOMAIN for unknown names under `.internal`;
REFUSED for every other name, unless asked to forward (`answer(..., forwarding=True)`):
then such a query comes back as a `Forward` for the server to relay upstream
(`_dns_forward.py`). Malformed input, answers
posing as queries and oversized packets get no reply at all: nothing a member sends can
make it raise, and it never reflects more than it was sent plus one record.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from ipaddress import IPv4Address

import attrs
from dnslib import QTYPE, RCODE, RR, A, DNSRecord

from dms.network._dns_forward import Forward
from dms.network._errors import InvalidPlan
from dms.network._plan import AddressPlan

ZONE = "internal"
TTL = 5  # short: records follow redeployments
MAX_QUERY = 1232  # the EDNS-safe datagram size; a query is far smaller
_OPCODE_QUERY = 0
_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


def _check_name(field: str, name: str) -> str:
    lowered = name.lower().removesuffix(".")
    labels = lowered.split(".")
    if len(lowered) > 253 - len(ZONE) - 1 or not all(_LABEL.fullmatch(label) for label in labels):
        raise InvalidPlan(field, f"{name!r} is not a DNS name (labels of letters, digits, '-')")
    if labels[-1] == ZONE:
        raise InvalidPlan(field, f"{name!r} must not end in .{ZONE}: the zone is added")
    return lowered


@attrs.frozen
class DnsRecords:
    """Name (lowercase, without `.internal`) -> address, for one ensemble. Build it
    with `records_for`; a resolver swaps whole tables, never edits one."""

    names: Mapping[str, IPv4Address] = attrs.field(factory=dict)


def records_for(plan: AddressPlan, dns_names: Mapping[str, str | None] | None = None,
                ) -> DnsRecords:
    """Every allocation under its own name and, when it has one, its `dns_name`.
    A `dns_name` of one allocation that is another's name, or two allocations sharing a
    `dns_name`, is refused naming it: one name, one address."""
    names: dict[str, IPv4Address] = {}
    owner: dict[str, str] = {}
    for allocation, address in plan.addresses:
        name = _check_name(f"addresses.{allocation}", allocation)
        names[name], owner[name] = address, allocation
    for allocation, dns_name in sorted((dns_names or {}).items()):
        if dns_name is None:
            continue
        field = f"dns_names.{allocation}"
        if allocation not in plan.as_dict():
            raise InvalidPlan(field, f"no allocation {allocation!r} in the plan")
        name = _check_name(field, dns_name)
        if name in owner and owner[name] != allocation:
            raise InvalidPlan(field, f"{dns_name!r} already names {owner[name]!r}")
        names[name], owner[name] = plan.address_of(allocation), allocation
    return DnsRecords(names)


class Resolver:
    """Answers for one ensemble's records; `replace` swaps them in one assignment, so
    a query sees the old table or the new one, never half of each."""

    def __init__(self, records: DnsRecords | None = None) -> None:
        self._records = records or DnsRecords()
        self.dropped = 0  # malformed, oversized or not queries: no reply

    @property
    def records(self) -> DnsRecords:
        return self._records

    def replace(self, records: DnsRecords) -> None:
        self._records = records

    def answer(self, query: bytes, *, forwarding: bool = False) -> bytes | Forward | None:
        """The reply to `query`, or None when it deserves none. Never raises. With
        `forwarding`, a standard query for one name outside `.internal` is a `Forward`
        instead of REFUSED."""
        if len(query) > MAX_QUERY:
            self.dropped += 1
            return None
        if _question_is_compressed(query):
            self.dropped += 1  # a question never needs a pointer; dnslib follows any
            return None
        try:
            request = DNSRecord.parse(query)
        except Exception:  # DNSError, and the parser has more ways to fail than it says
            self.dropped += 1
            return None
        header = request.header
        if header.qr:
            self.dropped += 1  # an answer sent to us: replying could start a loop
            return None
        try:
            if forwarding and _outside_zone(request):
                return Forward.of(query, request)
            packed: bytes = self._reply(request).pack()
            return packed
        except Exception:
            self.dropped += 1
            return None

    def _reply(self, request: DNSRecord) -> DNSRecord:
        reply = request.reply(ra=0, aa=0)
        reply.rr, reply.auth, reply.ar = [], [], []
        if request.header.opcode != _OPCODE_QUERY:
            reply.header.rcode = RCODE.NOTIMP
            return reply
        if len(request.questions) != 1:
            reply.header.rcode = RCODE.FORMERR
            return reply
        question = request.questions[0]
        labels = [bytes(label).lower() for label in question.qname.label]
        if not labels or labels[-1] != ZONE.encode():
            reply.header.rcode = RCODE.REFUSED
            return reply
        reply.header.aa = 1
        if len(labels) == 1:
            return reply  # the zone itself exists and has no address
        try:
            name = b".".join(labels[:-1]).decode("ascii")
        except UnicodeDecodeError:
            name = ""
        address = self._records.names.get(name)
        if address is None:
            reply.header.rcode = RCODE.NXDOMAIN
        elif question.qtype in (QTYPE.A, QTYPE.ANY):
            reply.add_answer(RR(question.qname, QTYPE.A, rdata=A(str(address)), ttl=TTL))
        return reply


def _outside_zone(request: DNSRecord) -> bool:
    """A standard query with one question, for a name not under `.internal`."""
    if request.header.opcode != _OPCODE_QUERY or len(request.questions) != 1:
        return False
    labels = request.questions[0].qname.label
    return not labels or bytes(labels[-1]).lower() != ZONE.encode()


def _question_is_compressed(query: bytes) -> bool:
    """Whether the first question's name uses a compression pointer (or is cut short)."""
    at = 12
    while at < len(query):
        length = query[at]
        if length == 0:
            return False
        if length & 0xC0:
            return True
        at += 1 + length
    return len(query) > 12
