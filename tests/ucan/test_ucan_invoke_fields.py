"""`invoke` checks every field before it signs, and the invocation it returns is the
one a receiver decodes from its envelope (it is not parsed back from its own bytes)."""

from __future__ import annotations

from typing import Any

import pytest

from ucan import CID, Invocation, MalformedToken, SigningKey, invoke

KEY = SigningKey.generate()
NOW = 1_700_000_000


def test_the_signed_invocation_is_what_its_envelope_decodes_to() -> None:
    cid = CID.for_bytes(b"proof")
    inv = invoke(KEY, KEY.did, "/a/b", {"p": "x", "n": [1, None]}, [cid], audience=KEY.did,
                 expiration=NOW + 60, issued_at=NOW, meta={"from": "me"}, cause=cid)
    assert Invocation.decode(inv.envelope) == inv


@pytest.mark.parametrize(("field", "change"), [
    ("exp", {"expiration": -1}),
    ("exp", {"expiration": True}),
    ("iat", {"issued_at": 2**53}),
    ("meta", {"meta": ["not", "a", "map"]}),
    ("nonce", {"nonce": "text"}),
    ("sub", {"subject": "did:web:example.com"}),
    ("aud", {"audience": 7}),
])
def test_a_bad_field_is_refused_by_name_before_signing(field: str, change: dict[str, Any]) -> None:
    kwargs: dict[str, Any] = {"subject": KEY.did, "expiration": NOW, **change}
    subject = kwargs.pop("subject")
    with pytest.raises(MalformedToken, match=field):
        invoke(KEY, subject, "/a", {}, **kwargs)


def test_proofs_and_cause_must_be_cids() -> None:
    with pytest.raises(MalformedToken, match="prf"):
        invoke(KEY, KEY.did, "/a", {}, ["bafy-not-a-cid"], expiration=NOW)  # type: ignore[list-item]
    with pytest.raises(MalformedToken, match="cause"):
        invoke(KEY, KEY.did, "/a", {}, expiration=NOW, cause="x")  # type: ignore[arg-type]
