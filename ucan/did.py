"""did:key for Ed25519 public keys.

A did:key is `did:key:z` + base58btc(multicodec ed25519-pub (0xed 0x01) + 32 key bytes).
Parsing goes through multiformats (the reference codec); the hot direction
(public key -> DID) is cached because every message names its issuer.
"""

from __future__ import annotations

from functools import lru_cache

import nacl.exceptions
from multiformats import multibase
from nacl.bindings import crypto_sign_BYTES as SIGNATURE_BYTES
from nacl.bindings import crypto_sign_open

from ucan.errors import MalformedToken

DID_KEY_PREFIX = "did:key:"
_ED25519_PUB = b"\xed\x01"


@lru_cache(maxsize=65536)
def did_from_public_key(public_key: bytes) -> str:
    """The did:key naming an Ed25519 public key (32 bytes). Cached: multibase's
    base58btc costs ~2 ms a key (runtime type validation), paid by every handshake."""
    if len(public_key) != 32:
        raise ValueError(f"an Ed25519 public key is 32 bytes, got {len(public_key)}")
    return DID_KEY_PREFIX + multibase.encode(_ED25519_PUB + public_key, "base58btc")


@lru_cache(maxsize=65536)
def public_key_from_did(did: str) -> bytes:
    """The Ed25519 public key a did:key names; MalformedToken when it names none."""
    if not isinstance(did, str) or not did.startswith(DID_KEY_PREFIX + "z"):
        raise MalformedToken(f"not an Ed25519 did:key: {did!r}")
    try:
        raw = multibase.decode(did[len(DID_KEY_PREFIX):])
    except Exception as exc:
        raise MalformedToken(f"did:key {did!r} is not valid base58btc: {exc}") from None
    if raw[:2] != _ED25519_PUB or len(raw) != 34:
        raise MalformedToken(f"did:key {did!r} does not name an Ed25519 public key")
    return bytes(raw[2:])


def verify_signature(did: str, message: bytes, signature: bytes) -> bool:
    """True when `signature` is `did`'s Ed25519 signature of `message`.

    libsodium is called directly (what `VerifyKey.verify` does under its wrapping):
    every message pays for one of these."""
    if not isinstance(signature, bytes) or len(signature) != SIGNATURE_BYTES:
        return False
    try:
        crypto_sign_open(signature + message, public_key_from_did(did))
    except (nacl.exceptions.BadSignatureError, MalformedToken, ValueError, TypeError):
        return False
    return True
