"""Hostile inputs to `verify_signature`, which now calls libsodium directly: whatever
the signature or the DID, the answer is False, never an exception (the caller turns
False into a refusal; an exception from here would be a crash path for remote bytes)."""

from __future__ import annotations

from typing import Any

import pytest

from ucan import SigningKey
from ucan.did import verify_signature

KEY = SigningKey.generate()
MESSAGE = b"signed bytes"
GOOD = KEY.sign(MESSAGE)
_L = 2**252 + 27742317777372353535851937790883648493
"""The group order: S + L is the same signature in another encoding (malleability),
which libsodium refuses (S must be reduced)."""


class _Bytes(bytes):
    pass


def test_the_right_signature_verifies_and_a_bytes_subclass_of_it_too() -> None:
    assert verify_signature(KEY.did, MESSAGE, GOOD)
    assert verify_signature(KEY.did, MESSAGE, _Bytes(GOOD))


@pytest.mark.parametrize("signature", [
    b"", GOOD[:63], GOOD + b"\x00", GOOD[:32], bytes(64), b"\xff" * 64,
    bytearray(GOOD), memoryview(GOOD), GOOD.hex(), None, 7, [GOOD],
    GOOD[:32] + (int.from_bytes(GOOD[32:], "little") + _L).to_bytes(32, "little"),
], ids=repr)
def test_a_wrong_or_ill_typed_signature_is_false(signature: Any) -> None:
    assert verify_signature(KEY.did, MESSAGE, signature) is False


@pytest.mark.parametrize("did", [
    "", "did:key:", "did:key:z", "did:key:z6Mk", "did:web:example.com", KEY.did + "x",
    KEY.did[:-1], "did:key:" + "z" * 5000, "did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme",
], ids=lambda d: d[:40])
def test_a_did_that_is_no_ed25519_key_is_false(did: str) -> None:
    assert verify_signature(did, MESSAGE, GOOD) is False


def test_a_signature_of_other_bytes_or_by_another_key_is_false() -> None:
    assert not verify_signature(KEY.did, MESSAGE + b"!", GOOD)
    assert not verify_signature(SigningKey.generate().did, MESSAGE, GOOD)
