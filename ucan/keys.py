"""Ed25519 signing keys, named by their did:key.

Passphrase-encrypted key files live in `ucan.keystore`; this module only holds keys
in memory.
"""

from __future__ import annotations

import nacl.signing
from nacl.bindings import crypto_sign, crypto_sign_seed_keypair
from nacl.bindings import crypto_sign_BYTES as SIGNATURE_BYTES

from ucan.did import did_from_public_key


class SigningKey:
    """An Ed25519 private key. `did` is the did:key of its public half."""

    __slots__ = ("_key", "_secret", "did", "public_key")

    def __init__(self, key: nacl.signing.SigningKey) -> None:
        self._key = key
        self.public_key, self._secret = crypto_sign_seed_keypair(bytes(key))
        self.did = did_from_public_key(self.public_key)

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(nacl.signing.SigningKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> SigningKey:
        """The key whose 32-byte Ed25519 seed (the RFC 8032 private key) is `seed`."""
        if len(seed) != 32:
            raise ValueError(f"an Ed25519 seed is 32 bytes, got {len(seed)}")
        return cls(nacl.signing.SigningKey(seed))

    @property
    def seed(self) -> bytes:
        return bytes(self._key)

    @property
    def nacl_key(self) -> nacl.signing.SigningKey:
        return self._key

    def sign(self, message: bytes) -> bytes:
        """The 64-byte detached Ed25519 signature of `message` (libsodium called
        directly: `nacl.signing` wraps each signature in three encoder calls)."""
        return crypto_sign(message, self._secret)[:SIGNATURE_BYTES]

    def __repr__(self) -> str:
        return f"SigningKey({self.did})"
