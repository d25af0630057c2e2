"""A revocation the node cannot write to its state directory (a full disk; here the
revocations directory is blocked by a file) is applied all the same, counted and
logged, and written once there is room: the node runs on instead of ending on the
write (an actor stopping revokes its grant, and that write used to end the node)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from dms.node._revocations import RevocationKeeper
from ucan import SigningKey, TrustContext, delegate, revoke
from ucan.store import TokenStore


def test_a_revocation_that_cannot_be_written_is_applied_and_written_once_there_is_room(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    owner, other = SigningKey.generate(), SigningKey.generate()
    tokens = tmp_path / "tokens"
    trust = TrustContext(owner.did)
    keeper = RevocationKeeper(trust, TokenStore(tokens), time.time)
    grant = delegate(owner, other.did, "/x", expiration=None)
    trust.provide(grant)
    tokens.mkdir()
    (tokens / "revocations").write_text("in the way")
    revocation = revoke(owner, grant)
    with caplog.at_level(logging.ERROR, "dms.node"):
        keeper.apply(revocation)
    assert trust.revocations.kept(revocation)
    assert keeper.counters["revocations.unwritten"] == 1
    assert f"cannot be kept in {tokens}" in caplog.text

    (tokens / "revocations").unlink()
    keeper.forget_expired()  # the node's periodic pass writes what is pending
    assert [p.name.startswith(str(revocation.cid)) for p in (tokens / "revocations").iterdir()] == [True]
    assert keeper.counters["revocations.unwritten"] == 1
