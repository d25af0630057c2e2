"""The token store: delegations and revocations by CID, checked when read."""

from __future__ import annotations

from pathlib import Path

import pytest

from ucan import MalformedToken, Revoked, SigningKey, TrustContext, delegate, invoke, revoke
from ucan.store import TokenNotFound, TokenStore

NOW = 1_750_000_000
ROOT, ACTOR = SigningKey.from_seed(b"\x21" * 32), SigningKey.from_seed(b"\x22" * 32)


def test_stored_tokens_come_back_and_feed_a_trust_context(tmp_path: Path) -> None:
    store = TokenStore(tmp_path)
    grant = delegate(ROOT, ACTOR.did, "/dms", expiration=None)
    assert store.put(grant.envelope) == grant.cid
    store.put_delegation(grant)  # idempotent
    assert store.delegation(grant.cid) == grant
    assert grant.cid in store and list(store.delegations()) == [grant]
    revocation = revoke(ROOT, grant)
    assert store.put(revocation.envelope) == revocation.cid
    assert list(store.revocations()) == [revocation]

    trust = TrustContext(ROOT.did)
    store.load_into(trust)
    assert trust.find_chain(ACTOR.did, "/dms", ROOT.did, now=NOW) is None  # revoked
    inv = invoke(ACTOR, ROOT.did, "/dms", {}, [grant.cid], expiration=None)
    with pytest.raises(Revoked):
        trust.authorize(inv, trust.provided, now=NOW)


def test_a_renamed_token_file_is_refused(tmp_path: Path) -> None:
    store = TokenStore(tmp_path)
    one = delegate(ROOT, ACTOR.did, "/one", expiration=None)
    two = delegate(ROOT, ACTOR.did, "/two", expiration=None)
    store.put_delegation(one)
    (tmp_path / f"{one.cid}.ucan").write_bytes(two.envelope)
    with pytest.raises(MalformedToken, match="not the one its name says"):
        store.delegation(one.cid)


def test_a_missing_token_is_named_and_junk_is_refused(tmp_path: Path) -> None:
    store = TokenStore(tmp_path)
    grant = delegate(ROOT, ACTOR.did, "/dms", expiration=None)
    with pytest.raises(TokenNotFound):
        store.delegation(grant.cid)
    with pytest.raises(MalformedToken):
        store.put(b"\x82\x00\x00")
    with pytest.raises(MalformedToken):  # an invocation that is not a revocation
        store.put(invoke(ACTOR, ACTOR.did, "/x", {}, expiration=None).envelope)
    assert list(tmp_path.iterdir()) == []


def test_stored_cids_are_listed_by_file_name_and_read_one_by_one(tmp_path: Path) -> None:
    store = TokenStore(tmp_path)
    grant = delegate(ROOT, ACTOR.did, "/dms", expiration=None)
    revocation = revoke(ROOT, grant)
    store.put_delegation(grant)
    store.put_revocation(revocation)
    (tmp_path / "not-a-cid.ucan").write_bytes(grant.envelope)  # never taken for a token
    assert store.delegation_cids() == {grant.cid}
    assert store.revocation_cids() == {revocation.cid}
    assert store.revocation(revocation.cid) == revocation
    with pytest.raises(TokenNotFound):
        store.revocation(grant.cid)


def test_a_revocation_under_another_name_is_refused(tmp_path: Path) -> None:
    store = TokenStore(tmp_path)
    first, second = (revoke(ROOT, delegate(ROOT, ACTOR.did, cmd, expiration=None))
                     for cmd in ("/a", "/b"))
    store.put_revocation(first)
    (tmp_path / "revocations" / f"{second.cid}.ucan").write_bytes(first.envelope)
    with pytest.raises(MalformedToken, match="not the one its name says"):
        store.revocation(second.cid)
