"""The trust context remembers validated chains; nothing it remembers may outlive the
reasons the chain held (revocation, time bounds, proofs carried, policies)."""

from __future__ import annotations

import pytest

from ucan import (
    Expired,
    MatchError,
    Revoked,
    SigningKey,
    TrustContext,
    UnavailableProof,
    delegate,
    invoke,
    revoke,
)

NOW = 1_800_000_000
OWNER, MIDDLE, CALLER = (SigningKey.generate() for _ in range(3))


def chain(expiration: int = NOW + 3600) -> list:  # type: ignore[type-arg]
    first = delegate(OWNER, MIDDLE.did, "/shop", policy=[["<=", ".amount", 100]],
                     expiration=expiration)
    second = delegate(MIDDLE, CALLER.did, "/shop/order", subject=OWNER.did,
                      expiration=expiration)
    return [first, second]


def order(proofs: list, amount: int = 5, exp: int = NOW + 60):  # type: ignore[no-untyped-def,type-arg]
    return invoke(CALLER, OWNER.did, "/shop/order", {"amount": amount},
                  [d.cid for d in proofs], expiration=exp)


def test_a_remembered_chain_still_checks_each_invocations_policy() -> None:
    trust, proofs = TrustContext(OWNER.did), chain()
    trust.authorize(order(proofs), proofs, now=NOW)
    with pytest.raises(MatchError):
        trust.authorize(order(proofs, amount=101), proofs, now=NOW)


def test_a_revocation_after_validation_is_honoured() -> None:
    trust, proofs = TrustContext(OWNER.did), chain()
    trust.authorize(order(proofs), proofs, now=NOW)
    trust.revocations.add(revoke(MIDDLE, proofs[1]))
    with pytest.raises(Revoked):
        trust.authorize(order(proofs), proofs, now=NOW)


def test_a_remembered_chain_expires_with_its_earliest_delegation() -> None:
    trust, proofs = TrustContext(OWNER.did), chain(expiration=NOW + 100)
    trust.authorize(order(proofs), proofs, now=NOW)
    with pytest.raises(Expired):
        trust.authorize(order(proofs, exp=NOW + 200), proofs, now=NOW + 101)


def test_a_message_must_still_carry_the_proofs_it_names() -> None:
    trust, proofs = TrustContext(OWNER.did), chain()
    trust.authorize(order(proofs), proofs, now=NOW)
    with pytest.raises(UnavailableProof):
        trust.authorize(order(proofs), proofs[:1], now=NOW)


def test_an_expired_invocation_over_a_remembered_chain_is_refused() -> None:
    trust, proofs = TrustContext(OWNER.did), chain()
    trust.authorize(order(proofs), proofs, now=NOW)
    with pytest.raises(Expired):
        trust.authorize(order(proofs, exp=NOW - 10), proofs, now=NOW)


def test_every_change_to_the_held_delegations_moves_their_version() -> None:
    from ucan import SigningKey, TrustContext, delegate

    issuer, holder = SigningKey.generate(), SigningKey.generate()
    trust = TrustContext(holder.did)
    one, two = (delegate(issuer, holder.did, "/x", expiration=None) for _ in range(2))
    changes = [
        lambda: trust.provide(one),
        lambda: trust.provided.__setitem__(two.cid, two),
        lambda: trust.provided.pop(two.cid),
        lambda: trust.provided.update({two.cid: two}),
        lambda: trust.provided.__delitem__(two.cid),
        lambda: trust.provided.setdefault(two.cid, two),
        lambda: trust.provided.popitem(),
        lambda: trust.provided.__ior__({two.cid: two}),
        lambda: trust.provided.clear(),
    ]
    for change in changes:
        before = trust.provided.version
        change()
        assert trust.provided.version > before
    assert trust.provided == {}
