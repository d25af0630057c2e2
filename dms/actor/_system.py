"""The actor system: every actor of a node, and everything between them and the carrier.

It owns the registry (actors by id, inbox names, topic subscribers), spawning (the
node's grants to a child, renewed while it runs and revoked when it stops), outgoing
messages (chain choice and signing), outstanding requests and their replies, and the
incoming path: per-link-peer budget, admission, routing, then the actions routing
decided. Below it is only a `Carrier`; above it, the node composes it with a mesh, a
store and its roles.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import trio

from dms.actor._actor import Actor, Main
from dms.actor._admission import DEFAULT_POLICY, Admission, AdmissionPolicy
from dms.actor._authority import ROOT_AUTHORITY, Authority
from dms.actor._carrier import Carrier
from dms.actor._chain_choice import ChainChoices
from dms.actor._errors import RemoteError, RequestTimeout, Undeliverable
from dms.actor._grants import GRANT_LIFETIME, REVOCATION_RETENTION, grant_term, revoke_grant
from dms.actor._handle import Handle
from dms.actor._ratelimit import RateLimiter
from dms.actor._replay import ReplayMemory
from dms.actor._routing import Action, AnswerRefusal, Ignore, Router, Settle
from dms.actor._screened import ScreenedPublications
from dms.actor._wire import REPLY, decode_message, encode_message
from ucan import (
    CID,
    Delegation,
    Invocation,
    MalformedToken,
    SigningKey,
    TrustContext,
    UcanError,
    delegate,
    invoke,
    verify_signature,
)


def derived_key(node: SigningKey, name: str) -> SigningKey:
    """The key of the node's actor `name`: HMAC-SHA256 of the name under the node's seed
    (only the node can derive it; each name gives another key)."""
    seed = hmac.new(node.seed, b"dms actor key|" + name.encode(), hashlib.sha256).digest()
    return SigningKey.from_seed(seed)


class ActorSystem:
    """All actors of one node key over one carrier.

    `revoke_grant(revocation, until)` is how grants of a stopped actor are revoked
    (`until`: when the revoked grant expires; the node passes one that also persists
    them); by default they are revoked in the trust context only. Grants to actors last
    `grant_lifetime` seconds at most and are renewed while the actor runs; their
    revocations expire `revocation_retention` seconds after them.
    """

    def __init__(
        self,
        key: SigningKey,
        carrier: Carrier,
        trust: TrustContext,
        *,
        clock: Callable[[], float] = time.time,
        policy: AdmissionPolicy = DEFAULT_POLICY,
        message_ttl: float = 30.0,
        replays: ReplayMemory | None = None,
        revoke_grant: Callable[[Invocation, int | None], None] | None = None,
        grant_lifetime: float = GRANT_LIFETIME,
        revocation_retention: int = REVOCATION_RETENTION,
    ) -> None:
        self.key = key
        self.did = key.did
        self.carrier = carrier
        self.peer_id = carrier.peer_id
        self.trust = trust
        self.clock = clock
        self.policy = policy
        self.message_ttl = message_ttl
        self.grant_lifetime = grant_lifetime
        self.revocation_retention = revocation_retention
        self.actors: dict[str, Actor] = {}
        self.subscribers: dict[str, dict[str, Actor]] = {}
        self.counters: Counter[str] = Counter()
        self.admission = Admission(trust, self.actors.__contains__, policy, replays=replays)
        self.router = Router(self.did, policy.skew, policy.refusal_budget)
        self._inboxes: set[str] = set()
        self._answers: dict[CID, tuple[trio.Event, list[dict[str, Any]]]] = {}
        self._link_budget = RateLimiter(policy.link_budget, max_keys=10_000)
        self._node_refusals = RateLimiter(policy.node_refusal_budget, max_keys=1)
        self._revoke_grant = revoke_grant or self._revoke_here
        self.chain_choices = ChainChoices(trust)
        self.screened = ScreenedPublications()
        self.root = Actor(self, key, "root", None, ROOT_AUTHORITY)
        self._register(self.root)

    def __repr__(self) -> str:
        return f"ActorSystem({self.did})"

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the root actor (and through it every other) until cancelled."""
        await self.root.run(task_status=task_status)

    def metrics(self) -> Counter[str]:
        merged: Counter[str] = Counter(self.admission.metrics)
        merged.update(self.counters)
        return merged

    # -- registry ----------------------------------------------------------------------

    def adopt(self, inbox: str | None, *, parent: Actor, authority: Authority,
              main: Main | None, lasting: bool = False) -> Actor:
        """A new child actor with the node's grants for `authority` and a fresh key, or
        with `lasting`, a key derived from the node's and the inbox's name: the same
        actor id after a restart, so what others delegated to it or hold of it (an
        orchestrator's deployments, an allocation's controller) still names it."""
        if lasting and not inbox:
            raise ValueError("a lasting actor needs an inbox name (its key derives from it)")
        key = derived_key(self.key, inbox) if lasting and inbox else SigningKey.generate()
        name = inbox or f"actor-{key.did[-10:]}"
        if name in self._inboxes:
            raise ValueError(f"inbox {name!r} is taken on {self.did}")
        child = Actor(self, key, name, parent, authority, main=main)
        self._grant(child)
        self._register(child)
        return child

    def renew_grants(self, actor: Actor) -> None:
        """New grants for a running actor's next term (`dms.actor._grants`); a stopped
        actor gets none."""
        if self.actors.get(actor.id) is actor:
            self._grant(actor)

    def _grant(self, actor: Actor) -> None:
        """Sign the node's grants to `actor` for a new term and hold them instead of the
        previous term's: outgoing chains (and the remembered choices, which see the held
        delegations change) move to the new ones. The previous term's stay in
        `actor.delegations` until they expire, so that stopping the actor revokes them."""
        if not actor.authority.commands:
            return  # it acts on its own authority alone
        now = self.clock()
        parent = actor.parent
        term = grant_term(actor.authority, None if parent is None or parent is self.root
                          else parent.grant_term, now, self.grant_lifetime)
        grants: list[Delegation] = []
        for command in actor.authority.commands:
            # Rooted here: the node's own resources. Powerline: whatever the node proves.
            grants.append(delegate(self.key, actor.id, command, expiration=term.expires))
            grants.append(delegate(self.key, actor.id, command, subject=None,
                                   expiration=term.expires))
        for previous in actor.delegations:
            self.trust.provided.pop(previous.cid, None)
        actor.delegations = (*(d for d in actor.delegations if not self._expired(d, now)),
                             *grants)
        actor.grant_term = term
        self.trust.provide(*grants)

    def _expired(self, grant: Delegation, now: float) -> bool:
        """Whether `grant` is expired on every node (give or take the skew they allow)."""
        return grant.exp is not None and grant.exp + self.policy.skew < now

    def _register(self, actor: Actor) -> None:
        self.actors[actor.id] = actor
        self._inboxes.add(actor.handle.inbox)

    def release(self, actor: Actor) -> None:
        """An actor stopped: its key and grants become useless here."""
        if actor is self.root:
            return
        self.actors.pop(actor.id, None)
        self.admission.forget_actor(actor.id)
        self._inboxes.discard(actor.handle.inbox)
        for subscribers in self.subscribers.values():
            subscribers.pop(actor.id, None)
        now = self.clock()
        for grant in actor.delegations:
            self.trust.provided.pop(grant.cid, None)
            if not self._expired(grant, now):  # an expired one has nothing left to undo
                self._revoke_grant(revoke_grant(self.key, grant, self.revocation_retention),
                                   grant.exp)

    def _revoke_here(self, revocation: Invocation, until: int | None) -> None:
        self.trust.revocations.add(revocation, until=until)

    def subscribe(self, actor: Actor, topic: str) -> None:
        self.subscribers.setdefault(topic, {})[actor.id] = actor
        self.carrier.subscribe(topic)

    # -- outgoing ----------------------------------------------------------------------

    def _sign(self, actor: Actor, command: str, args: Any, *, audience: str | None,
              subject: str | None, target: Handle | None, wants_reply: bool,
              proofs: Sequence[Delegation] = ()) -> tuple[Invocation, list[Delegation]]:
        if not isinstance(args, dict):
            raise TypeError(f"{command}: args must be a dict (an IPLD map) or an attrs "
                            f"instance, got {type(args).__name__}")
        now = int(self.clock())
        sub, chain = self._choose_chain(actor, command, args, subject, target, now, proofs)
        meta = {"from": actor.handle.to_wire(), "reply": wants_reply}
        invocation = invoke(actor.key, sub, command, args, [d.cid for d in chain],
                            audience=audience, expiration=now + int(self.message_ttl),
                            issued_at=now, meta=meta)
        return invocation, chain

    def _choose_chain(self, actor: Actor, command: str, args: dict[str, Any],
                      subject: str | None, target: Handle | None, now: int,
                      proofs: Sequence[Delegation]) -> tuple[str, list[Delegation]]:
        """The subject and proof chain for an invocation: `subject` if given; else the
        target's node, the target actor itself (a delegation it handed out), then any
        other subject this node holds grants from. Without a valid chain it still sends
        its best (expired, revoked...) one, or none, so that the receiver refuses with
        the precise reason: the receiver fails closed. A valid choice is remembered
        (`ChainChoices`) and used again while it still holds."""
        skew = int(self.policy.skew)
        key = (actor.id, command, subject, None if target is None else target.id,
               None if target is None else target.did,
               tuple(d.cid for d in proofs) if proofs else ())
        remembered = self.chain_choices.get(key, now=now, skew=skew, args=args)
        if remembered is not None:
            return remembered
        if subject is not None:
            candidates = [subject]
        else:
            assert target is not None
            known = {d.sub for d in (*self.trust.provided.values(), *proofs)}
            known -= {None, actor.id, target.did, target.id}
            candidates = [target.did, target.id, *sorted(s for s in known if s)]
        for sub in candidates:
            if sub == actor.id:
                return sub, []  # its own authority needs no proof
            chain = self.trust.find_chain(actor.id, command, sub, now=now, args=args,
                                          extra=proofs, skew=skew)
            if chain is not None:
                self.chain_choices.remember(key, sub, chain)
                return sub, chain
        best = self.trust.find_chain(actor.id, command, candidates[0], now=now, extra=proofs,
                                     strict=False)
        return candidates[0], best or []

    async def request(self, actor: Actor, target: Handle, command: str, args: Any, *,
                      timeout: float, subject: str | None,
                      proofs: Sequence[Delegation] = ()) -> Any:
        invocation, chain = self._sign(actor, command, args, audience=target.id,
                                       subject=subject, target=target, wants_reply=True,
                                       proofs=proofs)
        done, outcome = self._answers[invocation.cid] = (trio.Event(), [])
        self.router.expect(invocation.cid, responder=target.id, node=target.did)
        try:
            await self._transmit(target.peer, encode_message(invocation, chain))
            with trio.move_on_after(timeout):
                await done.wait()
        finally:
            del self._answers[invocation.cid]
            self.router.forget(invocation.cid)
        if not outcome:
            raise RequestTimeout(target.peer, command, timeout)
        if "ok" in outcome[0]:
            return outcome[0]["ok"]
        err = outcome[0].get("err")
        err = err if isinstance(err, dict) else {}
        raise RemoteError(str(err.get("name", "Error")), str(err.get("message", "")),
                          target.peer, command)

    @property
    def pending(self) -> dict[CID, Any]:
        """Requests awaiting a reply (empty when nothing is outstanding)."""
        return dict(self._answers)

    async def deliver(self, actor: Actor, target: Handle, command: str, args: Any, *,
                      subject: str | None, proofs: Sequence[Delegation] = ()) -> None:
        invocation, chain = self._sign(actor, command, args, audience=target.id,
                                       subject=subject, target=target, wants_reply=False,
                                       proofs=proofs)
        await self._transmit(target.peer, encode_message(invocation, chain))

    async def publish(self, actor: Actor, topic: str, command: str, args: Any, *,
                      subject: str) -> None:
        invocation, chain = self._sign(actor, command, args, audience=None,
                                       subject=subject, target=None, wants_reply=False)
        data = encode_message(invocation, chain)
        if self.subscribers.get(topic):
            await self.receive(data, topic=topic, via=self.peer_id)
        await self.carrier.publish(topic, data)

    async def reply(self, actor: Actor, request: Invocation, outcome: dict[str, Any],
                    to: Handle) -> None:
        now = int(self.clock())
        try:
            response = invoke(actor.key, actor.id, REPLY, {"ran": request.cid, "out": outcome},
                              audience=request.iss, expiration=now + int(self.message_ttl),
                              issued_at=now, meta={"from": actor.handle.to_wire()})
        except MalformedToken as exc:  # the behavior returned something that is not IPLD
            bad = {"err": {"name": "BehaviorFailed", "message": f"reply is not IPLD: {exc}"}}
            response = invoke(actor.key, actor.id, REPLY, {"ran": request.cid, "out": bad},
                              audience=request.iss, expiration=now + int(self.message_ttl))
        self.counters["replies.sent"] += 1
        try:
            await self._transmit(to.peer, encode_message(response))
        except Undeliverable:
            self.counters["replies.undeliverable"] += 1

    async def _transmit(self, peer: str, data: bytes) -> None:
        if peer == self.peer_id:
            await self.receive(data, topic=None, via=self.peer_id)
        else:
            await self.carrier.send(peer, data)

    # -- incoming ----------------------------------------------------------------------

    async def receive(self, data: bytes, *, topic: str | None, via: str) -> bool:
        """Run one frame from link peer `via` through budget, admission and routing;
        False when it was dropped unprocessed, over the link peer's budget."""
        now = self.clock()
        # Publications are relayed: a flood from afar arrives from the neighbour that
        # forwarded it, so it has a budget apart from the neighbour's own frames.
        kind = "frames" if topic is None else "publications"
        if via != self.peer_id and not self._link_budget.allow(via, kind, now):
            self.counters["dropped.link-budget"] += 1
            return False
        screened = None if topic is None else self.screened.take(data, now)
        verdict = self.admission.admit(data, now=now, topic=topic, screened=screened,
                                       via=None if via == self.peer_id else via)
        actions = self.router.route(verdict, via=via, now=now,
                                    is_local=self.actors.__contains__,
                                    subscribers=lambda t: list(self.subscribers.get(t, ())))
        for action in actions:
            await self._act(action)
        return True

    async def _act(self, action: Action) -> None:
        if isinstance(action, Ignore):
            if action.reason:
                self.counters[action.reason] += 1
        elif isinstance(action, Settle):
            waiting = self._answers.get(action.request)
            if waiting is not None:
                waiting[1].append(action.outcome)
                waiting[0].set()
        elif isinstance(action, AnswerRefusal):
            # The router spent the link peer's refusal budget; this is the node's.
            if not self._node_refusals.allow(self.did, "refusals", self.clock()):
                self.counters["dropped.node-refusal-budget"] += 1
                return
            responder = self.actors.get(action.responder, self.root)
            await self.reply(responder, action.request,
                             {"err": {"name": action.name, "message": action.text}}, action.to)
        else:
            actor = self.actors.get(action.actor)
            if actor is None:
                self.counters["dropped.gone"] += 1
            elif not actor.offer(action.message, action.wants_reply):
                self.counters["dropped.busy"] += 1
                if action.wants_reply:
                    await self.reply(actor, action.message.invocation, {"err": {
                        "name": "Busy", "message": f"{actor.handle.inbox} is overloaded"}},
                        action.message.sender)

    def screen_publication(self, topic: str, payload: bytes) -> bool:
        """Whether the carrier may deliver and forward a publication: a well-formed
        message whose invocation is signed by its issuer and not expired. Authorization
        is admission's job; this only keeps junk from being flooded on our behalf. A
        publication for local subscribers leaves its decode and signature check for
        admission to take (`ScreenedPublications`): one of each per delivery."""
        try:
            envelope = decode_message(payload, self.trust)
        except UcanError:
            return False
        invocation = envelope.invocation
        if not verify_signature(invocation.iss, invocation.signed_bytes, invocation.signature):
            return False
        now = self.clock()
        if invocation.exp is None or now > invocation.exp + self.policy.skew:
            return False
        if self.subscribers.get(topic):  # admission will take the decode and the check
            self.screened.put(payload, envelope, now)
        return True

