"""Grant refusals name the first failure in the documented order; issuing refuses
delegations that could never be valid."""

from __future__ import annotations

import pytest

from ucan import InvalidAudience, InvalidClaim, MalformedToken, SigningKey
from ucan.attenuation import OutlivesProof, check_grant, first_to_expire, order_chain
from ucan.delegation import Delegation, delegate

NOW = 1_750_000_000
ROOT, NODE, ACTOR = (SigningKey.from_seed(bytes([n]) * 32) for n in range(41, 44))


def two_proofs(first_exp: int, second_cmd: str) -> list[Delegation]:
    return [delegate(ROOT, NODE.did, "/dms", expiration=first_exp),
            delegate(NODE, ACTOR.did, second_cmd, subject=ROOT.did, expiration=None)]


def test_a_wider_command_is_named_before_an_expiry_beyond_an_earlier_proof() -> None:
    chain = two_proofs(NOW + 10, "/dms/deployment")
    with pytest.raises(InvalidClaim, match="does not prove /dms/other") as refused:
        check_grant(chain, issuer=ACTOR.did, subject=ROOT.did, command="/dms/other",
                    expiration=NOW + 100, now=NOW)
    assert not isinstance(refused.value, OutlivesProof)


def test_an_expiry_beyond_a_proof_names_the_latest_allowed() -> None:
    chain = two_proofs(NOW + 10, "/dms/deployment")
    with pytest.raises(OutlivesProof, match=f"proof 1 of 2 .* expires at {NOW + 10}") as refused:
        check_grant(chain, issuer=ACTOR.did, subject=ROOT.did, command="/dms/deployment",
                    expiration=None, now=NOW)
    assert refused.value.latest == NOW + 10 and refused.value.name == "InvalidClaim"
    assert first_to_expire(chain) is chain[0]
    assert first_to_expire(chain[1:]) is None


def test_a_looser_policy_below_is_no_reason_to_refuse() -> None:
    top = delegate(ROOT, NODE.did, "/dms", policy=[["<=", ".cpu", 2]], expiration=None)
    check_grant([top], issuer=NODE.did, subject=ROOT.did, command="/dms", expiration=None,
                now=NOW)


def test_proofs_delegated_elsewhere_name_expected_and_actual_audiences() -> None:
    chain = two_proofs(NOW + 10, "/dms")
    with pytest.raises(InvalidAudience) as refused:
        order_chain(chain, ROOT.did)
    assert f"delegated to {ROOT.did}" in refused.value.message
    assert f"{chain[1].cid} is delegated to {ACTOR.did}" in refused.value.message
    assert str(chain[0].cid) not in refused.value.message  # re-delegated, not an end


def test_a_delegation_starting_after_it_expires_is_refused_naming_both_times() -> None:
    with pytest.raises(MalformedToken, match=f"nbf {NOW + 2} is later than exp {NOW + 1}"):
        delegate(ROOT, NODE.did, "/dms", expiration=NOW + 1, not_before=NOW + 2)
    assert delegate(ROOT, NODE.did, "/dms", expiration=NOW, not_before=NOW).nbf == NOW


def test_times_out_of_range_are_refused_before_anything_is_signed() -> None:
    with pytest.raises(MalformedToken, match="^MalformedToken: exp must be a Unix time"):
        delegate(ROOT, NODE.did, "/dms", expiration=2**60)
    with pytest.raises(MalformedToken, match="^MalformedToken: nbf must be a Unix time"):
        delegate(ROOT, NODE.did, "/dms", expiration=None, not_before=-1)
