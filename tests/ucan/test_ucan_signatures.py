"""Signing and checking call libsodium directly: the same signatures as PyNaCl's,
and anything but a 64-byte signature by the DID's key over exactly the message fails."""

from __future__ import annotations

import pytest

from ucan import SigningKey, verify_signature

KEY = SigningKey.generate()
MESSAGE = b"a signed payload"


def test_signatures_are_pynacls_detached_ed25519_signatures() -> None:
    signature = KEY.sign(MESSAGE)
    assert signature == KEY.nacl_key.sign(MESSAGE).signature
    assert verify_signature(KEY.did, MESSAGE, signature)


@pytest.mark.parametrize("signature", [
    KEY.sign(MESSAGE)[:63],  # short: its last byte must not be taken from the message
    KEY.sign(MESSAGE) + b"\x00",
    bytes(64),
    "not bytes",
])
def test_anything_but_the_keys_signature_fails(signature: object) -> None:
    assert not verify_signature(KEY.did, MESSAGE, signature)  # type: ignore[arg-type]


def test_a_signature_fails_for_another_message_or_key_or_no_did() -> None:
    signature = KEY.sign(MESSAGE)
    assert not verify_signature(KEY.did, MESSAGE + b"!", signature)
    assert not verify_signature(SigningKey.generate().did, MESSAGE, signature)
    assert not verify_signature("did:key:zNotAKey", MESSAGE, signature)
