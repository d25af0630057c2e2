"""The actor system without a mesh: a fake carrier, sans-IO routing decisions, the
per-link-peer budget spent before any decoding."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
import trio

from dms.actor import (
    Accept,
    ActorSystem,
    AdmissionPolicy,
    AnswerRefusal,
    Deliver,
    Ignore,
    RateLimit,
    Refuse,
    RemoteError,
    ReplyIn,
    Router,
    Settle,
    Undeliverable,
    encode_message,
)
from dms.actor import Envelope as Envelope
from ucan import Expired, InvalidClaim, SigningKey, TrustContext, delegate, invoke

NOW = 1_800_000_000.0


@attrs.define
class FakeCarrier:
    """Frames go straight into the other system's receive; nothing else."""

    peer_id: str
    systems: dict[str, ActorSystem]
    sent: list[tuple[str, bytes]] = attrs.Factory(list)
    topics: set[str] = attrs.Factory(set)

    async def send(self, peer: str, data: bytes) -> None:
        self.sent.append((peer, data))
        if peer not in self.systems:
            raise Undeliverable(peer, "no such peer")
        await self.systems[peer].receive(data, topic=None, via=self.peer_id)

    async def publish(self, topic: str, data: bytes) -> None:
        for peer, system in self.systems.items():
            if peer != self.peer_id:
                await system.receive(data, topic=topic, via=self.peer_id)

    def subscribe(self, topic: str) -> None:
        self.topics.add(topic)


def system(key: SigningKey, systems: dict[str, ActorSystem], **kwargs: Any) -> ActorSystem:
    made = ActorSystem(key, FakeCarrier(key.did, systems), TrustContext(key.did),
                       clock=lambda: NOW, **kwargs)
    systems[key.did] = made
    return made


async def test_two_actor_systems_talk_over_a_fake_carrier() -> None:
    systems: dict[str, ActorSystem] = {}
    shop, customer = system(SigningKey.generate(), systems), system(SigningKey.generate(),
                                                                   systems)

    @shop.root.behavior("/shop/order")
    async def order(message: Any) -> Any:
        return {"ordered": message.args["amount"]}

    customer.trust.provide(delegate(shop.key, customer.did, "/shop", expiration=None))
    async with trio.open_nursery() as nursery:
        await nursery.start(shop.run)
        await nursery.start(customer.run)
        with trio.fail_after(5):
            assert await customer.root.invoke(shop.root.handle, "/shop/order",
                                              {"amount": 2}) == {"ordered": 2}
        nursery.cancel_scope.cancel()
    assert shop.metrics()["accepted"] == 1 and customer.metrics()["accepted"] == 0


async def test_an_unreachable_peer_is_the_callers_error() -> None:
    systems: dict[str, ActorSystem] = {}
    lonely = system(SigningKey.generate(), systems)
    away = SigningKey.generate()
    async with trio.open_nursery() as nursery:
        await nursery.start(lonely.run)
        with pytest.raises(Undeliverable):
            await lonely.root.send(lonely.root.handle.__class__(away.did, away.did, away.did),
                                   "/x")
        nursery.cancel_scope.cancel()


async def test_a_flooding_link_peer_is_cut_off_before_any_decoding() -> None:
    systems: dict[str, ActorSystem] = {}
    budget = AdmissionPolicy(link_budget=RateLimit(rate=1.0, burst=3.0))
    target = system(SigningKey.generate(), systems, policy=budget)
    for n in range(10):
        await target.receive(b"\x40junk" + bytes([n]), topic=None, via="did:key:flood")
    await target.receive(b"\x40junk", topic=None, via="did:key:quiet")
    metrics = target.metrics()
    assert metrics["dropped.link-budget"] == 7
    assert metrics["received"] == 4  # three from the flood's burst, one from the quiet peer


def signed_request(sender: SigningKey, audience: str, *, reply: bool = True) -> Any:
    handle = {"id": sender.did, "did": sender.did, "peer": sender.did, "inbox": "root"}
    return invoke(sender, audience, "/x", {}, [], audience=audience, expiration=int(NOW) + 30,
                  issued_at=int(NOW), meta={"from": handle, "reply": reply})


def test_a_refusal_is_answered_once_and_only_when_a_reply_is_wanted() -> None:
    node, stranger = SigningKey.generate(), SigningKey.generate()
    router = Router(node.did, skew=60)
    request = signed_request(stranger, node.did)
    refusal = Refuse(Envelope(request, {}), InvalidClaim("no grant"))
    first = router.route(refusal, via="did:key:link", now=NOW, is_local={node.did}.__contains__,
                         subscribers=lambda _: [])
    assert first == [AnswerRefusal(node.did, request, "InvalidClaim", "no grant",
                                   first[0].to)]  # type: ignore[union-attr]
    assert first[0].to.peer == "did:key:link"  # type: ignore[union-attr]  # via, not claimed
    again = router.route(refusal, via="did:key:link", now=NOW, is_local=lambda _: True,
                         subscribers=lambda _: [])
    assert again == [Ignore()]
    silent = Refuse(Envelope(signed_request(stranger, node.did, reply=False), {}),
                    InvalidClaim("no grant"))
    assert router.route(silent, via="x", now=NOW, is_local=lambda _: True,
                        subscribers=lambda _: []) == [Ignore()]


def test_a_reply_settles_only_its_request_from_its_audience_once() -> None:
    node, peer, other = SigningKey.generate(), SigningKey.generate(), SigningKey.generate()
    router = Router(node.did, skew=60)
    request = signed_request(node, peer.did)
    router.expect(request.cid, responder=peer.did, node=peer.did)

    def reply_from(key: SigningKey, ran: Any) -> ReplyIn:
        answer = invoke(key, key.did, "/dms/actor/reply", {"ran": ran, "out": {"ok": 1}},
                        audience=node.did, expiration=int(NOW) + 30)
        return ReplyIn(Envelope(answer, {}))

    route = lambda verdict: router.route(verdict, via="v", now=NOW,  # noqa: E731
                                         is_local=lambda _: True, subscribers=lambda _: [])
    assert route(reply_from(other, request.cid)) == [Ignore("dropped.misattributed-reply")]
    assert route(reply_from(peer, signed_request(node, peer.did).cid)) == [
        Ignore("dropped.unexpected-reply")]
    assert route(reply_from(peer, request.cid)) == [Settle(request.cid, {"ok": 1})]
    assert route(reply_from(peer, request.cid)) == [Ignore("dropped.unexpected-reply")]
    assert router.outstanding == 1
    router.forget(request.cid)
    assert router.outstanding == 0


def test_a_reply_refused_for_its_time_fails_its_request_naming_the_clocks_and_nothing_else(
        ) -> None:
    node, peer, other = SigningKey.generate(), SigningKey.generate(), SigningKey.generate()
    router = Router(node.did, skew=60)
    request = signed_request(node, peer.did)
    router.expect(request.cid, responder=peer.did, node=peer.did)

    def refused(key: SigningKey, ran: Any, error: Any) -> Refuse:
        answer = invoke(key, key.did, "/dms/actor/reply", {"ran": ran, "out": {"ok": 1}},
                        audience=node.did, expiration=int(NOW) - 300)
        return Refuse(Envelope(answer, {}), error)

    route = lambda verdict: router.route(verdict, via="v", now=NOW,  # noqa: E731
                                         is_local=lambda _: True, subscribers=lambda _: [])
    late = Expired("expired at 1 (now 2 by this node's clock)")
    assert route(refused(other, request.cid, late)) == [Ignore("dropped.misattributed-reply")]
    assert route(refused(peer, signed_request(node, peer.did).cid, late)) == [
        Ignore("dropped.unexpected-reply")]
    assert route(refused(peer, request.cid, InvalidClaim("x"))) == [
        Ignore("dropped.refused-reply")]  # not about time: the request still waits
    settled = route(refused(peer, request.cid, late))
    assert len(settled) == 1 and isinstance(settled[0], Settle)
    err = settled[0].outcome["err"]
    assert err["name"] == "ClockSkew" and "clocks disagree" in err["message"]
    assert "ok" not in settled[0].outcome  # what the refused reply says is not believed
    assert route(refused(peer, request.cid, late)) == [Ignore("dropped.unexpected-reply")]


def test_an_accepted_broadcast_goes_to_every_subscriber_and_a_unicast_to_its_actor() -> None:
    node, sender = SigningKey.generate(), SigningKey.generate()
    router = Router(node.did, skew=60)
    request = signed_request(sender, node.did)
    chain: Any = None
    unicast = router.route(Accept(Envelope(request, {}), chain, node.did, None), via="v",
                           now=NOW, is_local=lambda _: True, subscribers=lambda _: [])
    assert [(a.actor, a.wants_reply) for a in unicast] == [(node.did, True)]  # type: ignore[union-attr]
    broadcast = router.route(Accept(Envelope(request, {}), chain, None, "/t"), via="v",
                             now=NOW, is_local=lambda _: True,
                             subscribers=lambda _: ["a", "b"])
    assert all(isinstance(a, Deliver) and not a.wants_reply for a in broadcast)
    assert [a.actor for a in broadcast] == ["a", "b"]  # type: ignore[union-attr]
    gone = router.route(Accept(Envelope(request, {}), chain, "did:key:gone", None), via="v",
                        now=NOW, is_local=lambda _: False, subscribers=lambda _: [])
    assert gone == [Ignore("dropped.gone")]


async def test_a_reply_whose_err_is_not_a_map_is_a_remote_error() -> None:
    systems: dict[str, ActorSystem] = {}
    shop, customer = system(SigningKey.generate(), systems), system(SigningKey.generate(),
                                                                   systems)

    @shop.root.behavior("/shop/order")
    async def order(message: Any) -> Any:
        return "ordered"

    async def hostile_reply(actor: Any, request: Any, outcome: Any, to: Any) -> None:
        answer = invoke(actor.key, actor.id, "/dms/actor/reply",
                        {"ran": request.cid, "out": {"err": "not a map"}},
                        audience=request.iss, expiration=int(NOW) + 30)
        await shop.carrier.send(to.peer, encode_message(answer))

    shop.reply = hostile_reply  # type: ignore[method-assign]
    customer.trust.provide(delegate(shop.key, customer.did, "/shop", expiration=None))
    async with trio.open_nursery() as nursery:
        await nursery.start(shop.run)
        await nursery.start(customer.run)
        with trio.fail_after(5), pytest.raises(RemoteError) as failed:
            await customer.root.invoke(shop.root.handle, "/shop/order")
        nursery.cancel_scope.cancel()
    assert failed.value.name == "Error"
