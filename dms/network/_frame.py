"""The frame two pumps exchange over a link, sans-IO: a batch of IP packets of one
ensemble, and the per-frame membership check on the receiving side.

The link below is already authenticated and encrypted (the node handshake and session
crypto, spec/transport.md), so its peer is known and nothing here signs or encrypts:
a frame costs one table lookup for its ensemble and a 4-byte comparison per packet.

    u8   version (1)
    u8   flags (bit 0: each packet starts with a 10-byte virtio-net header)
    u16  packet count (1..MAX_PACKETS)
    16   ensemble tag: sha256(ensemble id)[:16]
    then per packet: u32 length (big-endian), the packet
"""

from __future__ import annotations

import hashlib
import struct
from collections import Counter
from collections.abc import Iterable, Mapping
from ipaddress import IPv4Address

import attrs

from dms.network._errors import InvalidFrame
from dms.network._route import PacketDrop
from dms.network._tun import VNET_HEADER

VERSION = 1
FLAG_VNET = 0x01
MAX_PACKETS = 512
MAX_BATCH_BYTES = 1024 * 1024  # well under the link's 4 MiB frame
MAX_PACKET = 65535 + VNET_HEADER
_HEAD = struct.Struct("!BBH16s")
_LENGTH = struct.Struct("!I")


def ensemble_tag(ensemble: str) -> bytes:
    return hashlib.sha256(ensemble.encode("utf-8", "surrogatepass")).digest()[:16]


@attrs.frozen
class PacketBatch:
    tag: bytes
    vnet: bool
    packets: tuple[bytes, ...]


def encode_batch(tag: bytes, packets: Iterable[bytes], *, vnet: bool = False) -> bytes:
    """One frame for `packets` (1..MAX_PACKETS, each a whole packet)."""
    listed = list(packets)
    if not 1 <= len(listed) <= MAX_PACKETS:
        raise InvalidFrame("count", f"{len(listed)} packets; a frame holds 1 to {MAX_PACKETS}")
    if len(tag) != 16:
        raise InvalidFrame("tag", f"{len(tag)} bytes, not 16")
    parts = [_HEAD.pack(VERSION, FLAG_VNET if vnet else 0, len(listed), tag)]
    for packet in listed:
        if len(packet) > MAX_PACKET:
            raise InvalidFrame("packet", f"{len(packet)} bytes, more than {MAX_PACKET}")
        parts.append(_LENGTH.pack(len(packet)))
        parts.append(packet)
    return b"".join(parts)


def decode_batch(frame: bytes) -> PacketBatch:
    """The batch `frame` holds, or InvalidFrame naming the first wrong part. Lengths are
    checked against what is left before anything is sliced, so no length can make it
    read past the frame or allocate more than the frame's size."""
    if len(frame) > MAX_BATCH_BYTES + _HEAD.size + MAX_PACKETS * _LENGTH.size:
        raise InvalidFrame("size", f"{len(frame)} bytes, more than a batch may be")
    if len(frame) < _HEAD.size:
        raise InvalidFrame("header", f"{len(frame)} bytes, the header alone is {_HEAD.size}")
    version, flags, count, tag = _HEAD.unpack_from(frame)
    if version != VERSION:
        raise InvalidFrame("version", f"{version}, this node speaks {VERSION}")
    if flags & ~FLAG_VNET:
        raise InvalidFrame("flags", f"unknown bits {flags & ~FLAG_VNET:#04x}")
    if not 1 <= count <= MAX_PACKETS:
        raise InvalidFrame("count", f"{count}; a frame holds 1 to {MAX_PACKETS}")
    packets = []
    at = _HEAD.size
    view = memoryview(frame)
    for index in range(count):
        if at + _LENGTH.size > len(frame):
            raise InvalidFrame(f"packet {index}", "length cut off")
        (length,) = _LENGTH.unpack_from(frame, at)
        at += _LENGTH.size
        if length > MAX_PACKET or at + length > len(frame):
            raise InvalidFrame(f"packet {index}", f"length {length} runs past the frame")
        packets.append(bytes(view[at:at + length]))
        at += length
    if at != len(frame):
        raise InvalidFrame("size", f"{len(frame) - at} bytes after the last packet")
    return PacketBatch(tag, bool(flags & FLAG_VNET), tuple(packets))


class Batcher:
    """Gathers the packets a pump drained in one wakeup into frames per destination
    peer: one frame (one encryption, one send) per peer per wakeup, split only when a
    frame would exceed MAX_PACKETS or MAX_BATCH_BYTES."""

    def __init__(self, tag: bytes, *, vnet: bool = False) -> None:
        self.tag = tag
        self.vnet = vnet
        self._pending: dict[str, list[bytes]] = {}
        self._sizes: Counter[str] = Counter()
        self._ready: list[tuple[str, bytes]] = []

    def add(self, peer: str, packet: bytes) -> None:
        pending = self._pending.setdefault(peer, [])
        if pending and (len(pending) >= MAX_PACKETS
                        or self._sizes[peer] + len(packet) > MAX_BATCH_BYTES):
            self._ready.append((peer, encode_batch(self.tag, pending, vnet=self.vnet)))
            pending.clear()
            self._sizes[peer] = 0
        pending.append(packet)
        self._sizes[peer] += len(packet)

    def flush(self) -> list[tuple[str, bytes]]:
        """(peer, frame) for everything added since the last flush, in order."""
        ready = self._ready
        for peer, pending in self._pending.items():
            if pending:
                ready.append((peer, encode_batch(self.tag, pending, vnet=self.vnet)))
        self._ready, self._pending, self._sizes = [], {}, Counter()
        return ready


class Membership:
    """Who may inject packets into this host's allocations of one ensemble: granted
    at allocate time as peer -> the ensemble addresses that peer hosts. A frame is
    admitted per packet: its link peer must be granted, the packet's source one of that
    peer's addresses, its destination one hosted here."""

    def __init__(self, ensemble: str, local: Iterable[IPv4Address], *, vnet: bool = False) -> None:
        self.tag = ensemble_tag(ensemble)
        self.vnet = vnet
        self._offset = VNET_HEADER if vnet else 0
        self._local = {a.packed for a in local}
        self._peers: dict[str, frozenset[bytes]] = {}
        self.dropped: Counter[PacketDrop | str] = Counter()

    def grant(self, peers: Mapping[str, Iterable[IPv4Address]]) -> None:
        """Replace the grants whole (they follow redeployments, like DNS records)."""
        self._peers = {peer: frozenset(a.packed for a in addresses)
                       for peer, addresses in peers.items()}

    def set_local(self, local: Iterable[IPv4Address]) -> None:
        self._local = {a.packed for a in local}

    def admit(self, peer: str, frame: bytes) -> list[bytes]:
        """The packets of `frame` (from link peer `peer`) to write into local TUNs;
        everything else dropped and counted. Never raises on what the peer sent."""
        sources = self._peers.get(peer)
        if sources is None:
            self.dropped["not a member"] += 1
            return []
        try:
            batch = decode_batch(frame)
        except InvalidFrame:
            self.dropped["malformed frame"] += 1
            return []
        if batch.tag != self.tag or batch.vnet != self.vnet:
            self.dropped["other ensemble or header"] += 1
            return []
        at = self._offset
        admitted = []
        for packet in batch.packets:
            if len(packet) < at + 20 or packet[at] >> 4 != 4:
                self.dropped[PacketDrop.NOT_IPV4] += 1
            elif packet[at + 12:at + 16] not in sources:
                self.dropped[PacketDrop.SPOOFED_SOURCE] += 1
            elif packet[at + 16:at + 20] not in self._local:
                self.dropped[PacketDrop.UNKNOWN_DESTINATION] += 1
            else:
                admitted.append(packet)
        return admitted
