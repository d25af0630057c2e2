"""Delegation chains checked on their own, and grants refused when made."""

from __future__ import annotations

import pytest

from ucan import InvalidAudience, InvalidClaim, InvalidSubject, SigningKey
from ucan.attenuation import check_grant, order_chain, validate_delegation_chain
from ucan.delegation import delegate

NOW = 1_750_000_000
ROOT, NODE, ACTOR = (SigningKey.from_seed(bytes([n]) * 32) for n in range(31, 34))


def test_a_sound_chain_passes_and_its_proofs_can_be_given_in_any_order() -> None:
    top = delegate(ROOT, NODE.did, "/dms", expiration=NOW + 100)
    below = delegate(NODE, ACTOR.did, "/dms/x", subject=None, expiration=NOW + 50)
    validate_delegation_chain([top, below], now=NOW)
    assert order_chain([below, top], ACTOR.did) == [top, below]
    with pytest.raises(InvalidAudience, match=f"delegated to {ACTOR.did} .* to {NODE.did}"):
        order_chain([top], ACTOR.did)
    stray = delegate(ACTOR, ROOT.did, "/dms", expiration=None)
    with pytest.raises(InvalidClaim, match="not part of the chain"):
        order_chain([top, below, stray], ACTOR.did)


def test_a_chain_widening_its_command_is_refused() -> None:
    top = delegate(ROOT, NODE.did, "/dms/x", expiration=None)
    wider = delegate(NODE, ACTOR.did, "/dms", subject=ROOT.did, expiration=None)
    with pytest.raises(InvalidClaim, match="wider than /dms/x"):
        validate_delegation_chain([top, wider], now=NOW)


def test_a_root_not_issued_by_its_subject_or_a_powerline_root_is_refused() -> None:
    with pytest.raises(InvalidClaim, match="powerline"):
        validate_delegation_chain(
            [delegate(ROOT, NODE.did, "/dms", subject=None, expiration=None)], now=NOW)
    with pytest.raises(InvalidClaim, match="not its subject"):
        validate_delegation_chain(
            [delegate(NODE, ACTOR.did, "/dms", subject=ROOT.did, expiration=None)], now=NOW)


def test_grants_beyond_their_proofs_are_refused_with_the_reason() -> None:
    chain = [delegate(ROOT, NODE.did, "/dms/deployment", expiration=NOW + 100)]
    ok = {"issuer": NODE.did, "subject": ROOT.did, "command": "/dms/deployment/bid",
          "expiration": NOW + 100, "now": NOW}
    check_grant(chain, **ok)  # type: ignore[arg-type]
    refusals = [
        ({"command": "/dms"}, InvalidClaim, "does not prove /dms"),
        ({"expiration": NOW + 101}, InvalidClaim, "cannot expire later"),
        ({"expiration": None}, InvalidClaim, "never"),
        ({"subject": ACTOR.did}, InvalidSubject, "proofs are about"),
        ({"issuer": ACTOR.did}, InvalidAudience, "cannot re-delegate"),
    ]
    for change, error, reason in refusals:
        with pytest.raises(error, match=reason):
            check_grant(chain, **(ok | change))  # type: ignore[arg-type]
    check_grant(chain, **(ok | {"subject": None}))  # type: ignore[arg-type]
