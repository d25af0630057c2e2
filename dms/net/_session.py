"""Sealing and opening data frames with a session's keys (sans-IO).

A sealed frame is ``counter (u64 BE) | XSalsa20-Poly1305(payload)`` where the 24-byte
nonce is 16 zero bytes followed by the counter (the `_easy` calls: the same bytes as
`crypto_secretbox` without its zero padding, one copy fewer each way). Each direction has its own key and
counts from 0, so nonces never repeat under a key. The receiver accepts exactly the next
counter: a lower one is a replay, a higher one means frames were dropped or reordered,
and a MAC failure means the bytes were changed. Any of these ends the session: the
carrier below is ordered and reliable, so none of them happens without an attacker or
a bug.
"""

from __future__ import annotations

import struct

import nacl.bindings
import nacl.exceptions

from dms.net._handshake import SessionKeys

COUNTER_BYTES = 8
MAC_BYTES = nacl.bindings.crypto_secretbox_MACBYTES
FRAME_OVERHEAD = COUNTER_BYTES + MAC_BYTES
_COUNTER = struct.Struct(">Q")
_NONCE_PAD = bytes(nacl.bindings.crypto_secretbox_NONCEBYTES - COUNTER_BYTES)
_COUNTER_LIMIT = 2**64 - 1


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
    """Counter-nonce authenticated encryption for one link, both directions."""

    def __init__(self, keys: SessionKeys) -> None:
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
        return header + nacl.bindings.crypto_secretbox_easy(
            payload, _NONCE_PAD + header, self._send_key)

    def open(self, frame: bytes) -> bytes:
        if len(frame) < FRAME_OVERHEAD:
            raise FrameTampered(f"frame of {len(frame)} bytes is shorter than its header")
        header = frame[:COUNTER_BYTES]
        (counter,) = _COUNTER.unpack(header)
        expected = self._receive_counter
        if counter < expected:
            raise FrameReplayed(f"frame counter {counter} already seen (expected {expected})")
        if counter > expected:
            raise FrameReordered(f"frame counter {counter} arrived before {expected}")
        try:
            payload = nacl.bindings.crypto_secretbox_open_easy(
                frame[COUNTER_BYTES:], _NONCE_PAD + header, self._receive_key
            )
        except nacl.exceptions.CryptoError:
            raise FrameTampered(f"frame {counter} failed authentication") from None
        self._receive_counter = expected + 1
        return payload
