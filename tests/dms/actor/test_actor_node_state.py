"""What a node keeps: grants and revocations survive a restart; revocations spread."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from dms import RemoteError, open_node
from dms.actor import GRANT_LIFETIME
from dms.net import MemoryNetwork
from dms.node._revocations import EXPIRED_GRACE
from ucan import SigningKey, revoke


async def test_held_grants_and_revocations_survive_a_restart(tmp_path: Path, autojump_clock: object) -> None:
    network = MemoryNetwork()
    server_key, client_key = SigningKey.generate(), SigningKey.generate()
    with trio.fail_after(20):
        async with open_node(server_key, listen="memory://server", network=network) as server:
            @server.root.behavior("/demo/echo")
            async def echo(message):  # type: ignore[no-untyped-def]
                return message.args

            grant = server.grant(client_key.did, "/demo")
            async with open_node(client_key, network=network, bootstrap=["memory://server"],
                                 state_dir=tmp_path) as client:
                client.add_proofs(grant)
            # the same client, restarted from its state directory, still holds the grant
            async with open_node(client_key, network=network, bootstrap=["memory://server"],
                                 state_dir=tmp_path) as client:
                await client.mesh.wait_connected()
                assert await client.root.invoke(server.root.handle, "/demo/echo", {"a": 1}) == {"a": 1}
                await client.publish_revocation(revoke(server_key, grant))
            async with open_node(client_key, network=network, state_dir=tmp_path) as client:
                assert client.trust.revocations.revokers(grant.cid) == {server_key.did}


async def test_a_revocation_published_on_the_topic_is_applied_by_every_node(autojump_clock: object) -> None:
    network = MemoryNetwork()
    keys = [SigningKey.generate() for _ in range(3)]
    with trio.fail_after(20):
        async with open_node(keys[0], listen="memory://a", network=network) as a, \
                open_node(keys[1], listen="memory://b", network=network,
                          bootstrap=["memory://a"]) as b, \
                open_node(keys[2], network=network, bootstrap=["memory://b"]) as c:
            @a.root.behavior("/demo/echo")
            async def echo(message):  # type: ignore[no-untyped-def]
                return message.args

            grant = a.grant(c.did, "/demo")
            c.add_proofs(grant)
            await c.mesh.wait_connected(2)  # c learns a's address by peer exchange via b
            assert await c.root.invoke(a.root.handle, "/demo/echo", {"n": 1}) == {"n": 1}
            # a revokes its grant to c; the revocation floods a -> b -> c
            await a.publish_revocation(revoke(keys[0], grant))
            while c.metrics().get("revocations.applied", 0) < 1:
                await trio.sleep(0.01)
            assert b.trust.revocations.revokers(grant.cid) == {keys[0].did}
            # c still sends its best (revoked) chain, so a can say exactly why it fails
            with pytest.raises(RemoteError) as refused:
                await c.root.invoke(a.root.handle, "/demo/echo", {"n": 2})
            assert refused.value.name == "Revoked"


async def test_a_forged_revocation_is_dropped_and_counted(autojump_clock: object) -> None:
    network = MemoryNetwork()
    with trio.fail_after(10):
        async with open_node(listen="memory://a", network=network) as a:
            stranger = SigningKey.generate()
            forged = bytearray(revoke(stranger, a.grant(stranger.did, "/x")).envelope)
            forged[10] ^= 0xFF
            from ucan import encode_container

            await a.receive(encode_container([bytes(forged)]), topic="/nunet/revocation",
                            via=stranger.did)
            assert a.metrics()["dropped.bad-revocation"] == 1
            assert len(a.trust.revocations) == 0


async def test_strangers_revocations_are_not_kept_on_disk_and_a_flood_is_throttled(
        tmp_path: Path, autojump_clock: object) -> None:
    from ucan import encode_container

    network = MemoryNetwork()
    with trio.fail_after(20):
        # a stopped clock: no tokens refill while the flood arrives
        async with open_node(network=network, state_dir=tmp_path,
                             clock=lambda: 1_800_000_000.0) as node:
            stranger = SigningKey.generate()
            for n in range(600):
                junk = revoke(stranger, node.grant(stranger.did, f"/junk/n{n}"))
                await node.receive(encode_container([junk.envelope]),
                                   topic="/nunet/revocation", via=stranger.did)
            metrics = node.metrics()
            assert metrics["revocations.applied"] == 500  # the burst, then throttled
            assert metrics["dropped.revocation-rate"] == 100
            assert list((tmp_path / "tokens").glob("revocations/*")) == []


async def test_a_stopped_childs_grants_stay_revoked_after_a_restart_until_they_expire(
        tmp_path: Path, autojump_clock: object) -> None:
    network = MemoryNetwork()
    key = SigningKey.generate()
    skipped = [0.0]  # how far the wall clock is set forward

    def clock() -> float:
        return 1_800_000_000.0 + skipped[0] + trio.current_time()

    stored = tmp_path / "tokens" / "revocations"
    with trio.fail_after(20):
        async with open_node(key, network=network, state_dir=tmp_path, clock=clock) as node:
            child = await node.root.spawn("worker", commands=["/jobs"])  # no expiry of its own
            grants = child.delegations
            await child.stop()
        assert len(list(stored.glob("*.ucan"))) == len(grants)
        async with open_node(key, network=network, state_dir=tmp_path, clock=clock) as node:
            for grant in grants:
                assert grant.exp is not None and grant.exp <= clock() + GRANT_LIFETIME
                assert node.trust.revocations.revokers(grant.cid) == {key.did}
            latest = max(grant.exp or 0 for grant in grants)
            skipped[0] = latest + EXPIRED_GRACE - clock() - 5  # just before retention ends
            assert node.revocations.forget_expired() == 0
            skipped[0] += 10
            assert node.revocations.forget_expired() == len(grants)
            assert all(node.trust.revocations.revokers(g.cid) == frozenset() for g in grants)
        assert list(stored.iterdir()) == []  # the files went too


async def test_an_anchors_revocation_of_a_grant_to_a_third_party_survives_a_restart_and_a_flood(
        tmp_path: Path, autojump_clock: object) -> None:
    """The organisation (an anchor) revokes what it granted some other provider: this
    node holds nothing of it, yet chains rooted at the anchor that it accepts may pass
    through that grant. The revocation must outlive a restart and a junk flood."""
    from dms.actor import encode_message
    from ucan import delegate

    network = MemoryNetwork()
    org, provider, key = SigningKey.generate(), SigningKey.generate(), SigningKey.generate()
    granted = delegate(org, provider.did, "/dms/deployment", expiration=None)
    with trio.fail_after(20):
        async with open_node(key, network=network, state_dir=tmp_path,
                             anchors=[org.did]) as node:
            node.revocations.receive(encode_message(revoke(org, granted)), via="did:key:peer")
        async with open_node(key, network=network, state_dir=tmp_path,
                             anchors=[org.did]) as node:
            assert node.trust.revocations.revokers(granted.cid) == {org.did}
            node.trust.revocations.capacity = 50
            junk = SigningKey.generate()
            for n in range(200):
                node.trust.revocations.add(revoke(junk, delegate(junk, junk.did, f"/j/n{n}",
                                                                 expiration=None)))
            assert node.trust.revocations.revokers(granted.cid) == {org.did}
