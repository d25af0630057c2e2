"""A revocation carries its own `exp`: past it every node forgets it, even one that never
saw the revoked delegation (and so cannot know when that expires). Only its signer
chooses the date, and an earlier one only weakens its own revocation."""

from __future__ import annotations

from pathlib import Path

import pytest

from ucan import REVOKE, Revoked, SigningKey, TrustContext, delegate, invoke, revoke
from ucan.codec import CID
from ucan.store import TokenStore

NOW = 1_750_000_000
ROOT, NODE, ACTOR, STRANGER = (SigningKey.from_seed(bytes([n]) * 32) for n in range(41, 45))


def dated_revocation(revoker: SigningKey, target: CID, exp: int | None) -> object:
    return invoke(revoker, revoker.did, REVOKE, {"revoke": target}, expiration=exp, nonce=b"")


def test_a_revocation_of_a_delegation_never_seen_here_is_forgotten_after_its_exp() -> None:
    trust = TrustContext(NODE.did, anchors=[ROOT.did])
    unseen = CID.for_bytes(b"a grant some other node gave")
    trust.revocations.add(dated_revocation(STRANGER, unseen, NOW + 100))
    assert trust.revocations.revokers(unseen) == {STRANGER.did}
    assert trust.revocations.forget_expired(NOW + 100, grace=0) == []
    assert trust.revocations.revokers(unseen) == {STRANGER.did}  # not before its exp
    trust.revocations.forget_expired(NOW + 101, grace=0)
    assert trust.revocations.revokers(unseen) == set()
    assert len(trust.revocations) == 0


def test_an_undated_revocation_of_an_unseen_delegation_stays() -> None:
    trust = TrustContext(NODE.did, anchors=[ROOT.did])
    unseen = CID.for_bytes(b"undated")
    trust.revocations.add(revoke(STRANGER, unseen))
    trust.revocations.forget_expired(NOW + 10**6, grace=0)
    assert trust.revocations.revokers(unseen) == {STRANGER.did}


def test_a_kept_revocation_is_forgotten_at_its_own_exp_although_its_target_never_expires(
        ) -> None:
    grant = delegate(ROOT, NODE.did, "/dms", expiration=None)
    trust = TrustContext(NODE.did, anchors=[ROOT.did])
    revocation = dated_revocation(ROOT, grant.cid, NOW + 50)
    trust.revocations.add(revocation)
    assert trust.revocations.kept(revocation)  # an anchor's: it matters here
    assert trust.revocations.forget_expired(NOW + 49, grace=3600) == []
    assert trust.revocations.forget_expired(NOW + 51, grace=3600) == [revocation]
    assert trust.revocations.revokers(grant.cid) == set()


def test_a_restart_keeps_a_dated_revocation_until_its_exp(tmp_path: Path) -> None:
    grant = delegate(NODE, ACTOR.did, "/dms", expiration=None)
    store = TokenStore(tmp_path)
    trust = TrustContext(NODE.did, anchors=[ROOT.did])
    trust.revocations.on_keep = store.put_revocation
    revocation = dated_revocation(NODE, grant.cid, NOW + 300)
    trust.revocations.add(revocation)  # no `until`: the target's end is unknown

    restarted = TrustContext(NODE.did, anchors=[ROOT.did])
    store.load_into(restarted)
    assert restarted.revocations.forget_expired(NOW + 299, grace=0) == []
    invocation = invoke(ACTOR, NODE.did, "/dms/x", {}, [grant.cid], audience=NODE.did,
                        expiration=None)
    with pytest.raises(Revoked):
        restarted.authorize(invocation, [grant], now=NOW + 299)
    assert restarted.revocations.forget_expired(NOW + 301, grace=0) == [revocation]


def test_forgetting_a_dated_record_leaves_a_kept_revocation_of_the_same_pair_in_force(
        ) -> None:
    grant = delegate(ROOT, NODE.did, "/dms", expiration=None)
    trust = TrustContext(NODE.did, anchors=[ROOT.did])
    trust.revocations.keeps = lambda revocation, target: revocation.exp is None
    trust.revocations.add(dated_revocation(ROOT, grant.cid, NOW + 10))  # bounded part
    trust.revocations.add(revoke(ROOT, grant))  # kept, undated
    trust.revocations.forget_expired(NOW + 11, grace=0)
    assert trust.revocations.revokers(grant.cid) == {ROOT.did}
