"""The mesh's messages inside a link frame (sans-IO): one kind byte, then fields.

::

    UNICAST  0x01 | payload
    PUBLISH  0x02 | hops_left (u8) | id_len (u8) | message_id | origin_len (u8) | origin
                  | topic_len (u16 BE) | topic | payload
    PING     0x03 | nonce (8)
    PONG     0x04 | nonce (8)
    PEERS    0x05 | count (u16 BE) | count * (peer_len (u16 BE) | peer | addr_len (u16 BE) | addr)
    TUNNEL   0x06 | payload      (ensemble network packets: never dispatched to actors)
    IHAVE    0x07 | count (u16 BE) | count * (id_len (u8) | message_id)
    GRAFT    0x08 | count (u16 BE) | count * (id_len (u8) | message_id)
    PRUNE    0x09 | origin_len (u8) | origin
    DIRECT   0x0a | the PEERS body: this link is for unicast only, not an overlay link;
                    the entries are peers to join the overlay through instead

IHAVE and GRAFT carry 1..`MAX_IDS` ids (an empty or longer list is malformed): a
frame's decoding allocates at most that many ids whatever its count field says.
Strings are UTF-8. `decode` raises `MalformedMeshFrame` naming what is wrong.
"""

from __future__ import annotations

import enum
import struct

import attrs


class MalformedMeshFrame(ValueError):
    """A link frame that is not a mesh message."""


class Kind(enum.IntEnum):
    UNICAST = 0x01
    PUBLISH = 0x02
    PING = 0x03
    PONG = 0x04
    PEERS = 0x05
    TUNNEL = 0x06
    IHAVE = 0x07
    GRAFT = 0x08
    PRUNE = 0x09
    DIRECT = 0x0A


@attrs.frozen
class Unicast:
    payload: bytes


@attrs.frozen
class Publish:
    message_id: bytes
    topic: str
    hops_left: int
    payload: bytes
    origin: bytes = b""
    """Names the publisher's dissemination tree (`dms.net._tree`): a short hash of
    its peer id, copied by every relay; unauthenticated, it only shapes the tree."""


@attrs.frozen
class Ping:
    nonce: bytes


@attrs.frozen
class Pong:
    nonce: bytes


@attrs.frozen
class Tunnel:
    """A frame of the ensemble network's pumps (`dms.network.encode_batch`): it skips
    the actor path, the link's authentication is what names its sender."""

    payload: bytes


@attrs.frozen
class PeerEntry:
    peer: str
    address: str


@attrs.frozen
class PeerList:
    entries: tuple[PeerEntry, ...]


@attrs.frozen
class IHave:
    """Lazy push (Plumtree): the sender has these publications, and sends them on a
    `Graft`."""

    message_ids: tuple[bytes, ...]


@attrs.frozen
class Graft:
    """Send me these publications, and push me new ones eagerly from now on."""

    message_ids: tuple[bytes, ...]


@attrs.frozen
class Prune:
    """A duplicate came this way: announce `origin`'s publications to me lazily."""

    origin: bytes = b""


@attrs.frozen
class DirectOnly:
    """This link carries unicast only (the sender is at its degree cap, or dialed
    just to send); `entries` are peers to join the overlay through instead."""

    entries: tuple[PeerEntry, ...]


MeshMessage = (Unicast | Publish | Ping | Pong | PeerList | Tunnel | IHave | Graft | Prune
               | DirectOnly)

MAX_MESSAGE_ID = 255
MAX_ORIGIN = 255
MAX_IDS = 1024
"""Most message ids in one IHAVE or GRAFT frame."""
MAX_HOPS = 255
NONCE_BYTES = 8
_U16 = struct.Struct(">H")


def _short_string(value: str, what: str) -> bytes:
    data = value.encode()
    if len(data) > 0xFFFF:
        raise ValueError(f"{what} is {len(data)} bytes, at most 65535")
    return _U16.pack(len(data)) + data


def _entries(kind: Kind, entries: tuple[PeerEntry, ...]) -> bytes:
    parts = [bytes([kind]), _U16.pack(len(entries))]
    for entry in entries:
        parts.append(_short_string(entry.peer, "peer id"))
        parts.append(_short_string(entry.address, "address"))
    return b"".join(parts)


def _origin(origin: bytes) -> bytes:
    if len(origin) > MAX_ORIGIN:
        raise ValueError(f"origin must be 0..{MAX_ORIGIN} bytes, got {len(origin)}")
    return bytes([len(origin)]) + origin


def _ids(kind: Kind, message_ids: tuple[bytes, ...]) -> bytes:
    if not 0 < len(message_ids) <= MAX_IDS:
        raise ValueError(f"{kind.name} carries 1..{MAX_IDS} message ids, got {len(message_ids)}")
    parts = [bytes([kind]), _U16.pack(len(message_ids))]
    for message_id in message_ids:
        if not 0 < len(message_id) <= MAX_MESSAGE_ID:
            raise ValueError(f"message_id must be 1..{MAX_MESSAGE_ID} bytes")
        parts.append(bytes([len(message_id)]) + message_id)
    return b"".join(parts)


def encode(message: MeshMessage) -> bytes:
    match message:
        case Unicast(payload):
            return bytes([Kind.UNICAST]) + payload
        case Publish(message_id, topic, hops_left, payload, origin):
            if not 0 < len(message_id) <= MAX_MESSAGE_ID:
                raise ValueError(f"message_id must be 1..{MAX_MESSAGE_ID} bytes")
            if not 0 <= hops_left <= MAX_HOPS:
                raise ValueError(f"hops_left must be 0..{MAX_HOPS}, got {hops_left}")
            return (
                bytes([Kind.PUBLISH, hops_left, len(message_id)])
                + message_id
                + _origin(origin)
                + _short_string(topic, "topic")
                + payload
            )
        case Tunnel(payload):
            return bytes([Kind.TUNNEL]) + payload
        case Ping(nonce):
            return bytes([Kind.PING]) + nonce
        case Pong(nonce):
            return bytes([Kind.PONG]) + nonce
        case PeerList(entries):
            return _entries(Kind.PEERS, entries)
        case DirectOnly(entries):
            return _entries(Kind.DIRECT, entries)
        case IHave(message_ids):
            return _ids(Kind.IHAVE, message_ids)
        case Graft(message_ids):
            return _ids(Kind.GRAFT, message_ids)
        case Prune(origin):
            return bytes([Kind.PRUNE]) + _origin(origin)
    raise TypeError(f"not a mesh message: {message!r}")


def with_hops_left(frame: bytes, hops_left: int) -> bytes:
    """A PUBLISH frame as received, with another hop count: what a relay sends on,
    without decoding and encoding it again (the count is the frame's second byte)."""
    if frame[:1] != bytes((Kind.PUBLISH,)) or not 0 <= hops_left <= MAX_HOPS:
        raise ValueError(f"not a PUBLISH frame, or hops_left {hops_left} not 0..{MAX_HOPS}")
    return b"".join((frame[:1], bytes((hops_left,)), frame[2:]))


class _Reader:
    def __init__(self, data: bytes, kind: str) -> None:
        self.data = data
        self.offset = 1
        self.kind = kind

    def take(self, size: int, what: str) -> bytes:
        end = self.offset + size
        if end > len(self.data):
            raise MalformedMeshFrame(f"{self.kind} frame truncated in {what}")
        chunk = self.data[self.offset : end]
        self.offset = end
        return chunk

    def u8(self, what: str) -> int:
        return self.take(1, what)[0]

    def u16(self, what: str) -> int:
        value: int = _U16.unpack(self.take(2, what))[0]
        return value

    def string(self, what: str) -> str:
        raw = self.take(self.u16(what), what)
        try:
            return raw.decode()
        except UnicodeDecodeError:
            raise MalformedMeshFrame(f"{self.kind} frame: {what} is not UTF-8") from None

    def rest(self) -> bytes:
        return self.data[self.offset :]

    def end(self) -> None:
        if self.offset != len(self.data):
            raise MalformedMeshFrame(f"{self.kind} frame has trailing bytes")


_KINDS: dict[int, Kind] = {kind.value: kind for kind in Kind}


def _publish(data: bytes) -> Publish:
    """A PUBLISH frame, read with plain slices: every publication a node relays or
    receives goes through here."""
    size = len(data)
    if size < 3:
        raise MalformedMeshFrame("PUBLISH frame truncated in "
                                 + ("hops_left" if size < 2 else "message_id length"))
    hops_left, id_len = data[1], data[2]
    if not id_len:
        raise MalformedMeshFrame("PUBLISH frame has an empty message_id")
    at = 3 + id_len
    if at >= size:  # the id, and the origin length after it
        raise MalformedMeshFrame("PUBLISH frame truncated in message_id")
    message_id = data[3:at]
    origin_end = at + 1 + data[at]
    if origin_end + 2 > size:
        raise MalformedMeshFrame("PUBLISH frame truncated in origin")
    origin = data[at + 1 : origin_end]
    topic_end = origin_end + 2 + (data[origin_end] << 8 | data[origin_end + 1])
    if topic_end > size:
        raise MalformedMeshFrame("PUBLISH frame truncated in topic")
    try:
        topic = data[origin_end + 2 : topic_end].decode()
    except UnicodeDecodeError:
        raise MalformedMeshFrame("PUBLISH frame: topic is not UTF-8") from None
    return Publish(message_id, topic, hops_left, data[topic_end:], origin)


def _id_list(data: bytes, kind: Kind) -> tuple[bytes, ...]:
    """The ids of an IHAVE or GRAFT frame (1..`MAX_IDS` of them)."""
    size = len(data)
    if size < 3:
        raise MalformedMeshFrame(f"{kind.name} frame truncated in count")
    count = data[1] << 8 | data[2]
    if not 0 < count <= MAX_IDS:
        raise MalformedMeshFrame(
            f"{kind.name} frame carries {count} message ids, 1..{MAX_IDS} allowed")
    ids = []
    at = 3
    for _ in range(count):
        if at >= size:
            raise MalformedMeshFrame(f"{kind.name} frame truncated in message_id length")
        end = at + 1 + data[at]
        if end == at + 1:
            raise MalformedMeshFrame(f"{kind.name} frame has an empty message_id")
        if end > size:
            raise MalformedMeshFrame(f"{kind.name} frame truncated in message_id")
        ids.append(data[at + 1 : end])
        at = end
    if at != size:
        raise MalformedMeshFrame(f"{kind.name} frame has trailing bytes")
    return tuple(ids)


def decode(data: bytes) -> MeshMessage:
    if not data:
        raise MalformedMeshFrame("empty frame")
    kind = _KINDS.get(data[0])
    if kind is None:
        raise MalformedMeshFrame(f"unknown message kind 0x{data[0]:02x}")
    match kind:
        case Kind.PUBLISH:
            return _publish(data)
        case Kind.UNICAST:
            return Unicast(data[1:])
        case Kind.TUNNEL:
            return Tunnel(data[1:])
        case Kind.IHAVE:
            return IHave(_id_list(data, kind))
        case Kind.GRAFT:
            return Graft(_id_list(data, kind))
    reader = _Reader(data, kind.name)
    match kind:
        case Kind.PING | Kind.PONG:
            nonce = reader.take(NONCE_BYTES, "nonce")
            reader.end()
            return Ping(nonce) if kind is Kind.PING else Pong(nonce)
        case Kind.PEERS | Kind.DIRECT:
            count = reader.u16("count")
            entries = tuple(
                PeerEntry(reader.string("peer id"), reader.string("address")) for _ in range(count)
            )
            reader.end()
            return PeerList(entries) if kind is Kind.PEERS else DirectOnly(entries)
        case Kind.PRUNE:
            origin = reader.take(reader.u8("origin length"), "origin")
            reader.end()
            return Prune(origin)
    raise AssertionError(f"unhandled kind {kind!r}")  # pragma: no cover
