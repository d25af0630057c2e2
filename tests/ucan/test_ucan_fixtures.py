"""The official UCAN 1.0 test vectors, reproduced exactly."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from ucan.codec import CID
from ucan.delegation import Delegation, delegate
from ucan.errors import UcanError
from ucan.invocation import Invocation
from ucan.keys import SigningKey
from ucan.policy import parse_policy
from ucan.validate import validate_invocation

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ucan-1.0.0"


def load(name: str) -> dict[str, Any]:
    # Missing fixtures must fail the suite, never skip it.
    return json.loads((FIXTURES / name).read_text())


def unpad_b64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def dag_json_bytes(value: dict[str, Any]) -> bytes:
    return unpad_b64(value["/"]["bytes"])


def principal_key(encoded: str) -> SigningKey:
    raw = base64.b64decode(encoded)
    assert raw[:2] == b"\x80\x26"  # varint(0x1300): ed25519-priv
    return SigningKey.from_seed(raw[2:])


DELEGATIONS = load("delegation.json")
INVOCATIONS = load("invocation.json")
POLICIES = load("policy.json")


@pytest.mark.parametrize("case", DELEGATIONS["valid"], ids=lambda c: c["name"])
def test_delegation_vector_is_reproduced_byte_for_byte(case: dict[str, Any]) -> None:
    principals = {name: principal_key(k) for name, k in DELEGATIONS["principals"].items()}
    by_did = {key.did: key for key in principals.values()}
    expected = case["envelope"]["payload"]
    issuer = by_did[expected["iss"]]
    rebuilt = delegate(
        issuer,
        expected["aud"],
        expected["cmd"],
        subject=expected["sub"],
        policy=expected["pol"],
        expiration=expected["exp"],
        nonce=base64.b64decode(expected["nonce"]),
    )
    token = base64.b64decode(case["token"])
    assert rebuilt.envelope == token
    assert str(rebuilt.cid) == case["cid"]
    decoded = Delegation.decode(token)
    assert decoded.signature == base64.b64decode(case["envelope"]["signature"])
    assert str(decoded.cid) == case["cid"]
    assert CID.parse(case["cid"]) == decoded.cid


def _validate(case: dict[str, Any]) -> None:
    invocation = Invocation.decode(dag_json_bytes(case["invocation"]))
    proofs = [Delegation.decode(dag_json_bytes(p)) for p in case["proofs"]]
    validate_invocation(invocation, proofs, now=case["time"])


@pytest.mark.parametrize("case", INVOCATIONS["valid"], ids=lambda c: c["name"])
def test_valid_invocation_vector_validates(case: dict[str, Any]) -> None:
    _validate(case)


@pytest.mark.parametrize("case", INVOCATIONS["invalid"], ids=lambda c: c["name"])
def test_invalid_invocation_vector_fails_with_the_named_error(case: dict[str, Any]) -> None:
    with pytest.raises(UcanError) as failure:
        _validate(case)
    assert failure.value.name == case["error"]["name"]


def _policy_cases(kind: str) -> list[tuple[Any, Any]]:
    return [(case["args"], policy) for case in POLICIES[kind] for policy in case["policies"]]


@pytest.mark.parametrize("args,policy", _policy_cases("valid"))
def test_valid_policy_vector_matches(args: Any, policy: Any) -> None:
    assert parse_policy(policy).matches(args)


@pytest.mark.parametrize("args,policy", _policy_cases("invalid"))
def test_invalid_policy_vector_does_not_match(args: Any, policy: Any) -> None:
    assert not parse_policy(policy).matches(args)
