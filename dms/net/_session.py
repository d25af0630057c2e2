"""Sealing and opening data frames with a session's keys (sans-IO).

A sealed frame is ``counter (u64 BE) | sealed payload`` under the suite the handshake
chose (`dms.net._suites`):

- `xsalsa20poly1305`: ``tag (16) | ciphertext``, XSalsa20-Poly1305 with the 24-byte
  nonce 16 zero bytes followed by the counter (the `_easy` calls: the same bytes as
  `crypto_secretbox` without its zero padding, one copy fewer each way);
- `aegis256`: ``ciphertext | tag (32)``, AEGIS-256 with the 32-byte nonce 24 zero bytes
  followed by the counter and no associated data (libsodium's AEGIS has only the
  256-bit tag, which is not the 128-bit tag truncated: 40 bytes of overhead, not 24).

Either way the header is authenticated through the nonce: changing it breaks the tag. Each direction has its own key and counts from 0, so nonces
never repeat under a key. The receiver accepts exactly the next counter: a lower one is
a replay, a higher one means frames were dropped or reordered, and a MAC failure means
the bytes were changed. Any of these ends the session: the carrier below is ordered and
reliable, so none of them happens without an attacker or a bug.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

import nacl._sodium
import nacl.bindings
import nacl.exceptions

from dms.net._handshake import SessionKeys
from dms.net._suites import AEGIS256, XSALSA20_POLY1305

COUNTER_BYTES = 8
TAG_BYTES = {XSALSA20_POLY1305: 16, AEGIS256: 32}
"""Each suite's tag (crypto_secretbox_MACBYTES, crypto_aead_aegis256_ABYTES)."""
FRAME_OVERHEAD = COUNTER_BYTES + max(TAG_BYTES.values())
"""The most a sealed frame adds to its payload, under any suite: what carriers allow for."""
_COUNTER = struct.Struct(">Q")
_COUNTER_LIMIT = 2**64 - 1

_Seal = Callable[[bytes, bytes, bytes], bytes]
"""(payload, header, key) -> sealed payload; raises `nacl.exceptions.CryptoError` to open."""


def _xsalsa20_seal(payload: bytes, header: bytes, key: bytes) -> bytes:
    return nacl.bindings.crypto_secretbox_easy(payload, _XSALSA20_PAD + header, key)


def _xsalsa20_open(sealed: bytes, header: bytes, key: bytes) -> bytes:
    return nacl.bindings.crypto_secretbox_open_easy(sealed, _XSALSA20_PAD + header, key)


# AEGIS-256 through libsodium directly: PyNaCl's wrappers re-check every argument and
# allocate a length out-parameter per call, which made a 256-byte frame's seal and open
# slower than XSalsa20's `_easy` calls. Here the key's length is checked once (in
# `SecureSession`), the nonce is built to size, and libsodium writes no length back.
_ffi, _lib = nacl._sodium.ffi, nacl._sodium.lib
_AEGIS_TAG = 32  # crypto_aead_aegis256_ABYTES


def _aegis256_seal(payload: bytes, header: bytes, key: bytes) -> bytes:
    size = len(payload) + _AEGIS_TAG
    out = _ffi.new("unsigned char[]", size)
    _lib.crypto_aead_aegis256_encrypt(
        out, _ffi.NULL, payload, len(payload), _ffi.NULL, 0, _ffi.NULL, _AEGIS_PAD + header, key)
    sealed: bytes = _ffi.buffer(out, size)[:]
    return sealed


def _aegis256_open(sealed: bytes, header: bytes, key: bytes) -> bytes:
    size = len(sealed) - _AEGIS_TAG  # >= 0: `open` refused shorter frames
    out = _ffi.new("unsigned char[]", max(size, 1))
    if _lib.crypto_aead_aegis256_decrypt(
        out, _ffi.NULL, _ffi.NULL, sealed, len(sealed), _ffi.NULL, 0, _AEGIS_PAD + header, key
    ):
        raise nacl.exceptions.CryptoError("AEGIS-256 tag mismatch")
    payload: bytes = _ffi.buffer(out, size)[:]
    return payload


_XSALSA20_PAD = bytes(nacl.bindings.crypto_secretbox_NONCEBYTES - COUNTER_BYTES)
_AEGIS_PAD = bytes(32 - COUNTER_BYTES)  # crypto_aead_aegis256_NPUBBYTES
_CIPHERS: dict[str, tuple[_Seal, _Seal]] = {
    XSALSA20_POLY1305: (_xsalsa20_seal, _xsalsa20_open),
    AEGIS256: (_aegis256_seal, _aegis256_open),
}


class FrameRejected(Exception):
    """A received frame failed authentication; `reason` names which check."""

    reason = "rejected"


class FrameReplayed(FrameRejected):
    reason = "replayed"


class FrameReordered(FrameRejected):
    reason = "reordered"


class FrameTampered(FrameRejected):
    reason = "tampered"


class SecureSession:
    """Counter-nonce authenticated encryption for one link, both directions, under the
    suite the handshake chose (`keys.suite`)."""

    def __init__(self, keys: SessionKeys) -> None:
        try:
            self._seal, self._open = _CIPHERS[keys.suite]
        except KeyError:
            raise ValueError(f"suite: unknown session cipher {keys.suite!r}") from None
        if len(keys.send_key) != 32 or len(keys.receive_key) != 32:
            raise ValueError("keys: session keys must be 32 bytes each")
        self.suite = keys.suite
        """The session cipher's name (`dms.net._suites`)."""
        self.overhead = COUNTER_BYTES + TAG_BYTES[keys.suite]
        """What sealing adds to a payload under this suite (24 or 40 bytes)."""
        self._send_key = keys.send_key
        self._receive_key = keys.receive_key
        self._send_counter = 0
        self._receive_counter = 0

    def seal(self, payload: bytes) -> bytes:
        counter = self._send_counter
        if counter >= _COUNTER_LIMIT:
            raise OverflowError("session send counter exhausted; open a new link")
        self._send_counter = counter + 1
        header = _COUNTER.pack(counter)
        return header + self._seal(payload, header, self._send_key)

    def open(self, frame: bytes) -> bytes:
        if len(frame) < self.overhead:
            raise FrameTampered(f"frame of {len(frame)} bytes is shorter than its header")
        header = frame[:COUNTER_BYTES]
        (counter,) = _COUNTER.unpack(header)
        expected = self._receive_counter
        if counter < expected:
            raise FrameReplayed(f"frame counter {counter} already seen (expected {expected})")
        if counter > expected:
            raise FrameReordered(f"frame counter {counter} arrived before {expected}")
        try:
            payload = self._open(frame[COUNTER_BYTES:], header, self._receive_key)
        except nacl.exceptions.CryptoError:
            raise FrameTampered(f"frame {counter} failed authentication") from None
        self._receive_counter = expected + 1
        return payload
