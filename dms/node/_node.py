"""The node: composition root of keys, trust, network and actors.

A node owns one persistent key (its DID and its transport identity), a trust context
(anchors, provided delegations, revocations), a mesh on some transport, and a tree of
actors whose root uses the node key. Every frame the mesh delivers goes through the
admission pipeline (`dms.actor.admission`) before any actor sees it.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio

from dms.actor.actor import Actor, Message, expiry
from dms.actor.admission import (
    DEFAULT_POLICY,
    Accept,
    Admission,
    AdmissionPolicy,
    Drop,
    Refuse,
    ReplyIn,
)
from dms.actor.errors import RemoteError, RequestTimeout
from dms.actor.handle import Handle
from dms.actor.ratelimit import RateLimit, RateLimiter
from dms.actor.replay import ReplayCache
from dms.actor.wire import REPLY, decode_message, encode_message
from dms.net import MemoryNetwork, Mesh, NetError, Transport, WebsocketTransport
from dms.node import _behaviors as node_behaviors
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
    revoke,
    verify_signature,
)
from ucan.keystore import Keystore, keystore_directory, resolve_passphrase
from ucan.store import TokenStore

DEPLOYMENT_TOPIC = "/nunet/deployment"
REVOCATION_TOPIC = "/nunet/revocation"
REVOKE = "/ucan/revoke"


@attrs.define
class _Pending:
    expected: str  # the actor that must answer (the request's audience)
    node: str  # ...or the node behind it, which answers when the actor is gone
    command: str
    peer: str
    done: trio.Event = attrs.Factory(trio.Event)
    outcome: dict[str, Any] | None = None


class Node:
    def __init__(
        self,
        key: SigningKey,
        mesh: Mesh | None,
        *,
        anchors: Iterable[str] = (),
        clock: Callable[[], float] = time.time,
        policy: AdmissionPolicy = DEFAULT_POLICY,
        message_ttl: float = 30.0,
        store: TokenStore | None = None,
    ) -> None:
        self.key = key
        self.did = key.did
        self.peer_id = key.did
        self.mesh = mesh
        self.clock = clock
        self.message_ttl = message_ttl
        self.trust = TrustContext(self.did, anchors)
        self.store = store
        if store is not None:  # grants and revocations survive restarts
            store.load_into(self.trust)
        self.actors: dict[str, Actor] = {}
        self._inboxes: set[str] = set()
        self.subscribers: dict[str, set[Actor]] = {}
        self.pending: dict[CID, _Pending] = {}
        self.admission = Admission(self.trust, self.actors.__contains__, policy)
        self.counters: Counter[str] = Counter()
        self._answered = ReplayCache()  # refusals already answered
        self._revocation_limiter = RateLimiter(RateLimit(rate=50.0, burst=500.0))
        self.root = Actor(self, key, "root", None)
        self.actors[self.did] = self.root
        self._inboxes.add("root")
        node_behaviors.install(self)

    def __repr__(self) -> str:
        return f"Node({self.did})"

    # -- lifecycle ---------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(self.root.run)
            if self.mesh is not None:
                self.mesh.subscribe(REVOCATION_TOPIC)
                nursery.start_soon(self._read_mesh)
            task_status.started()

    async def _read_mesh(self) -> None:
        assert self.mesh is not None
        async for delivery in self.mesh.incoming:
            await self.receive(delivery.payload, topic=delivery.topic, via=delivery.peer)

    def mesh_time(self) -> float:
        """The clock the mesh's peer table uses (trio's)."""
        return trio.current_time()

    @property
    def address(self) -> str | None:
        return None if self.mesh is None else self.mesh.listen_address

    def metrics(self) -> dict[str, int]:
        """Counters: admission decisions, replies, and the mesh's frame counters."""
        merged: Counter[str] = Counter()
        merged.update(self.admission.metrics)
        merged.update(self.counters)
        if self.mesh is not None:
            merged.update({f"net.{k}": v for k, v in self.mesh.metrics.items()})
        return dict(merged)

    # -- actors -----------------------------------------------------------------------

    def create_actor(self, inbox: str | None, *, parent: Actor, commands: Sequence[str],
                     lifetime: float | None) -> Actor:
        key = SigningKey.generate()
        name = inbox or f"actor-{key.did[-10:]}"
        if name in self._inboxes:
            raise ValueError(f"inbox {name!r} is taken on {self.did}")
        child = Actor(self, key, name, parent)
        exp = expiry(self.clock(), lifetime)
        grants: list[Delegation] = []
        for command in commands:
            # Rooted here: the node's own resources. Powerline: whatever the node proves.
            grants.append(delegate(self.key, key.did, command, expiration=exp))
            grants.append(delegate(self.key, key.did, command, subject=None, expiration=exp))
        child.delegations = tuple(grants)
        self.trust.provide(*grants)
        self.actors[child.id] = child
        self._inboxes.add(name)
        return child

    def forget_actor(self, actor: Actor) -> None:
        """Called when an actor stops: its key and grants become useless here."""
        if actor is self.root:
            return
        self.actors.pop(actor.id, None)
        self._inboxes.discard(actor.handle.inbox)
        for subscribers in self.subscribers.values():
            subscribers.discard(actor)
        for grant in actor.delegations:
            self.trust.provided.pop(grant.cid, None)
            self.trust.revocations.add(revoke(self.key, grant))

    def subscribe(self, actor: Actor, topic: str) -> None:
        self.subscribers.setdefault(topic, set()).add(actor)
        if self.mesh is not None:
            self.mesh.subscribe(topic)

    # -- trust ------------------------------------------------------------------------

    def grant(self, audience: str, command: str, *, lifetime: float | None = 3600.0,
              policy: Sequence[Any] = ()) -> Delegation:
        """Delegate `command` over this node's resources to `audience`."""
        return delegate(self.key, audience, command, policy=list(policy),
                        expiration=expiry(self.clock(), lifetime))

    def add_proofs(self, *delegations: Delegation) -> None:
        """Hold delegations that let this node's actors prove their invocations."""
        self.trust.provide(*delegations)
        if self.store is not None:
            for delegation in delegations:
                self.store.put_delegation(delegation)

    async def publish_revocation(self, revocation: Invocation) -> None:
        """Apply a revocation here, keep it, and flood it on the revocation topic."""
        self._apply_revocation(revocation)
        if self.mesh is not None:
            await self.mesh.publish(REVOCATION_TOPIC, encode_message(revocation))

    # -- outgoing ----------------------------------------------------------------------

    def _sign(self, actor: Actor, command: str, args: dict[str, Any], *, audience: str | None,
              subject: str | None, fallback_subject: str, wants_reply: bool) -> tuple[Invocation, list[Delegation]]:
        if not isinstance(args, dict):
            raise TypeError(f"{command}: args must be a dict (an IPLD map), got "
                            f"{type(args).__name__}")
        now = int(self.clock())
        sub, chain = self._choose_chain(actor, command, args, subject, fallback_subject, now)
        meta = {"from": actor.handle.to_wire(), "reply": wants_reply}
        invocation = invoke(actor.key, sub, command, args, [d.cid for d in chain],
                            audience=audience, expiration=now + int(self.message_ttl),
                            issued_at=now, meta=meta)
        return invocation, chain

    def _choose_chain(self, actor: Actor, command: str, args: dict[str, Any],
                      subject: str | None, fallback: str,
                      now: int) -> tuple[str, list[Delegation]]:
        """The subject and proof chain for an invocation: the target's own authority
        first, then any other subject this node holds grants from. Without a valid
        chain it still sends its best (expired, revoked...) one, or none, so that the
        receiver refuses with the precise reason: the receiver fails closed."""
        others = {d.sub for d in self.trust.provided.values()} - {None, fallback, actor.id}
        candidates = [subject] if subject else [fallback, *sorted(s for s in others if s)]
        for sub in candidates:
            if sub == actor.id:
                return sub, []  # its own authority needs no proof
            chain = self.trust.find_chain(actor.id, command, sub, now=now, args=args,
                                          skew=int(self.admission.policy.skew))
            if chain is not None:
                return sub, chain
        best = self.trust.find_chain(actor.id, command, candidates[0], now=now, strict=False)
        if best is not None:
            return candidates[0], best
        return candidates[0], []

    async def request(self, actor: Actor, target: Handle, command: str, args: dict[str, Any],
                      *, timeout: float, subject: str | None) -> Any:
        invocation, chain = self._sign(actor, command, args, audience=target.id,
                                       subject=subject, fallback_subject=target.did,
                                       wants_reply=True)
        pending = _Pending(target.id, target.did, command, target.peer)
        self.pending[invocation.cid] = pending
        try:
            await self._transmit(target.peer, encode_message(invocation, chain))
            with trio.move_on_after(timeout):
                await pending.done.wait()
        finally:
            del self.pending[invocation.cid]
        if pending.outcome is None:
            raise RequestTimeout(target.peer, command, timeout)
        if "ok" in pending.outcome:
            return pending.outcome["ok"]
        err = pending.outcome.get("err") or {}
        raise RemoteError(str(err.get("name", "Error")), str(err.get("message", "")),
                          target.peer, command)

    async def deliver(self, actor: Actor, target: Handle, command: str, args: dict[str, Any],
                      *, subject: str | None) -> None:
        invocation, chain = self._sign(actor, command, args, audience=target.id,
                                       subject=subject, fallback_subject=target.did,
                                       wants_reply=False)
        await self._transmit(target.peer, encode_message(invocation, chain))

    async def publish(self, actor: Actor, topic: str, command: str, args: dict[str, Any],
                      *, subject: str) -> None:
        invocation, chain = self._sign(actor, command, args, audience=None, subject=subject,
                                       fallback_subject=subject, wants_reply=False)
        data = encode_message(invocation, chain)
        if self.subscribers.get(topic):
            await self.receive(data, topic=topic, via=self.peer_id)
        if self.mesh is not None:
            await self.mesh.publish(topic, data)

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
        except NetError:
            self.counters["replies.undeliverable"] += 1

    async def _transmit(self, peer: str, data: bytes) -> None:
        if peer == self.peer_id:
            await self.receive(data, topic=None, via=self.peer_id)
            return
        if self.mesh is None:
            raise NetError(f"node {self.did} has no network to reach {peer}")
        await self.mesh.send(peer, data)

    # -- incoming ----------------------------------------------------------------------

    async def receive(self, data: bytes, *, topic: str | None, via: str) -> None:
        """Run one frame through admission and act on the verdict."""
        if topic == REVOCATION_TOPIC:
            self._receive_revocation(data, via)
            return
        verdict = self.admission.admit(data, now=self.clock(), topic=topic)
        if isinstance(verdict, Drop):
            return
        inv = verdict.envelope.invocation
        sender = _sender(inv, via)
        if isinstance(verdict, ReplyIn):
            self._settle(inv)
            return
        wants_reply = topic is None and bool((inv.meta or {}).get("reply"))
        if isinstance(verdict, Refuse):
            # One answer per refused message: a replayed refusal is refused in silence.
            if wants_reply and not self._answered.seen(inv.cid):
                self._answered.remember(inv.cid, (inv.exp or 0) + self.admission.policy.skew,
                                        self.clock())
                responder = self.actors.get(inv.audience, self.root)
                await self.reply(responder, inv, {"err": {"name": verdict.error.name,
                                                          "message": verdict.error.message}},
                                 sender)
            return
        assert isinstance(verdict, Accept)
        message = Message(inv.cmd, inv.args, sender, inv, verdict.chain, topic)
        targets = (list(self.subscribers.get(topic, ())) if topic
                   else [self.actors[verdict.actor]] if verdict.actor in self.actors else [])
        for actor in targets:
            if not actor.offer(message, wants_reply):
                self.counters["dropped.busy"] += 1
                if wants_reply:
                    await self.reply(actor, inv, {"err": {"name": "Busy", "message":
                                                          f"{actor.handle.inbox} is overloaded"}},
                                     sender)

    def _settle(self, reply: Invocation) -> None:
        ran = reply.args.get("ran")
        out = reply.args.get("out")
        pending = self.pending.get(ran) if isinstance(ran, CID) else None
        if pending is None or pending.done.is_set():
            self.counters["dropped.unexpected-reply"] += 1
            return
        if reply.iss not in (pending.expected, pending.node) or not isinstance(out, dict):
            self.counters["dropped.misattributed-reply"] += 1
            return
        pending.outcome = out
        pending.done.set()

    def screen_publication(self, topic: str, payload: bytes) -> bool:
        """Whether the mesh may deliver and forward a publication: a well-formed message
        whose invocation is signed by its issuer and not expired (for the revocation
        topic: a revocation). Authorization is admission's job; this only keeps junk
        from being flooded on this node's behalf."""
        try:
            invocation = decode_message(payload, self.trust).invocation
        except UcanError:
            return False
        if not verify_signature(invocation.iss, invocation.signed_bytes, invocation.signature):
            return False
        if topic == REVOCATION_TOPIC:
            return invocation.cmd == REVOKE
        skew = self.admission.policy.skew
        return invocation.exp is not None and self.clock() <= invocation.exp + skew

    def _receive_revocation(self, data: bytes, via: str) -> None:
        if not self._revocation_limiter.allow(via, REVOCATION_TOPIC, self.clock()):
            self.counters["dropped.revocation-rate"] += 1
            return
        try:
            self._apply_revocation(decode_message(data, self.trust).invocation)
        except UcanError:
            self.counters["dropped.bad-revocation"] += 1

    def _apply_revocation(self, revocation: Invocation) -> None:
        target = self.trust.revocations.add(revocation)  # verifies it; UcanError if bad
        # Kept on disk only when it concerns this node: a grant it holds or one of its
        # own revocations. Anybody can sign a revocation of anything; a flood of those
        # stays in the bounded in-memory set.
        if self.store is not None and (target in self.trust.provided
                                       or revocation.iss == self.did):
            self.store.put_revocation(revocation)
        self.counters["revocations.applied"] += 1


def _sender(invocation: Invocation, via: str) -> Handle:
    """Who sent it, as far as it can be believed: the signer's id, the claimed principal
    and inbox, and the peer it actually came through (replies go back that way, never
    to a peer the message names: no reflecting error replies at third parties)."""
    claimed = (invocation.meta or {}).get("from")
    try:
        handle = Handle.from_wire(claimed)
    except ValueError:
        return Handle(invocation.iss, invocation.iss, via, "unknown")
    if handle.id != invocation.iss:  # only the signer's own id is believed
        return Handle(invocation.iss, invocation.iss, via, "unknown")
    return Handle(handle.id, handle.did, via, handle.inbox)


def load_node_key(keystore: str | os.PathLike[str] | None, name: str = "node",
                  passphrase: str | None = None) -> SigningKey:
    """The node key `name` from a keystore directory, created on first use.

    The passphrase comes from the argument, else $UCAN_PASSPHRASE, else a prompt.
    """
    store = Keystore(keystore_directory(keystore))
    if passphrase is None:
        passphrase = resolve_passphrase(name, confirm=not store.path_of(name).exists())
    if not store.path_of(name).exists():
        store.create(name, passphrase)
    return store.load(name, passphrase)


@asynccontextmanager
async def open_node(
    key: SigningKey | None = None,
    *,
    keystore: str | os.PathLike[str] | None = None,
    key_name: str = "node",
    passphrase: str | None = None,
    state_dir: str | os.PathLike[str] | None = None,
    listen: str | None = None,
    bootstrap: Sequence[str] = (),
    network: MemoryNetwork | None = None,
    anchors: Iterable[str] = (),
    clock: Callable[[], float] = time.time,
    policy: AdmissionPolicy = DEFAULT_POLICY,
) -> AsyncIterator[Node]:
    """Run a node for the duration of the block; leaving it cancels every actor.

    The node key is `key`, else `key_name` from the `keystore` directory (created on
    first use, encrypted with the passphrase), else a fresh key that dies with the node.
    `listen` is `ws://HOST:PORT` (port 0 picks one; see `node.address`) or, with
    `network`, a `memory://NAME` address on that in-memory network. `bootstrap` lists
    addresses to dial. `anchors` are the DIDs whose authority this node accepts.
    With `state_dir`, held grants and known revocations persist across restarts.
    """
    if key is None:
        key = (load_node_key(keystore, key_name, passphrase) if keystore is not None
               else SigningKey.generate())
    transport: Transport = (network.transport(key.nacl_key) if network is not None
                            else WebsocketTransport(key.nacl_key))
    # Built before the nursery so a bad address or state directory is a plain exception.
    mesh = Mesh(key.nacl_key, transport, listen=listen, bootstrap=list(bootstrap),
                screen=lambda topic, payload: node.screen_publication(topic, payload))
    store = None if state_dir is None else TokenStore(os.path.join(state_dir, "tokens"))
    node = Node(key, mesh, anchors=anchors, clock=clock, policy=policy, store=store)
    body_error: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(mesh.run)
            await nursery.start(node.run)
            try:
                yield node
            except BaseException as exc:
                body_error = exc
                raise
            finally:
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # The block's own exception (a RemoteError, Ctrl-C...), only wrapped by our
        # nursery: give it back to the caller as it was raised.
        if body_error is not None and list(group.exceptions) == [body_error]:
            raise body_error from None
        raise
