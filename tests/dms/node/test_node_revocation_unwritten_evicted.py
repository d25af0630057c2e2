"""Hostile review of the disk-full revocation path: more kept revocations than
`MAX_UNWRITTEN` arrive while the disk is full (a peer in a chain this node validated
can sign revocations that matter, one per delegation it made). The ones pushed out of
the pending list are still applied in memory, but were never written: a restart after
the disk is freed must not forget them (a restart never undoes a revocation)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from dms.node import _revocations
from dms.node._revocations import RevocationKeeper
from ucan import SigningKey, TrustContext, delegate, revoke
from ucan.store import TokenStore


def test_revocations_evicted_from_the_unwritten_list_are_written_once_there_is_room(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_revocations, "MAX_UNWRITTEN", 2)
    owner = SigningKey.generate()
    tokens = tmp_path / "tokens"
    trust = TrustContext(owner.did)
    keeper = RevocationKeeper(trust, TokenStore(tokens), time.time)
    tokens.mkdir()
    (tokens / "revocations").write_text("in the way")  # the disk is full
    later = int(time.time()) + 7200
    grants = [delegate(owner, SigningKey.generate().did, "/x", expiration=later)
              for _ in range(5)]
    trust.provide(*grants)
    revocations = [revoke(owner, grant) for grant in grants]
    for revocation in revocations:
        keeper.apply(revocation)
    assert all(trust.revocations.kept(r) for r in revocations)

    (tokens / "revocations").unlink()  # room again
    keeper.forget_expired()  # the node's periodic pass
    on_disk = TokenStore(tokens).revocation_cids()
    assert on_disk == {r.cid for r in revocations}
    # ...with when what each revokes expires, so that they stay forgettable then
    assert all(TokenStore(tokens).revocation_until(r.cid) == later for r in revocations)

    restarted = TrustContext(owner.did)
    TokenStore(tokens).load_into(restarted)
    assert all(restarted.revocations.kept(r) for r in revocations)


def test_a_catch_up_that_meets_a_full_disk_again_is_tried_again_later(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_revocations, "MAX_UNWRITTEN", 1)
    owner = SigningKey.generate()
    tokens = tmp_path / "tokens"
    trust = TrustContext(owner.did)
    keeper = RevocationKeeper(trust, TokenStore(tokens), time.time)
    tokens.mkdir()
    blocker = tokens / "revocations"
    blocker.write_text("in the way")
    grants = [delegate(owner, SigningKey.generate().did, "/x", expiration=None)
              for _ in range(3)]
    trust.provide(*grants)
    revocations = [revoke(owner, grant) for grant in grants]
    for revocation in revocations:
        keeper.apply(revocation)
    keeper.forget_expired()  # still full: nothing written, nothing lost track of
    assert not TokenStore(tokens).revocation_cids()
    blocker.unlink()
    keeper.forget_expired()
    assert TokenStore(tokens).revocation_cids() == {r.cid for r in revocations}
