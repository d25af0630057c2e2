"""Attacks on chains beyond the official vectors, and properties over drawn chains."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ucan import (
    Delegation,
    InvalidAudience,
    InvalidClaim,
    InvalidSignature,
    Invocation,
    MalformedToken,
    MatchError,
    RevocationSet,
    Revoked,
    SigningKey,
    UcanError,
    delegate,
    invoke,
    revoke,
    validate_invocation,
)
from ucan.codec import decode, encode
from ucan.command import proves
from ucan.envelope import DELEGATION_TAG, ED25519_DAG_CBOR_HEADER
from ucan.policy import parse_policy
from ucan.testing import MUTATIONS, ValidChain, chains, invocations, outside, scenarios

NOW = 1_750_000_000
ROOT, NODE, ACTOR, MALLORY = (SigningKey.from_seed(bytes([n]) * 32) for n in range(1, 5))
quick = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def grant(issuer: SigningKey, audience: SigningKey, cmd: str, **kwargs: Any) -> Delegation:
    kwargs.setdefault("expiration", NOW + 3600)
    kwargs.setdefault("subject", ROOT.did)
    return delegate(issuer, audience.did, cmd, **kwargs)


def attempt(cmd: str, args: dict[str, Any], *proofs: Delegation, issuer: SigningKey = ACTOR,
            revoked: RevocationSet | None = None, now: int = NOW) -> None:
    inv = invoke(issuer, ROOT.did, cmd, args, [p.cid for p in proofs], expiration=NOW + 60)
    validate_invocation(inv, proofs, now=now, revoked=revoked or RevocationSet())


def test_widening_the_command_below_a_grant_proves_nothing_wider() -> None:
    upper = grant(ROOT, NODE, "/dms/deployment/bid")
    wider = grant(NODE, ACTOR, "/dms")  # claims more than it was given
    with pytest.raises(InvalidClaim, match="proof 1 of 2"):
        attempt("/dms/deployment/commit", {}, upper, wider)


def test_string_prefix_is_not_a_segment_prefix() -> None:
    upper = grant(ROOT, ACTOR, "/dms/deployment")
    with pytest.raises(InvalidClaim):
        attempt("/dms/deployments", {}, upper)


def test_loosening_the_policy_below_a_grant_does_not_loosen_it() -> None:
    upper = grant(ROOT, NODE, "/dms/deployment", policy=[["<=", ".cpu", 4]])
    looser = grant(NODE, ACTOR, "/dms/deployment", policy=[["<=", ".cpu", 64]])
    attempt("/dms/deployment", {"cpu": 4}, upper, looser)
    with pytest.raises(MatchError, match="proof 1 of 2"):
        attempt("/dms/deployment", {"cpu": 8}, upper, looser)


def test_extending_the_expiry_below_a_grant_does_not_extend_it() -> None:
    upper = grant(ROOT, NODE, "/dms", expiration=NOW + 10)
    longer = grant(NODE, ACTOR, "/dms", expiration=None)
    attempt("/dms", {}, upper, longer, now=NOW + 10)
    with pytest.raises(UcanError) as failure:
        attempt("/dms", {}, upper, longer, now=NOW + 11)
    assert failure.value.name == "Expired" and "proof 1 of 2" in failure.value.message


def test_proofs_in_the_wrong_order_fail_on_alignment() -> None:
    upper = grant(ROOT, NODE, "/dms")
    lower = grant(NODE, ACTOR, "/dms")
    attempt("/dms", {}, upper, lower)
    with pytest.raises(InvalidAudience):
        attempt("/dms", {}, lower, upper)


def test_a_chain_that_loops_is_refused() -> None:
    a_to_b = grant(ROOT, NODE, "/dms")
    b_to_a = grant(NODE, ROOT, "/dms")
    inv = invoke(NODE, ROOT.did, "/dms", {}, [a_to_b.cid, b_to_a.cid, a_to_b.cid],
                 expiration=None)
    with pytest.raises(InvalidClaim, match="same delegation twice"):
        validate_invocation(inv, [a_to_b, b_to_a], now=NOW)


def test_a_payload_tampered_after_signing_fails_the_signature() -> None:
    genuine = grant(ROOT, ACTOR, "/dms/deployment/bid")
    signature, inner = decode(genuine.envelope)
    inner[DELEGATION_TAG]["cmd"] = "/"  # widen, keep the right key's signature
    tampered = Delegation.decode(encode([signature, inner]))
    assert tampered.iss == ROOT.did
    with pytest.raises(InvalidSignature):
        attempt("/dms/anything", {}, tampered)


def test_a_non_canonical_reencoding_of_a_valid_token_is_refused() -> None:
    genuine = grant(ROOT, ACTOR, "/dms")
    # The same value with the 64-byte signature's length in a 2-byte head (0x59 0x00 0x40).
    longer_head = b"\x82\x59\x00\x40" + genuine.envelope[3:]
    assert decode(genuine.envelope) == [genuine.signature, decode(genuine.signed_bytes)]
    with pytest.raises(MalformedToken, match="canonical"):
        Delegation.decode(longer_head)


def test_an_unknown_varsig_header_is_refused_by_name() -> None:
    genuine = grant(ROOT, ACTOR, "/dms")
    signature, inner = decode(genuine.envelope)
    inner["h"] = bytes.fromhex("3401ec011371")  # secp256k1: not spoken here
    with pytest.raises(MalformedToken, match="varsig header 3401ec011371"):
        Delegation.decode(encode([signature, inner]))
    assert ED25519_DAG_CBOR_HEADER.hex() == "3401ed01ed011371"


def test_a_revoked_proof_in_the_middle_of_a_chain_fails_it() -> None:
    top = grant(ROOT, NODE, "/dms")
    middle = grant(NODE, MALLORY, "/dms")
    bottom = grant(MALLORY, ACTOR, "/dms")
    revoked = RevocationSet()
    attempt("/dms", {}, top, middle, bottom, revoked=revoked)
    revoked.add(revoke(NODE, middle))
    with pytest.raises(Revoked, match="proof 2 of 3"):
        attempt("/dms", {}, top, middle, bottom, revoked=revoked)


def test_rc1_type_tags_are_read_and_never_written() -> None:
    genuine = grant(ROOT, ACTOR, "/dms")
    _, inner = decode(genuine.envelope)
    rc_inner = {"h": inner["h"], "ucan/dlg@1.0.0-rc.1": inner[DELEGATION_TAG]}
    signed = encode(rc_inner)
    rc_token = Delegation.decode(encode([ROOT.sign(signed), rc_inner]))
    attempt("/dms", {}, rc_token)
    assert b"rc.1" not in genuine.envelope
    assert b"ucan/dlg@1.0.0" in genuine.envelope
    inv = invoke(ACTOR, ROOT.did, "/dms", {}, [rc_token.cid], expiration=None)
    assert b"ucan/inv@1.0.0" in inv.envelope and b"rc.1" not in inv.envelope


# -- properties ------------------------------------------------------------------------------


@quick
@given(scenarios())
def test_every_labelled_mutation_fails_with_its_named_error(scenario: Any) -> None:
    if scenario.error is None:
        scenario.validate()
        return
    with pytest.raises(UcanError) as failure:
        scenario.validate()
    assert failure.value.name == scenario.error, scenario.label


@pytest.mark.parametrize("mutation", MUTATIONS)
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_each_mutation_causes_exactly_its_failure(mutation: str, data: st.DataObject) -> None:
    scenario = data.draw(scenarios(mutation=mutation))
    try:
        scenario.validate()
    except UcanError as failure:
        assert failure.name == scenario.error, scenario.label
    else:
        assert scenario.error is None, scenario.label


@quick
@given(chains(), st.data())
def test_flipping_any_byte_of_a_sealed_token_fails_decode_or_validation(
    chain: ValidChain, data: st.DataObject
) -> None:
    inv = data.draw(invocations(chain))
    validate_invocation(inv, chain.delegations, now=chain.now)
    tokens = [inv.envelope, *(d.envelope for d in chain.delegations)]
    which = data.draw(st.integers(0, len(tokens) - 1))
    token = bytearray(tokens[which])
    position = data.draw(st.integers(0, len(token) - 1))
    token[position] ^= data.draw(st.integers(1, 255))
    with pytest.raises(UcanError):
        if which == 0:
            validate_invocation(Invocation.decode(bytes(token)), chain.delegations, now=chain.now)
        else:
            proofs = list(chain.delegations)
            proofs[which - 1] = Delegation.decode(bytes(token))
            validate_invocation(inv, proofs, now=chain.now)


@quick
@given(chains(), st.data())
def test_attenuation_only_narrows(chain: ValidChain, data: st.DataObject) -> None:
    inside = data.draw(invocations(chain, proven=True))
    validate_invocation(inside, chain.delegations, now=chain.now)
    if chain.command == "/":
        return
    command = data.draw(outside(chain.command))
    assert not proves(chain.command, command)
    with pytest.raises(InvalidClaim):
        validate_invocation(chain.invoke(command), chain.delegations, now=chain.now)


json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5)
    | st.binary(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner,
                                                                 max_size=4),
    max_leaves=12,
)
selectors = st.sampled_from([".", ".a", ".a.b", ".a[0]", ".a[-1]", ".a[]", ".a[]?", ".b?",
                             '.["a"]', ".a[1:3]", ".a.b[]"])
statements = st.recursive(
    st.tuples(st.sampled_from(["==", "!="]), selectors, json_like.filter(
        lambda v: not isinstance(v, float) or v == v)).map(list)
    | st.tuples(st.sampled_from(["<", "<=", ">", ">="]), selectors,
                st.integers() | st.floats(allow_nan=False)).map(list)
    | st.tuples(st.just("like"), selectors, st.text(alphabet="a*\\", max_size=4)).map(list),
    lambda inner: st.tuples(st.just("not"), inner).map(list)
    | st.tuples(st.sampled_from(["and", "or"]), st.lists(inner, max_size=3)).map(list)
    | st.tuples(st.sampled_from(["all", "any"]), selectors, inner).map(list),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(statements, max_size=3), json_like)
def test_policy_evaluation_never_raises_on_arbitrary_args(policy: list[Any], args: Any) -> None:
    parsed = parse_policy(policy)
    assert parsed.matches(args) in (True, False)
    failed = parsed.first_failure(args)
    assert (failed is None) == parsed.matches(args)


def test_a_costly_policy_below_a_grant_fails_closed_and_fast() -> None:
    """A grant holder re-delegates with 40 statements that each walk a 100k-item list:
    unbudgeted, every message cost the receiver seconds. Past the step budget the
    policy does not hold (MatchError), and finding that out is quick."""
    import time

    g1 = grant(ROOT, NODE, "/dms")
    heavy = [["all", ".items", [">=", ".", 0]]] * 40
    g2 = grant(NODE, ACTOR, "/dms", policy=heavy)
    args = {"items": list(range(100_000))}
    started = time.perf_counter()
    with pytest.raises(MatchError, match="budget"):
        attempt("/dms/run", args, g1, g2)
    assert time.perf_counter() - started < 2.0  # unbudgeted: about 40x the budget's work


def test_a_policy_within_the_budget_still_holds_over_a_long_list() -> None:
    g1 = grant(ROOT, NODE, "/dms")
    g2 = grant(NODE, ACTOR, "/dms", policy=[["all", ".items", [">=", ".", 0]]])
    attempt("/dms/run", {"items": list(range(10_000))}, g1, g2)
