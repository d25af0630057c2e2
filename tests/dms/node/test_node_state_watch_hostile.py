"""Hostile review of the state-directory watch: garbage and torn files in the token
store and anchors file, as an operator's copy or a crash leaves them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dms.net import MemoryNetwork
from dms.node import open_node
from dms.node._anchors import anchors_path
from dms.node._state_watch import StateWatch
from ucan import SigningKey, delegate
from ucan.revocation import revoke
from ucan.store import SUFFIX, TokenStore

ORG = SigningKey.generate()


def bump(path: Path) -> None:
    stamp = os.stat(path).st_mtime_ns + 10_000_000
    os.utime(path, ns=(stamp, stamp))


async def test_garbage_under_a_tokens_name_neither_ends_the_node_nor_adds_a_grant(
        tmp_path: Path) -> None:
    state = tmp_path / "state"
    async with open_node(network=MemoryNetwork(), state_dir=state, anchors=[ORG.did]) as node:
        assert node.store is not None
        watch = StateWatch(node.trust, node.revocations, node.publish_revocation, state,
                           node.store, [ORG.did])
        await watch.check()
        held = set(node.trust.provided)
        grant = delegate(ORG, node.did, "/dms/deployment", expiration=None)
        other = delegate(ORG, SigningKey.generate().did, "/dms", expiration=None)
        store = node.store.directory
        store.mkdir(parents=True, exist_ok=True)
        (store / f"{grant.cid}{SUFFIX}").write_bytes(b"\x82\x00garbage")
        (store / f"{other.cid}{SUFFIX}").write_bytes(grant.envelope)  # not what it says
        (store / "revocations").mkdir(exist_ok=True)
        (store / "revocations" / f"{grant.cid}{SUFFIX}").write_bytes(b"\xff" * 64)
        anchors_path(state).write_bytes(b"\x00\xff" * 100)
        bump(store)
        await watch.check()
        assert set(node.trust.provided) == held
        assert node.trust.anchors == {ORG.did}


async def test_a_revocation_first_seen_torn_is_applied_once_the_file_is_whole(
        tmp_path: Path) -> None:
    state = tmp_path / "state"
    async with open_node(network=MemoryNetwork(), state_dir=state, anchors=[ORG.did]) as node:
        assert node.store is not None
        watch = StateWatch(node.trust, node.revocations, node.publish_revocation, state,
                           node.store, [ORG.did])
        await watch.check()
        grant = delegate(ORG, SigningKey.generate().did, "/dms/node/deployment",
                         expiration=None)
        revocation = revoke(ORG, grant)
        revocations = node.store.directory / "revocations"
        revocations.mkdir(parents=True, exist_ok=True)
        path = revocations / f"{revocation.cid}{SUFFIX}"
        path.write_bytes(revocation.envelope[:20])  # the copy is under way
        bump(revocations)
        await watch.check()
        path.write_bytes(revocation.envelope)  # and done
        bump(path)
        bump(revocations)
        await watch.check()
        assert ORG.did in node.trust.revocations.revokers(grant.cid)


def test_the_store_refuses_a_token_under_another_tokens_name(tmp_path: Path) -> None:
    store = TokenStore(tmp_path)
    grant = delegate(ORG, SigningKey.generate().did, "/dms", expiration=None)
    other = delegate(ORG, SigningKey.generate().did, "/dms", expiration=None)
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / f"{other.cid}{SUFFIX}").write_bytes(grant.envelope)
    with pytest.raises(Exception, match="not the one its name says"):
        store.delegation(other.cid)


async def test_a_garbage_grant_file_is_left_out_at_start_as_while_running(
        tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / "tokens").mkdir(parents=True)
    grant = delegate(ORG, SigningKey.generate().did, "/dms", expiration=None)
    (state / "tokens" / f"{grant.cid}{SUFFIX}").write_bytes(b"\x82garbage")
    async with open_node(network=MemoryNetwork(), state_dir=state) as node:
        assert grant.cid not in node.trust.provided


async def test_a_revocation_file_that_does_not_read_stops_the_start_naming_it(
        tmp_path: Path) -> None:
    # Starting without it could undo the revocation: the operator is told which file.
    from dms.node._state_lock import StateDirError

    state = tmp_path / "state"
    grant = delegate(ORG, SigningKey.generate().did, "/dms", expiration=None)
    revocation = revoke(ORG, grant)
    (state / "tokens" / "revocations").mkdir(parents=True)
    path = state / "tokens" / "revocations" / f"{revocation.cid}{SUFFIX}"
    path.write_bytes(revocation.envelope[:20])
    with pytest.raises(StateDirError, match=f"revocation file {path} does not read"):
        async with open_node(network=MemoryNetwork(), state_dir=state):
            pass
