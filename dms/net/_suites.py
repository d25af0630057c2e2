"""Session cipher suites: which a node offers, how an offer is written, which is chosen.

Two suites seal a link's frames. `xsalsa20poly1305` is mandatory: every node has it,
so two nodes always share one. `aegis256` (AEGIS-256, libsodium) costs the node about
three quarters of the CPU per MB, but AEGIS is built on the AES round function, and
AES in software uses lookup tables whose cache footprint leaks the key to a timing
attacker on the same machine; so a node offers it only when the CPU does AES in
hardware (AES-NI, ARMv8 crypto), which libsodium's `crypto_aead_aes256gcm_is_available`
reports. A link uses AEGIS-256 iff both sides offered it.

The offer travels inside HELLO and REPLY, so the transcript both signatures cover
includes it: a man in the middle who strips it breaks the handshake instead of
downgrading the link. Sans-IO: bytes in, names out.
"""

from __future__ import annotations

from collections.abc import Iterable

import nacl._sodium
import nacl.bindings

from dms.net._errors import HandshakeFailed

XSALSA20_POLY1305 = "xsalsa20poly1305"
"""The mandatory suite: implied in every offer, chosen when AEGIS-256 is not shared."""
AEGIS256 = "aegis256"
"""AEGIS-256, offered only on a CPU with hardware AES."""
KNOWN_SUITES = (AEGIS256, XSALSA20_POLY1305)
"""Every suite this code can run, most preferred first."""

MAX_OFFERED = 16
"""Suite names one offer may hold; a longer offer is malformed."""
MAX_NAME = 32
"""Bytes one suite name may hold."""


def hardware_aes() -> bool:
    """True when libsodium finds AES instructions on this CPU (AES-NI / ARMv8 crypto)."""
    return bool(nacl._sodium.lib.crypto_aead_aes256gcm_is_available())


def supported_suites() -> tuple[str, ...]:
    """What this node offers: AEGIS-256 only with hardware AES and a libsodium that has
    it, then the mandatory suite. Asked at each handshake, not cached at import."""
    aegis = hardware_aes() and hasattr(nacl.bindings, "crypto_aead_aegis256_encrypt")
    return (AEGIS256, XSALSA20_POLY1305) if aegis else (XSALSA20_POLY1305,)


def choose(ours: Iterable[str], theirs: Iterable[str]) -> str:
    """AEGIS-256 iff both sides offered it, else the mandatory suite (never nothing)."""
    return AEGIS256 if AEGIS256 in set(ours) and AEGIS256 in set(theirs) else XSALSA20_POLY1305


def encode_offer(suites: Iterable[str]) -> bytes:
    """The offer as it follows the address in HELLO/REPLY: ``count (u8) · count ×
    (len (u8) · name)``. Empty when it holds only the mandatory suite, so a node that
    offers nothing new sends today's bytes."""
    names = [name.encode() for name in dict.fromkeys(suites)]
    if names in ([], [XSALSA20_POLY1305.encode()]):
        return b""
    if len(names) > MAX_OFFERED or any(not 0 < len(name) <= MAX_NAME for name in names):
        raise ValueError(f"suites: at most {MAX_OFFERED} names of 1..{MAX_NAME} bytes each")
    return bytes([len(names)]) + b"".join(bytes([len(name)]) + name for name in names)


def parse_offer(data: bytes, message: str) -> tuple[str, ...]:
    """The suites an offer names, unknown names dropped; `data` empty is an offer of
    the mandatory suite alone. Raises `HandshakeFailed` naming what is malformed."""
    if not data:
        return (XSALSA20_POLY1305,)
    count = data[0]
    if not 0 < count <= MAX_OFFERED:
        raise HandshakeFailed(f"malformed {message}: suite offer of {count} names "
                              f"(1..{MAX_OFFERED} allowed)")
    offered: list[str] = []
    at = 1
    for _ in range(count):
        if at >= len(data):
            raise HandshakeFailed(f"malformed {message}: suite offer ends early")
        length = data[at]
        name = data[at + 1 : at + 1 + length]
        if not 0 < length <= MAX_NAME or len(name) != length:
            raise HandshakeFailed(f"malformed {message}: suite name of {length} bytes")
        at += 1 + length
        if name.decode("ascii", "replace") in KNOWN_SUITES:
            offered.append(name.decode("ascii"))
    if at != len(data):
        raise HandshakeFailed(f"malformed {message}: {len(data) - at} bytes after the suite offer")
    return tuple(dict.fromkeys(offered)) or (XSALSA20_POLY1305,)
