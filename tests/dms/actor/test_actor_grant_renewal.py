"""The node's grants to its actors end and are renewed: a lasting actor keeps working,
its outgoing chains move to the renewed grants, a child's grants never outlive its
parent's, and what a stopped actor leaves revoked is forgotten once it has expired."""

from __future__ import annotations

from typing import Any

import attrs
import trio

from dms.actor import GRANT_LIFETIME, Actor, ActorSystem, Undeliverable
from dms.node._revocations import EXPIRED_GRACE
from ucan import CID, Invocation, SigningKey, TrustContext, delegate

EPOCH = 1_800_000_000.0
JUMPED = [0.0]  # how far the wall clock was set forward


def clock() -> float:
    return EPOCH + JUMPED[0] + trio.current_time()


@attrs.define
class Carrier:
    """Frames go straight into the other system's receive."""

    peer_id: str
    systems: dict[str, ActorSystem]

    async def send(self, peer: str, data: bytes) -> None:
        if peer not in self.systems:
            raise Undeliverable(peer, "no such peer")
        await self.systems[peer].receive(data, topic=None, via=self.peer_id)

    async def publish(self, topic: str, data: bytes) -> None:
        pass

    def subscribe(self, topic: str) -> None:
        pass


@attrs.define
class Market:
    shop: ActorSystem
    customer: ActorSystem
    revoked: list[tuple[Invocation, int | None]]

    async def order(self, actor: Actor) -> list[CID]:
        """The proofs the shop saw for an order sent by `actor`."""
        with trio.fail_after(5):
            proofs: list[str] = await actor.invoke(self.shop.root.handle, "/shop/order")
        return [CID.parse(p) for p in proofs]


def market() -> Market:
    JUMPED[0] = 0.0
    systems: dict[str, ActorSystem] = {}
    revoked: list[tuple[Invocation, int | None]] = []
    shop_key, customer_key = SigningKey.generate(), SigningKey.generate()
    shop = ActorSystem(shop_key, Carrier(shop_key.did, systems), TrustContext(shop_key.did),
                       clock=clock)

    def revoke_grant(revocation: Invocation, until: int | None) -> None:
        revoked.append((revocation, until))
        customer.trust.revocations.add(revocation, until=until)
        shop.trust.revocations.add(revocation)  # as the node's flood would bring it

    customer = ActorSystem(customer_key, Carrier(customer_key.did, systems),
                           TrustContext(customer_key.did), clock=clock,
                           revoke_grant=revoke_grant)
    systems.update({shop.did: shop, customer.did: customer})

    @shop.root.behavior("/shop/order")
    async def order(message: Any) -> Any:
        return [str(cid) for cid in message.invocation.prf]

    customer.trust.provide(delegate(shop_key, customer.did, "/shop", expiration=None))
    return Market(shop, customer, revoked)


async def running(m: Market, nursery: trio.Nursery) -> None:
    await nursery.start(m.shop.run)
    await nursery.start(m.customer.run)


def current_grants(actor: Actor) -> set[CID]:
    term = actor.grant_term
    assert term is not None
    return {d.cid for d in actor.delegations if d.exp == term.expires}


async def test_a_lasting_actors_commands_are_accepted_past_three_grant_lifetimes(
        autojump_clock: object) -> None:
    m = market()
    async with trio.open_nursery() as nursery:
        await running(m, nursery)
        buyer = await m.customer.root.spawn("buyer", commands=["/shop/order"], lasting=True)
        assert buyer.authority.expires is None  # it lasts as long as its node
        used = set()
        while trio.current_time() < 3.5 * GRANT_LIFETIME:
            proofs = await m.order(buyer)
            assert proofs[-1] in current_grants(buyer)
            used.add(proofs[-1])
            for grant in buyer.delegations:  # every grant ends, within one lifetime
                assert grant.exp is not None and grant.exp <= clock() + GRANT_LIFETIME
            # this term's, the last one's, and the one before while it ends: no more
            assert len(buyer.delegations) <= 3 * 2
            await trio.sleep(487)  # never the instant of a renewal
        assert len(used) >= 6  # renewed at about half of each term
        nursery.cancel_scope.cancel()


async def test_the_chain_choice_follows_the_renewal(autojump_clock: object) -> None:
    m = market()
    async with trio.open_nursery() as nursery:
        await running(m, nursery)
        buyer = await m.customer.root.spawn("buyer", commands=["/shop/order"], lasting=True)
        first = await m.order(buyer)
        assert await m.order(buyer) == first  # remembered
        hits = m.customer.chain_choices.hits
        assert hits >= 1
        term = buyer.grant_term
        assert term is not None
        await trio.sleep(term.renew_at - clock() + 1)
        assert buyer.grant_term != term
        old = {d.cid for d in buyer.delegations if d.exp == term.expires}
        assert first[-1] in old  # the old grant still holds, and is still revocable...
        renewed = await m.order(buyer)
        assert renewed[-1] in current_grants(buyer)  # ...but the chain moved on
        assert await m.order(buyer) == renewed
        assert m.customer.chain_choices.hits == hits + 1  # and is remembered again
        nursery.cancel_scope.cancel()


async def test_a_childs_grant_never_outlives_its_parents(autojump_clock: object) -> None:
    m = market()
    async with trio.open_nursery() as nursery:
        await running(m, nursery)
        parent = await m.customer.root.spawn("service", commands=["/shop"], lasting=True)
        await trio.sleep(GRANT_LIFETIME * 0.4)  # the parent's term is partly spent
        child = await parent.spawn("buyer", commands=["/shop/order"])
        short = await parent.spawn("errand", commands=["/shop/order"], lifetime=60)
        assert short.grant_term is not None and short.grant_term.expires == int(clock()) + 60
        while trio.current_time() < 3.5 * GRANT_LIFETIME:
            assert parent.grant_term is not None and child.grant_term is not None
            assert child.grant_term.expires <= parent.grant_term.expires
            ends = max(d.exp or 0 for d in child.delegations)
            assert ends <= max(d.exp or 0 for d in parent.delegations)
            assert (await m.order(child))[-1] in current_grants(child)
            await trio.sleep(401)
        assert not short.running
        nursery.cancel_scope.cancel()


async def test_a_stopped_lasting_actors_revocations_are_forgotten_after_its_grants_expire(
        autojump_clock: object) -> None:
    m = market()
    async with trio.open_nursery() as nursery:
        await running(m, nursery)
        buyer = await m.customer.root.spawn("buyer", commands=["/shop/order"], lasting=True)
        await trio.sleep(GRANT_LIFETIME * 1.2)  # renewed twice: two terms unexpired
        await m.order(buyer)  # the shop authorized (vouched) its current chain
        skew = m.customer.policy.skew
        grants = {d.cid: d.exp for d in buyer.delegations
                  if d.exp is not None and d.exp + skew >= clock()}
        assert len(grants) < len(buyer.delegations)  # the first term's ended at 1.0
        await buyer.stop()
        nursery.cancel_scope.cancel()
    # every unexpired grant revoked, with when it ends; the expired one left alone
    assert {r.args["revoke"]: until for r, until in m.revoked} == grants
    latest = max(exp for exp in grants.values() if exp is not None)
    for system in (m.customer, m.shop):
        kept = system.trust.revocations
        revoked = {r.args["revoke"] for r in kept.kept_revocations()}
        if system is m.customer:
            assert revoked == set(grants)  # the node revoked every unexpired grant
        else:
            # what it authorized it keeps; the others' revocations are in the bounded part
            assert revoked and revoked < set(grants)
        kept.forget_expired(latest + EXPIRED_GRACE - 1, EXPIRED_GRACE)
        assert any(kept.revokers(cid) for cid in revoked)  # not before the retention ends
        kept.forget_expired(latest + EXPIRED_GRACE + 1, EXPIRED_GRACE)
        assert kept.kept_revocations() == []
    assert all(m.customer.trust.revocations.revokers(cid) == frozenset() for cid in grants)


async def test_a_lasting_actor_keeps_working_when_the_wall_clock_jumps_forward(
        autojump_clock: object) -> None:
    m = market()
    async with trio.open_nursery() as nursery:
        await running(m, nursery)
        buyer = await m.customer.root.spawn("buyer", commands=["/shop/order"], lasting=True)
        before = await m.order(buyer)
        JUMPED[0] = 2 * GRANT_LIFETIME  # every grant it holds has ended by the new time
        await trio.sleep(61)
        after = await m.order(buyer)
        assert after[-1] != before[-1] and after[-1] in current_grants(buyer)
        nursery.cancel_scope.cancel()


async def test_a_stopped_actors_revocations_expire_retention_past_its_grants_everywhere(
        autojump_clock: object) -> None:
    # The shop never authorized the buyer's older chains: without a date on the
    # revocation it could not know when to forget their revocations.
    m = market()
    m.customer.revocation_retention = 300
    async with trio.open_nursery() as nursery:
        await running(m, nursery)
        buyer = await m.customer.root.spawn("buyer", commands=["/shop/order"], lasting=True)
        await trio.sleep(GRANT_LIFETIME * 0.6)  # renewed once: two terms unexpired
        await buyer.stop()
        nursery.cancel_scope.cancel()
    assert m.revoked
    for revocation, until in m.revoked:
        assert until is not None and revocation.exp == until + 300
    latest = max(r.exp for r, _ in m.revoked if r.exp is not None)
    shop = m.shop.trust.revocations
    targets = [r.args["revoke"] for r, _ in m.revoked]
    shop.forget_expired(latest, EXPIRED_GRACE)
    assert all(shop.revokers(cid) == {m.customer.did} for cid in targets[-1:])
    shop.forget_expired(latest + 1, EXPIRED_GRACE)
    assert all(shop.revokers(cid) == set() for cid in targets) and len(shop) == 0
