"""Which member a packet goes to, sans-IO: the pump's only decision per packet.

A packet read from member M's TUN is forwarded only when it is IPv4, its source is M's
own address (a member cannot speak as another, or as an outsider) and its destination
is a member's address: one on this host (a name), or one another provider hosts (a
`RemotePeer`, the link peer to send it to); everything else is dropped and counted. Addresses are
compared as the packet's 4 raw bytes, a dict lookup each: no parsing beyond offsets.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable, Mapping
from ipaddress import IPv4Address

import attrs


class PacketDrop(enum.Enum):
    TOO_SHORT = "too short for an IPv4 header"
    NOT_IPV4 = "not IPv4"
    SPOOFED_SOURCE = "source is not the sender's address"
    UNKNOWN_DESTINATION = "destination is no member"
    NOT_A_MEMBER = "sender is no member"
    WRITE_FAILED = "the destination's TUN refused it"


@attrs.frozen
class RemotePeer:
    """The destination is hosted by the provider at the other end of this link peer."""

    peer: str


class PacketRouter:
    """Members of one ensemble by address. `header` is what precedes each IP packet
    (the virtio-net header with TUN offload)."""

    def __init__(self, header: int = 0) -> None:
        self.header = header
        self._by_address: dict[bytes, str] = {}
        self._address_of: dict[str, bytes] = {}
        self._remote: dict[bytes, RemotePeer] = {}
        self.dropped: Counter[PacketDrop] = Counter()
        self.forwarded = 0
        self.sent_remote = 0

    def add(self, member: str, address: IPv4Address) -> None:
        packed = address.packed
        holder = self._by_address.get(packed)
        if holder is not None and holder != member:
            raise ValueError(f"{address} is already {holder}'s")
        self.remove(member)
        self._by_address[packed] = member
        self._address_of[member] = packed

    def remove(self, member: str) -> None:
        packed = self._address_of.pop(member, None)
        if packed is not None:
            del self._by_address[packed]

    def set_remotes(self, peers: Mapping[str, Iterable[IPv4Address]]) -> None:
        """Replace the remote routes whole: link peer -> the addresses it hosts. A
        local member's address stays local (after a redeploy moved it here)."""
        table: dict[bytes, RemotePeer] = {}
        for peer, addresses in peers.items():
            target = RemotePeer(peer)
            for address in addresses:
                table[address.packed] = target
        self._remote = table

    def local_member(self, destination: bytes) -> str | None:
        """The local member holding the 4-byte address `destination`, if any."""
        return self._by_address.get(destination)

    def members(self) -> dict[str, IPv4Address]:
        return {m: IPv4Address(a) for m, a in self._address_of.items()}

    def route(self, sender: str, packet: bytes) -> str | RemotePeer | PacketDrop:
        """The member `packet` (read from `sender`'s TUN) goes to, or why it does not."""
        at = self.header
        if len(packet) < at + 20:
            return self._drop(PacketDrop.TOO_SHORT)
        if packet[at] >> 4 != 4:
            return self._drop(PacketDrop.NOT_IPV4)
        own = self._address_of.get(sender)
        if own is None:
            return self._drop(PacketDrop.NOT_A_MEMBER)
        if packet[at + 12:at + 16] != own:
            return self._drop(PacketDrop.SPOOFED_SOURCE)
        destination = packet[at + 16:at + 20]
        target = self._by_address.get(destination)
        if target is None:
            remote = self._remote.get(destination)
            if remote is None:
                return self._drop(PacketDrop.UNKNOWN_DESTINATION)
            self.sent_remote += 1
            return remote
        self.forwarded += 1
        return target

    def _drop(self, reason: PacketDrop) -> PacketDrop:
        self.dropped[reason] += 1
        return reason
