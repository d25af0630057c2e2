"""Broadcast: a topic's subscribers on every node get an authorized publication exactly
once, through the whole admission pipeline; an unauthorized one reaches nobody."""

from __future__ import annotations

from collections import Counter
from contextlib import AsyncExitStack
from typing import Any

import trio

from dms.node import DEPLOYMENT_TOPIC, Node, open_node
from dms.testing import open_testbed, settle
from ucan import Delegation, SigningKey, delegate

ORG = SigningKey.from_seed(b"\x0f" * 32)  # the organisation every node anchors
REQUEST = "/dms/deployment/request"


def org_grant(node: Node, command: str = REQUEST, topic: str = DEPLOYMENT_TOPIC) -> Delegation:
    """What `ucan grant` from the org gives a node: REQUEST, on one topic only."""
    delegation = delegate(ORG, node.did, command, policy=[["==", ".topic", topic]],
                          expiration=int(node.clock()) + 3600)
    node.add_proofs(delegation)
    return delegation


def listen(nodes: list[Node], topic: str = DEPLOYMENT_TOPIC) -> Counter[str]:
    """Subscribe each node's root to `topic`; count deliveries per node DID."""
    heard: Counter[str] = Counter()
    for node in nodes:
        def make(node: Node) -> Any:
            async def on_request(message: Any) -> None:
                assert message.topic == topic
                assert message.chain.subject == ORG.did  # it went through chain validation
                heard[node.did] += 1
            return on_request

        node.root.behavior(REQUEST)(make(node))
        node.root.subscribe(topic)
    return heard


async def test_a_broadcast_reaches_each_subscribing_node_exactly_once(autojump_clock):
    async with open_testbed(4, anchors=[[ORG.did]] * 4) as net:
        publisher, subscribers = net[0], list(net)[1:]
        heard = listen(subscribers)
        org_grant(publisher)
        for job in range(3):
            await publisher.root.broadcast(DEPLOYMENT_TOPIC, REQUEST, {"job": job},
                                           subject=ORG.did)
        await settle()
        assert heard == Counter({node.did: 3 for node in subscribers})
        for node in subscribers:
            assert node.metrics()["net.mesh.duplicates"] >= 1  # copies came, and were dropped


async def test_a_broadcast_without_a_grant_reaches_nobody(autojump_clock):
    async with open_testbed(4, anchors=[[ORG.did]] * 4) as net:
        intruder, subscribers = net[0], list(net)[1:]
        heard = listen(subscribers)
        await intruder.root.broadcast(DEPLOYMENT_TOPIC, REQUEST, {"job": 1}, subject=ORG.did)
        await settle()
        assert heard == Counter()
        for node in subscribers:
            assert node.metrics()["refused.InvalidClaim"] == 1


async def test_a_grant_for_one_topic_does_not_carry_a_broadcast_on_another(autojump_clock):
    async with open_testbed(3, anchors=[[ORG.did]] * 3) as net:
        publisher, subscribers = net[0], list(net)[1:]
        heard = listen(subscribers, topic="/nunet/other")
        org_grant(publisher, topic=DEPLOYMENT_TOPIC)
        await publisher.root.broadcast("/nunet/other", REQUEST, {"job": 1}, subject=ORG.did)
        await settle()
        assert heard == Counter()
        for node in subscribers:
            assert node.metrics()["refused.MatchError"] == 1


async def test_a_broadcast_about_a_subject_a_node_does_not_anchor_is_refused_there(
        autojump_clock):
    async with open_testbed(3, anchors=[[ORG.did], [ORG.did], []]) as net:
        publisher, trusting, sceptic = net[0], net[1], net[2]
        heard = listen([trusting, sceptic])
        org_grant(publisher)
        await publisher.root.broadcast(DEPLOYMENT_TOPIC, REQUEST, {"job": 1}, subject=ORG.did)
        await settle()
        assert heard == Counter({trusting.did: 1})
        assert sceptic.metrics()["refused.InvalidSubject"] == 1


async def test_a_broadcast_over_websockets_reaches_three_nodes_once():
    with trio.fail_after(20):
        async with AsyncExitStack() as stack:
            first = await stack.enter_async_context(
                open_node(listen="ws://127.0.0.1:0", anchors=[ORG.did]))
            assert first.address is not None
            others = [await stack.enter_async_context(
                open_node(listen="ws://127.0.0.1:0", bootstrap=[first.address],
                          anchors=[ORG.did])) for _ in range(3)]
            for node in [first, *others]:
                assert node.mesh is not None
                await node.mesh.wait_connected(3)  # peer exchange completes the mesh
            heard = listen(others)
            org_grant(first)
            await first.root.broadcast(DEPLOYMENT_TOPIC, REQUEST, {"job": 1}, subject=ORG.did)
            while sum(heard.values()) < 3:
                await trio.sleep(0.01)
            await trio.sleep(0.2)  # room for a duplicate to show up, if one were coming
            assert heard == Counter({node.did: 1 for node in others})
