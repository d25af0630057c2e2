"""A running node takes in what `dms cap` writes into its state directory."""

from __future__ import annotations

import os
from pathlib import Path

import trio

from dms.net import MemoryNetwork
from dms.node import open_node
from dms.node._anchors import anchors_path, write_anchors
from dms.node._state_watch import STATE_CHECK, StateWatch
from ucan import SigningKey
from ucan.revocation import revoke
from ucan.store import TokenStore

FLAG = SigningKey.generate().did
ORG = SigningKey.generate().did


def bump(path: Path) -> None:
    """Make sure a change is seen even within the file system's time resolution."""
    stamp = os.stat(path).st_mtime_ns + 10_000_000
    os.utime(path, ns=(stamp, stamp))


async def test_anchors_written_while_running_count_and_removed_ones_stop(tmp_path: Path) -> None:
    state = tmp_path / "state"
    async with open_node(network=MemoryNetwork(), state_dir=state, anchors=[FLAG]) as node:
        assert node.store is not None
        watch = StateWatch(node.trust, node.revocations, node.publish_revocation, state,
                           node.store, [FLAG])
        await watch.check()
        write_anchors(state, (ORG, FLAG))
        bump(anchors_path(state))
        await watch.check()
        assert node.trust.trusts_subject(ORG)
        write_anchors(state, ())
        bump(anchors_path(state))
        await watch.check()
        assert not node.trust.trusts_subject(ORG)
        assert node.trust.trusts_subject(FLAG)  # a flag is not the file's to take away


async def test_a_bad_anchors_file_leaves_the_anchors_as_they_were(tmp_path: Path) -> None:
    state = tmp_path / "state"
    write_anchors(state, (ORG,))
    async with open_node(network=MemoryNetwork(), state_dir=state) as node:
        assert node.store is not None
        watch = StateWatch(node.trust, node.revocations, node.publish_revocation, state,
                           node.store, [])
        await watch.check()
        anchors_path(state).write_text("[oops")
        bump(anchors_path(state))
        await watch.check()
        assert node.trust.trusts_subject(ORG)


async def test_a_grant_stored_while_running_is_held_and_makes_a_market(tmp_path: Path) -> None:
    state = tmp_path / "state"
    async with open_node(network=MemoryNetwork(), state_dir=state) as node:
        assert node.store is not None
        watch = StateWatch(node.trust, node.revocations, node.publish_revocation, state,
                           node.store, [])
        await watch.check()
        market = node.grant(node.did, "/dms/deployment")
        TokenStore(state / "tokens").put_delegation(market)  # as `dms cap grant` does
        bump(state / "tokens")
        await watch.check()
        assert market.cid in node.trust.provided
        assert node.describe().roles == ("orchestrator",)


async def test_a_revocation_stored_while_running_is_applied(tmp_path: Path) -> None:
    state = tmp_path / "state"
    friend = SigningKey.generate().did
    async with open_node(network=MemoryNetwork(), state_dir=state) as node:
        assert node.store is not None
        given = node.grant(friend, "/dms/node/info")
        watch = StateWatch(node.trust, node.revocations, node.publish_revocation, state,
                           node.store, [])
        await watch.check()
        TokenStore(state / "tokens").put_revocation(revoke(node.key, given.cid))
        bump(state / "tokens" / "revocations")
        await watch.check()
        assert node.trust.revocations.revokes(given.cid, [node.did])


async def test_the_node_looks_by_itself(tmp_path: Path) -> None:
    state = tmp_path / "state"
    async with open_node(network=MemoryNetwork(), state_dir=state) as node:
        write_anchors(state, (ORG,))
        with trio.fail_after(STATE_CHECK * 5):
            while not node.trust.trusts_subject(ORG):
                await trio.sleep(0.05)


async def test_the_watch_forgets_files_that_went_so_what_it_remembers_stays_bounded(
        tmp_path: Path) -> None:
    state = tmp_path / "state"
    async with open_node(network=MemoryNetwork(), state_dir=state) as node:
        store = node.store
        assert store is not None
        watch = StateWatch(node.trust, node.revocations, node.publish_revocation, state,
                           store, [])
        await watch.check()
        stranger = SigningKey.generate()
        grants = [node.grant(stranger.did, f"/jobs/n{n}") for n in range(3)]
        for grant in grants:
            store.put_delegation(grant)
            store.put_revocation(revoke(node.key, grant), grant.exp)
        bump(store.directory)
        bump(store.directory / "revocations")
        await watch.check()
        assert {g.cid for g in grants} <= watch.delegations and len(watch.revocations) == 3
        for grant in grants:  # what a deployment's end and forget_expired do
            store.remove_delegation(grant.cid)
        for cid in store.revocation_cids():
            store.remove_revocation(cid)
        bump(store.directory)
        bump(store.directory / "revocations")
        await watch.check()
        assert not {g.cid for g in grants} & watch.delegations
        assert watch.revocations == set()
