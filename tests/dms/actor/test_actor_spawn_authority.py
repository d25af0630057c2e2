"""A child never exceeds its parent: commands within the parent's, expiry no later, and
the actor itself stops at its expiry. An actor can delegate over its own id."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from dms.actor import ActorStopped, ExceedsParent, InvalidBehavior, RemoteError
from dms.testing import grant, network, settle

__all__ = ["network"]


async def test_a_grandchild_cannot_be_given_more_commands_than_its_parent(network,
                                                                        autojump_clock):
    node = network[0]
    child = await node.root.spawn("jobs", commands=["/jobs"], lifetime=60)
    for wider in (["/"], ["/admin"], ["/jobs", "/admin/reset"], ["/jobsx"]):
        with pytest.raises(ExceedsParent):
            await child.spawn(commands=wider)
    assert set(node.actors) == {node.did, child.id}


async def test_a_grandchild_expires_no_later_than_its_parent(network, autojump_clock):
    node = network[0]
    child = await node.root.spawn("jobs", commands=["/jobs"], lifetime=60)
    forever = await child.spawn(commands=["/jobs/run"])  # no lifetime: its parent's
    longer = await child.spawn(commands=["/jobs/run"], lifetime=3600)
    shorter = await child.spawn(commands=["/jobs/run"], lifetime=10)
    assert child.authority.expires is not None
    assert forever.authority.expires == child.authority.expires
    assert longer.authority.expires == child.authority.expires
    assert shorter.authority.expires == child.authority.expires - 50
    for grandchild in (forever, longer, shorter):
        assert grandchild.delegations
        assert all(d.exp is not None and d.exp <= child.authority.expires
                   for d in grandchild.delegations)
        assert {d.cmd for d in grandchild.delegations} == {"/jobs/run"}


async def test_spawning_names_its_commands(network, autojump_clock):
    node = network[0]
    bare = await node.root.spawn(commands=[])  # acts on its own authority only
    assert bare.delegations == ()
    with pytest.raises(TypeError):
        await node.root.spawn(commands="/jobs")  # type: ignore[arg-type]
    with pytest.raises(InvalidBehavior):
        await node.root.spawn(commands=["/Jobs"])


async def test_a_grandchild_invoking_outside_its_commands_is_refused(network, autojump_clock):
    node, other = network[0], network[1]
    ran: list[str] = []

    @other.root.behavior("/")
    async def anything(message: Any) -> Any:
        ran.append(message.command)
        return "done"

    grant(other, node, "/")  # the node itself may do anything on `other`
    child = await node.root.spawn("jobs", commands=["/jobs"], lifetime=60)
    grandchild = await child.spawn(commands=["/jobs/run"])
    with trio.fail_after(10):
        assert await grandchild.invoke(other.root.handle, "/jobs/run") == "done"
        with pytest.raises(RemoteError) as refused:
            await grandchild.invoke(other.root.handle, "/admin/reset")
    assert refused.value.name == "InvalidClaim"
    assert ran == ["/jobs/run"]


async def test_an_actor_stops_at_its_expiry_and_so_do_its_children(network, autojump_clock):
    node = network[0]
    child = await node.root.spawn("jobs", commands=["/jobs"], lifetime=60)
    grandchild = await child.spawn(commands=["/jobs/run"])
    await network.advance(59)
    assert child.running and grandchild.running
    await network.advance(2)
    assert not child.running and not grandchild.running
    assert set(node.actors) == {node.did}
    with pytest.raises(ActorStopped):
        await child.spawn(commands=["/jobs"])


async def test_an_actor_delegation_lets_a_stranger_invoke_that_actor_only(network,
                                                                        autojump_clock):
    orchestrator_node, provider = network[0], network[1]
    orchestrator = await orchestrator_node.root.spawn("o1", commands=["/dms/deployment"],
                                                      lifetime=600)
    other = await orchestrator_node.root.spawn("o2", commands=["/dms/deployment"],
                                               lifetime=600)
    bids: list[str] = []
    for actor in (orchestrator, other):
        @actor.behavior("/dms/deployment/bid")
        async def bid(message: Any, actor: Any = actor) -> Any:
            bids.append(actor.handle.inbox)
            return "thanks"

    with trio.fail_after(10):
        with pytest.raises(RemoteError) as refused:  # no authority: the node never gave any
            await provider.root.invoke(orchestrator.handle, "/dms/deployment/bid")
        assert refused.value.name in {"InvalidClaim", "InvalidSubject"}
        answer = orchestrator.delegate(provider.did, "/dms/deployment/bid", lifetime=60)
        assert answer.sub == orchestrator.id
        assert await provider.root.invoke(orchestrator.handle, "/dms/deployment/bid",
                                          proofs=[answer]) == "thanks"
        # The same delegation proves nothing on another actor of the same node.
        with pytest.raises(RemoteError) as elsewhere:
            await provider.root.invoke(other.handle, "/dms/deployment/bid",
                                       subject=orchestrator.id, proofs=[answer])
        assert elsewhere.value.name == "InvalidSubject"
    assert bids == ["o1"]


async def test_an_actor_delegation_never_outlives_the_actor(network, autojump_clock):
    node = network[0]
    actor = await node.root.spawn("short", commands=["/jobs"], lifetime=30)
    assert actor.authority.expires is not None
    assert actor.delegate(network[1].did, "/x", lifetime=3600).exp == actor.authority.expires
    assert actor.delegate(network[1].did, "/x").exp == actor.authority.expires
    assert actor.delegate(network[1].did, "/x", lifetime=5).exp == int(node.clock()) + 5


async def test_a_main_task_runs_in_the_actor_and_its_end_stops_the_actor(network,
                                                                       autojump_clock):
    node = network[0]
    steps: list[str] = []

    async def main(actor: Any) -> None:
        steps.append(f"started {actor.handle.inbox}")
        await trio.sleep(5)
        steps.append("done")

    child = await node.root.spawn("phases", commands=["/jobs"], lifetime=600, main=main)
    await settle()
    assert steps == ["started phases"] and child.running
    await network.advance(5)
    assert steps == ["started phases", "done"]
    assert not child.running and child.failure is None
    assert child.id not in node.actors


async def test_a_failing_main_task_stops_its_actor_not_the_parent(network, autojump_clock):
    node = network[0]

    async def main(actor: Any) -> None:
        raise RuntimeError("phase failed")

    child = await node.root.spawn("broken", commands=["/jobs"], lifetime=600, main=main)
    with trio.fail_after(10):
        await child.wait_stopped()
    assert isinstance(child.failure, RuntimeError)
    assert node.root.running
    sibling = await node.root.spawn("fine", commands=["/jobs"], lifetime=600)
    assert sibling.running


async def test_stopping_an_actor_cancels_its_main_task(network, autojump_clock):
    node = network[0]
    cancelled = trio.Event()

    async def main(actor: Any) -> None:
        try:
            await trio.sleep_forever()
        finally:
            cancelled.set()

    child = await node.root.spawn("forever", commands=["/jobs"], main=main)
    with trio.fail_after(10):
        await child.stop()
    assert cancelled.is_set() and child.failure is None


async def test_a_lasting_child_has_the_same_id_after_a_restart_and_only_there(autojump_clock):
    from dms.net import MemoryNetwork
    from dms.node import open_node
    from ucan import SigningKey

    key = SigningKey.generate()
    network = MemoryNetwork()
    async with open_node(key, network=network) as node:
        first = await node.root.spawn("orchestrator/x", commands=["/jobs"], lasting=True)
        other = await node.root.spawn("orchestrator/y", commands=["/jobs"], lasting=True)
        with pytest.raises(ValueError, match="taken"):
            await node.root.spawn("orchestrator/x", commands=["/jobs"], lasting=True)
        fresh = await node.root.spawn("orchestrator/z", commands=["/jobs"])
        ids = first.id, other.id, fresh.id
    async with open_node(key, network=network) as node:
        again = await node.root.spawn("orchestrator/x", commands=["/jobs"], lasting=True)
        assert again.id == ids[0] and len(set(ids)) == 3
        assert again.delegations[0].cid not in {d.cid for d in first.delegations}
    async with open_node(network=network) as stranger:
        elsewhere = await stranger.root.spawn("orchestrator/x", commands=["/jobs"], lasting=True)
        assert elsewhere.id != ids[0]
