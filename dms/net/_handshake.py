"""The secure handshake as a sans-IO state machine.

Three messages, dialer (initiator) first::

    HELLO   i -> r   0x01 | eph_i (32) | node_i (32) | addr_len (u16 BE) | addr_i | [suites_i]
    REPLY   r -> i   0x02 | eph_r (32) | node_r (32) | addr_len (u16 BE) | addr_r | [suites_r]
                     | sig_r (64)
    FINISH  i -> r   0x03 | sig_i (64)

`eph_*` are fresh X25519 public keys, `node_*` the Ed25519 node keys (the peer identity),
`addr_*` the listen address each side announces (empty: none), `suites_*` the session
ciphers each side offers (`dms.net._suites`; absent: the mandatory one only, today's
bytes). The link uses AEGIS-256 iff both offered it. The transcript hash is
BLAKE2b-256 over the protocol label and both messages (REPLY without its signature), so
each signature binds both ephemeral keys, both identities, both addresses and both
offers (stripping an offer breaks a signature: no downgrade); the role
prefix in what is signed stops a signature being reflected back to its author. Session
keys are BLAKE2b-256 keyed with the X25519 shared secret over a direction label and the
transcript (and the suite's name, for any suite but the original), one key per
direction, so a frame can never be replayed back to its sender.

The classes only turn bytes into bytes and a `SessionKeys`; the transports move the bytes.
"""

from __future__ import annotations

import enum
import struct

import attrs
import nacl.bindings
import nacl.encoding
import nacl.exceptions
import nacl.hash
import nacl.public
import nacl.signing

from dms.net._errors import HandshakeFailed, PeerMismatch
from dms.net._suites import XSALSA20_POLY1305, choose, encode_offer, parse_offer, supported_suites
from ucan.did import did_from_public_key

PROTOCOL_LABEL = b"dms-net/1"
HELLO = 0x01
REPLY = 0x02
FINISH = 0x03
_KEY = 32
_SIG = 64
_MAX_ADDRESS = 1024
_TRANSCRIPT_PERSON = b"dms-net/1 hs"
_KEY_PERSON = b"dms-net/1 key"
_INITIATOR_SIGNS = PROTOCOL_LABEL + b" initiator"
_RESPONDER_SIGNS = PROTOCOL_LABEL + b" responder"


@attrs.frozen
class SessionKeys:
    """What a completed handshake yields: directional keys and the proven peer."""

    send_key: bytes
    receive_key: bytes
    remote_peer: str
    remote_address: str | None
    transcript_hash: bytes
    suite: str = XSALSA20_POLY1305
    """The session cipher both sides agreed on (`dms.net._suites`)."""


class _Step(enum.Enum):
    START = "start"
    AWAIT_REPLY = "await reply"
    AWAIT_HELLO = "await hello"
    AWAIT_FINISH = "await finish"
    DONE = "done"


@attrs.frozen
class _Greeting:
    """The part of HELLO and REPLY both messages share."""

    ephemeral: bytes
    node: bytes
    address: str
    suites: tuple[str, ...]

    def encode(self, kind: int) -> bytes:
        address = self.address.encode()
        return (
            bytes([kind])
            + self.ephemeral
            + self.node
            + struct.pack(">H", len(address))
            + address
            + encode_offer(self.suites)
        )


def _parse_greeting(data: bytes, kind: int, name: str, trailer: int) -> _Greeting:
    """Parse a HELLO/REPLY but its last `trailer` bytes (REPLY's signature)."""
    header = 1 + 2 * _KEY + 2
    if len(data) < header or data[0] != kind:
        raise HandshakeFailed(f"malformed {name}: {len(data)} bytes, type {data[:1].hex()}")
    (length,) = struct.unpack_from(">H", data, 1 + 2 * _KEY)
    end = header + length
    if length > _MAX_ADDRESS or len(data) < end:
        raise HandshakeFailed(f"malformed {name}: address length {length}")
    try:
        address = data[header:end].decode()
    except UnicodeDecodeError:
        raise HandshakeFailed(f"malformed {name}: address is not UTF-8") from None
    if len(data) - end < trailer:
        raise HandshakeFailed(f"malformed {name}: {len(data) - end} bytes after the address")
    suites = parse_offer(data[end : len(data) - trailer], name)
    ephemeral, node = data[1 : 1 + _KEY], data[1 + _KEY : 1 + 2 * _KEY]
    return _Greeting(ephemeral, node, address, suites)


def _transcript_hash(hello: bytes, reply_body: bytes) -> bytes:
    data = (
        PROTOCOL_LABEL
        + struct.pack(">I", len(hello))
        + hello
        + struct.pack(">I", len(reply_body))
        + reply_body
    )
    return nacl.hash.blake2b(
        data, digest_size=32, person=_TRANSCRIPT_PERSON, encoder=nacl.encoding.RawEncoder
    )


def _session_key(shared: bytes, direction: bytes, transcript: bytes, suite: str) -> bytes:
    """One direction's key. A suite other than the original is named in what is hashed
    (key separation per suite); the original keeps its derivation, so a node that
    offers nothing new derives today's keys."""
    bound = b"" if suite == XSALSA20_POLY1305 else suite.encode()
    return nacl.hash.blake2b(
        direction + transcript + bound,
        digest_size=32,
        key=shared,
        person=_KEY_PERSON,
        encoder=nacl.encoding.RawEncoder,
    )


def _shared_secret(ephemeral: nacl.public.PrivateKey, remote_ephemeral: bytes) -> bytes:
    try:
        shared = nacl.bindings.crypto_scalarmult(bytes(ephemeral), remote_ephemeral)
    except RuntimeError:  # libsodium refuses low-order points outright: PyNaCl's own error
        raise HandshakeFailed("remote ephemeral key is a low-order point") from None
    if shared == bytes(32):
        # A low-order remote point gives an all-zero secret anyone can compute.
        raise HandshakeFailed("remote ephemeral key is a low-order point")
    return shared


def _verify(node: bytes, prefix: bytes, transcript: bytes, signature: bytes, who: str) -> None:
    try:
        nacl.signing.VerifyKey(node).verify(prefix + transcript, signature)
    except (nacl.exceptions.BadSignatureError, ValueError) as exc:
        raise HandshakeFailed(f"{who}'s transcript signature is invalid: {exc}") from None


def _address_or_none(address: str) -> str | None:
    return address or None


class InitiatorHandshake:
    """The dialer's side: `start()` -> HELLO, `receive_reply(REPLY)` -> (FINISH, keys).

    `expect_peer`, when given, is checked against the proven key before FINISH is sent,
    so a dialer never authenticates itself to the wrong peer (`PeerMismatch`).
    """

    def __init__(
        self,
        key: nacl.signing.SigningKey,
        listen_address: str | None = None,
        *,
        expect_peer: str | None = None,
        dialed_address: str = "",
        ephemeral: nacl.public.PrivateKey | None = None,
        suites: tuple[str, ...] | None = None,
    ) -> None:
        self._key = key
        self._ephemeral = ephemeral or nacl.public.PrivateKey.generate()
        self._greeting = _Greeting(
            bytes(self._ephemeral.public_key),
            bytes(key.verify_key),
            listen_address or "",
            supported_suites() if suites is None else suites,
        )
        self._expect_peer = expect_peer
        self._dialed_address = dialed_address
        self._hello = b""
        self._step = _Step.START

    def start(self) -> bytes:
        """The HELLO message to send first."""
        self._require(_Step.START, "start")
        self._hello = self._greeting.encode(HELLO)
        self._step = _Step.AWAIT_REPLY
        return self._hello

    def receive_reply(self, data: bytes) -> tuple[bytes, SessionKeys]:
        """Verify REPLY; return the FINISH message to send and the session keys."""
        self._require(_Step.AWAIT_REPLY, "receive_reply")
        self._step = _Step.DONE  # any failure below ends the handshake
        remote = _parse_greeting(data, REPLY, "REPLY", _SIG)
        reply_body = data[: len(data) - _SIG]
        transcript = _transcript_hash(self._hello, reply_body)
        remote_peer = did_from_public_key(remote.node)
        signature = data[len(data) - _SIG :]
        _verify(remote.node, _RESPONDER_SIGNS, transcript, signature, f"responder {remote_peer}")
        if self._expect_peer is not None and remote_peer != self._expect_peer:
            raise PeerMismatch(self._dialed_address, self._expect_peer, remote_peer)
        shared = _shared_secret(self._ephemeral, remote.ephemeral)
        finish = bytes([FINISH]) + self._key.sign(_INITIATOR_SIGNS + transcript).signature
        suite = choose(self._greeting.suites, remote.suites)
        keys = SessionKeys(
            send_key=_session_key(shared, b"i2r", transcript, suite),
            receive_key=_session_key(shared, b"r2i", transcript, suite),
            remote_peer=remote_peer,
            remote_address=_address_or_none(remote.address),
            transcript_hash=transcript,
            suite=suite,
        )
        return finish, keys

    def _require(self, step: _Step, call: str) -> None:
        if self._step is not step:
            raise HandshakeFailed(f"{call}() called in state {self._step.value!r}")


class ResponderHandshake:
    """The listener's side: `receive_hello(HELLO)` -> REPLY, `receive_finish(FINISH)` -> keys."""

    def __init__(
        self,
        key: nacl.signing.SigningKey,
        listen_address: str | None = None,
        *,
        ephemeral: nacl.public.PrivateKey | None = None,
        suites: tuple[str, ...] | None = None,
    ) -> None:
        self._key = key
        self._ephemeral = ephemeral or nacl.public.PrivateKey.generate()
        self._greeting = _Greeting(
            bytes(self._ephemeral.public_key),
            bytes(key.verify_key),
            listen_address or "",
            supported_suites() if suites is None else suites,
        )
        self._remote: _Greeting | None = None
        self._transcript = b""
        self._step = _Step.AWAIT_HELLO

    def receive_hello(self, data: bytes) -> bytes:
        """Read HELLO; return the signed REPLY."""
        self._require(_Step.AWAIT_HELLO, "receive_hello")
        self._step = _Step.DONE
        remote = _parse_greeting(data, HELLO, "HELLO", 0)
        try:
            nacl.signing.VerifyKey(remote.node)
        except ValueError as exc:
            raise HandshakeFailed(f"HELLO carries an invalid node key: {exc}") from None
        reply_body = self._greeting.encode(REPLY)
        self._transcript = _transcript_hash(data, reply_body)
        self._remote = remote
        self._step = _Step.AWAIT_FINISH
        return reply_body + self._key.sign(_RESPONDER_SIGNS + self._transcript).signature

    def receive_finish(self, data: bytes) -> SessionKeys:
        """Verify FINISH; return the session keys (the dialer's identity is now proven)."""
        self._require(_Step.AWAIT_FINISH, "receive_finish")
        self._step = _Step.DONE
        assert self._remote is not None
        if len(data) != 1 + _SIG or data[0] != FINISH:
            raise HandshakeFailed(f"malformed FINISH: {len(data)} bytes")
        remote_peer = did_from_public_key(self._remote.node)
        _verify(
            self._remote.node, _INITIATOR_SIGNS, self._transcript, data[1:], f"dialer {remote_peer}"
        )
        shared = _shared_secret(self._ephemeral, self._remote.ephemeral)
        suite = choose(self._greeting.suites, self._remote.suites)
        return SessionKeys(
            send_key=_session_key(shared, b"r2i", self._transcript, suite),
            receive_key=_session_key(shared, b"i2r", self._transcript, suite),
            remote_peer=remote_peer,
            remote_address=_address_or_none(self._remote.address),
            transcript_hash=self._transcript,
            suite=suite,
        )

    def _require(self, step: _Step, call: str) -> None:
        if self._step is not step:
            raise HandshakeFailed(f"{call}() called in state {self._step.value!r}")
