"""Revocations that matter to a principal are never flooded away; others stay bounded.

A revocation matters when its issuer is the principal itself or an anchor, the issuer or
subject of a delegation it holds, or at or above the revoked delegation in a chain it
authorized. Anybody can sign revocations of anything from fresh keys, so everything
else lives in a bounded set whose oldest records go first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ucan import Revoked, SigningKey, TrustContext, delegate, invoke, revoke
from ucan.codec import CID
from ucan.store import TokenStore

NOW = 1_750_000_000
ROOT, NODE, MIDDLE, ACTOR, ATTACKER = (SigningKey.from_seed(bytes([n]) * 32)
                                       for n in range(31, 36))
FLOOD_KEYS = [SigningKey.from_seed(n.to_bytes(4, "big") * 8) for n in range(1, 41)]


def chain_of(*keys: SigningKey, **kwargs: Any) -> list[Any]:
    kwargs.setdefault("expiration", NOW + 3600)
    return [delegate(a, b.did, "/dms", subject=keys[0].did, **kwargs)
            for a, b in zip(keys, keys[1:], strict=False)]


def invocation_over(proofs: list[Any]) -> Any:
    return invoke(ACTOR, ROOT.did, "/dms/x", {}, [p.cid for p in proofs], audience=NODE.did,
                  expiration=None)


def small_trust() -> TrustContext:
    trust = TrustContext(NODE.did, anchors=[ROOT.did])
    trust.revocations.capacity = 50  # so a flood of a few hundred cycles the bounded part
    return trust


def flood(trust: TrustContext, count: int = 400) -> None:
    for n in range(count):
        key = FLOOD_KEYS[n % len(FLOOD_KEYS)]
        junk = CID.for_bytes(n.to_bytes(8, "big"))
        trust.revocations.add(revoke(key, junk))


def test_a_middle_issuers_revocation_of_an_authorized_chain_survives_a_flood() -> None:
    proofs = chain_of(ROOT, MIDDLE, ACTOR)
    trust = small_trust()
    trust.authorize(invocation_over(proofs), proofs, now=NOW)
    trust.revocations.add(revoke(MIDDLE, proofs[1]))  # neither the node nor an anchor
    flood(trust)
    with pytest.raises(Revoked):
        trust.authorize(invocation_over(proofs), proofs, now=NOW)


def test_a_revocation_that_refused_an_authorized_chain_is_kept_from_then_on() -> None:
    proofs = chain_of(ROOT, MIDDLE, ACTOR)
    trust = small_trust()
    trust.revocations.add(revoke(MIDDLE, proofs[1]))  # before the chain was ever seen here
    with pytest.raises(Revoked):
        trust.authorize(invocation_over(proofs), proofs, now=NOW)
    flood(trust)
    with pytest.raises(Revoked):
        trust.authorize(invocation_over(proofs), proofs, now=NOW)


def test_a_revocation_of_a_held_grant_by_its_issuer_survives_a_flood() -> None:
    held = delegate(MIDDLE, NODE.did, "/dms", subject=ROOT.did, expiration=NOW + 3600)
    trust = small_trust()
    trust.provide(held)
    trust.revocations.add(revoke(MIDDLE, held))
    flood(trust)
    assert MIDDLE.did in trust.revocations.revokers(held.cid)


def test_a_revocation_above_a_self_made_link_is_not_kept() -> None:
    """An attacker signs a link putting itself above a real delegation and revokes that
    delegation: its chain is not authorized here, so its revocation stays evictable."""
    real = chain_of(ROOT, MIDDLE, ACTOR)
    forged_root = delegate(ATTACKER, MIDDLE.did, "/dms", subject=ROOT.did, expiration=NOW + 3600)
    trust = small_trust()
    junk = revoke(ATTACKER, real[1])
    trust.revocations.add(junk)
    forged = [forged_root, real[1]]
    with pytest.raises(Exception):  # noqa: B017 - refused one way or another
        trust.authorize(invocation_over(forged), forged, now=NOW)
    assert not trust.revocations.kept(junk)
    flood(trust)
    assert ATTACKER.did not in trust.revocations.revokers(real[1].cid)


def test_kept_revocations_are_written_down_and_kept_again_after_a_restart(tmp_path: Path) -> None:
    proofs = chain_of(ROOT, MIDDLE, ACTOR)
    store = TokenStore(tmp_path)
    trust = small_trust()
    trust.revocations.on_keep = store.put_revocation
    trust.authorize(invocation_over(proofs), proofs, now=NOW)
    trust.revocations.add(revoke(MIDDLE, proofs[1]))
    flood(trust)
    assert len(list(store.revocations())) == 1  # the junk was never written

    restarted = small_trust()
    store.load_into(restarted)
    flood(restarted)
    with pytest.raises(Revoked):
        restarted.authorize(invocation_over(proofs), proofs, now=NOW)


def test_a_kept_revocation_is_forgotten_once_what_it_revokes_has_expired() -> None:
    # Every stopped actor leaves one; kept for good, they only grew.
    proofs = chain_of(ROOT, MIDDLE, ACTOR)  # each link expires at NOW + 3600
    lasting = chain_of(ROOT, MIDDLE, ACTOR, expiration=None)
    trust = small_trust()
    for chain in (proofs, lasting):
        trust.authorize(invocation_over(chain), chain, now=NOW)
        trust.revocations.add(revoke(MIDDLE, chain[1]))
    assert len(trust.revocations.kept_revocations()) == 2
    assert trust.revocations.forget_expired(NOW + 3600 + 60, grace=120) == []
    forgotten = trust.revocations.forget_expired(NOW + 3600 + 121, grace=120)
    assert len(forgotten) == 1 and forgotten[0].args["revoke"] == proofs[1].cid
    assert trust.revocations.revokers(proofs[1].cid) == set()
    assert trust.revocations.revokers(lasting[1].cid) == {MIDDLE.did}  # never expires
    with pytest.raises(Revoked):
        trust.authorize(invocation_over(lasting), lasting, now=NOW)


def test_a_revocation_stored_with_its_targets_expiry_is_forgotten_after_a_restart_too(
        tmp_path: Path) -> None:
    own = delegate(NODE, ACTOR.did, "/dms", expiration=NOW + 3600)  # the node's grant
    store = TokenStore(tmp_path)
    trust = small_trust()
    trust.revocations.on_keep = store.put_revocation
    trust.revocations.add(revoke(NODE, own), until=own.exp)  # its issuer knows the end

    restarted = small_trust()
    store.load_into(restarted)
    assert restarted.revocations.revokers(own.cid) == {NODE.did}  # still revoked
    assert restarted.revocations.forget_expired(NOW + 3600 + 119, grace=120) == []
    assert len(restarted.revocations.forget_expired(NOW + 3600 + 121, grace=120)) == 1


def test_a_revocation_whose_stored_expiry_does_not_read_is_kept_for_good(
        tmp_path: Path) -> None:
    own = delegate(NODE, ACTOR.did, "/dms", expiration=NOW + 3600)
    store = TokenStore(tmp_path)
    revocation = revoke(NODE, own)
    store.put_revocation(revocation, NOW + 3600)
    (tmp_path / "revocations" / f"{revocation.cid}.until").write_bytes(b"\xffgarbage")
    restarted = small_trust()
    store.load_into(restarted)
    assert restarted.revocations.forget_expired(NOW + 10 * 3600, grace=120) == []
    assert restarted.revocations.revokers(own.cid) == {NODE.did}  # fail closed
    store.remove_revocation(revocation.cid)
    assert list((tmp_path / "revocations").iterdir()) == []


@pytest.mark.parametrize("expiration", [None, NOW + 3600])
def test_a_stored_expiry_that_lies_cannot_shorten_the_revocation_of_a_held_delegation(
        tmp_path: Path, expiration: int | None) -> None:
    """Hostile review: a `.until` file crafted or corrupted to an earlier time (here 0)
    beside the revocation of a delegation the node still holds: what the held
    delegation says of its own end decides, so the revocation is not forgotten while
    the delegation could still be used (for good when it never ends)."""
    held = delegate(ROOT, NODE.did, "/dms", expiration=expiration)
    store = TokenStore(tmp_path)
    store.put_delegation(held)
    revocation = revoke(ROOT, held)
    store.put_revocation(revocation, NOW + 3600)
    (tmp_path / "revocations" / f"{revocation.cid}.until").write_bytes(b"0")
    restarted = small_trust()
    store.load_into(restarted)
    assert restarted.revocations.forget_expired(NOW + 3000, grace=120) == []
    assert restarted.revocations.revokers(held.cid) == {ROOT.did}
    with pytest.raises(Revoked):
        restarted.authorize(invoke(NODE, ROOT.did, "/dms/x", {}, [held.cid],
                                   audience=NODE.did, expiration=None), [held], now=NOW + 3000)
