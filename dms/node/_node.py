"""The node: composition root of key, trust, store, mesh, actor system and roles.

A node owns one persistent key (its DID and its transport identity), a trust context
(anchors, provided delegations, revocations), a token store, a mesh, and the actor
system whose root actor uses the node key. Every frame the mesh delivers goes to the
revocation keeper (on the revocation topic) or through the actor system's admission
before any actor sees it.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import logging
import os
import time
import weakref
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import trio

from dms._nursery import serving_nursery
from dms.actor import (
    DEFAULT_POLICY,
    Actor,
    ActorSystem,
    AdmissionPolicy,
    RateLimit,
    RateLimiter,
    clamp_expiry,
    encode_message,
)
from dms.actor._replay import ReplayLog
from dms.deployment import DeploymentService, DeploymentSettings, deployment_markets
from dms.net import (
    Delivery,
    Inbox,
    MemoryNetwork,
    Mesh,
    MeshNotRunning,
    NodeTransport,
    SeenMessages,
    Transport,
    parse_node_address,
)
from dms.net._cache import REPAIR_TTL, MessageCache
from dms.network import joined_networks
from dms.node._anchors import read_anchors
from dms.node._behaviors import Amounts, NodeBehaviors, NodeInfo, NodeResources
from dms.node._carrier import MeshCarrier
from dms.node._revocation_flood import RevocationFlood
from dms.node._revocations import PRUNE_INTERVAL, REVOCATION_TOPIC, RevocationKeeper
from dms.node._state_lock import StateDirError, hold_state_dir
from dms.node._state_watch import StateWatch
from dms.provider import Capacity
from dms.store import NodeStore
from ucan import (
    Delegation,
    Invocation,
    MalformedToken,
    SigningKey,
    TrustContext,
    UcanError,
    delegate,
    public_key_from_did,
)
from ucan.keystore import Keystore, keystore_directory, resolve_passphrase
from ucan.store import TokenStore

if TYPE_CHECKING:  # a node that provides imports the provider (in `open_node`), no other
    from dms.provider import ProviderConfig, ProviderService

DEPLOYMENT_TOPIC = "/nunet/deployment"

_NODES: weakref.WeakValueDictionary[int, Node] = weakref.WeakValueDictionary()

log = logging.getLogger("dms.node")


def node_of(actor: Actor) -> Node:
    """The node an actor lives on (actors know their actor system, not the node)."""
    node = _NODES.get(id(actor.system))
    if node is None or node.system is not actor.system:
        raise LookupError(f"{actor!r} lives on no running node")
    return node


SCREEN_BUDGET = RateLimit(rate=2000.0, burst=5000.0)
"""Publications per second (per topic) whose signature the node checks for one relaying
peer, before it forwards them: about a tenth of a core's verifying time each."""

GREETING_LIMIT = 1024
"""Revocations sent to a newly linked peer at most."""

MIN_PRUNE_INTERVAL = 1.0

PUBLICATION_LIFETIME = 300.0
"""Seconds a node remembers a publication's id (so a copy is not delivered twice)."""

MIN_PUBLICATION_LIFETIME = 10.0
"""The shortest `publication_lifetime` a node takes: a publication still circulating
(8 hops, each queued behind a busy link for a second or more) is then still known."""


def publication_memory(lifetime: float) -> tuple[SeenMessages, MessageCache]:
    """The mesh's dedup set and GRAFT cache for a `publication_lifetime`: the cache keeps
    a publication no longer than its id is remembered, so a repaired copy is always
    recognised as one."""
    if not lifetime >= MIN_PUBLICATION_LIFETIME:  # NaN too
        raise ValueError(f"publication_lifetime must be at least "
                         f"{MIN_PUBLICATION_LIFETIME:g} s, got {lifetime}")
    return SeenMessages(ttl=lifetime), MessageCache(ttl=min(REPAIR_TTL, lifetime))


class Node:
    """One running node. Made by `open_node`; `node.root` is the actor to script."""

    def __init__(
        self,
        key: SigningKey,
        mesh: Mesh,
        *,
        anchors: Iterable[str] = (),
        clock: Callable[[], float] = time.time,
        policy: AdmissionPolicy = DEFAULT_POLICY,
        message_ttl: float = 30.0,
        store: TokenStore | None = None,
        replays: ReplayLog | None = None,
    ) -> None:
        self.key = key
        self.did = key.did
        self.mesh = mesh
        self.clock = clock
        self.trust = TrustContext(self.did, anchors)
        self.store = store
        if store is not None:  # grants and revocations survive restarts
            try:
                left_out = store.load_into(self.trust)
            except MalformedToken as exc:
                raise StateDirError(exc.message) from None
            for problem in left_out:
                log.warning("held grant left out: %s", problem)
        self.revocations = RevocationKeeper(self.trust, store, clock)
        self._prune_interval = PRUNE_INTERVAL
        self.counters: Counter[str] = Counter()
        self.provider: ProviderService | None = None
        """The provider role, when the node was opened with `provider=`."""
        self.deployments: DeploymentService | None = None
        """The deployment service (`/dms/node/deployment/...`), once the node runs."""
        self._screen_budget = RateLimiter(SCREEN_BUDGET)
        # A stopped child's grants are revoked here and flooded: they are powerline and
        # its key may still sign on any node that takes this node's proofs.
        self._flood = RevocationFlood()
        self._flood_waiting = trio.lowlevel.ParkingLot()
        self.system = ActorSystem(key, MeshCarrier(mesh), self.trust, clock=clock,
                                  policy=policy, message_ttl=message_ttl,
                                  replays=replays, revoke_grant=self._revoke_grant)
        self.started = clock()
        self.root.register(NodeBehaviors(self.did, clock, mesh, info=self.describe,
                                         resources=self.offering))
        _NODES[id(self.system)] = self

    def __repr__(self) -> str:
        return f"Node({self.did})"

    @property
    def root(self) -> Actor:
        return self.system.root

    @property
    def actors(self) -> dict[str, Actor]:
        return self.system.actors

    @property
    def peer_id(self) -> str:
        return self.system.peer_id

    @property
    def address(self) -> str | None:
        return self.mesh.listen_address

    # -- lifecycle ---------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(self.system.run)
            self.mesh.subscribe(REVOCATION_TOPIC)
            nursery.start_soon(self._read_mesh, self.mesh.priority_incoming)  # revocations
            nursery.start_soon(self._read_mesh, self.mesh.incoming)
            nursery.start_soon(self._flood_revocations)
            nursery.start_soon(self._forget_expired_revocations)
            task_status.started()

    @property
    def prune_interval(self) -> float:
        """Seconds between forgetting expired revocations and the trust caches' entries
        of expired delegations (60; a soak shortens it, to a second at least: each
        pruning walks every kept revocation)."""
        return self._prune_interval

    @prune_interval.setter
    def prune_interval(self, seconds: float) -> None:
        if not seconds >= MIN_PRUNE_INTERVAL:  # NaN too
            raise ValueError(f"prune_interval must be at least {MIN_PRUNE_INTERVAL:g} s, "
                             f"got {seconds}")
        self._prune_interval = seconds

    async def _forget_expired_revocations(self) -> None:
        while True:
            await trio.sleep(self._prune_interval)
            self.revocations.forget_expired()

    def _revoke_grant(self, revocation: Invocation, until: int | None) -> None:
        self.revocations.apply(revocation, until=until)
        if self._flood.put(encode_message(revocation), revocation.cid):
            self._flood_waiting.unpark()
        else:  # applied and kept all the same: republished once the queue drains
            self.counters["dropped.revocation-flood-full"] += 1

    async def _flood_revocations(self) -> None:
        """Publish the revocations `_revoke_grant` queued. They are applied and kept
        here already; a mesh that has stopped sends them to each peer that links again
        (the greeting). When the queue was full and refused some, every kept revocation
        from the first refused one on is published once it has drained, one at a time:
        those already out are duplicates the mesh skips at no cost, and one refused
        while this runs is taken up by the next pass."""
        while True:
            data = self._flood.take()
            if data is not None:
                with contextlib.suppress(MeshNotRunning):
                    await self.mesh.publish(REVOCATION_TOPIC, data)
            elif (first := self._flood.take_overflow()) is not None:
                kept = self.trust.revocations.kept_revocations()
                # the first refused is gone only if it expired: then republish them all
                start = next((i for i, r in enumerate(kept) if r.cid == first), 0)
                for revocation in kept[start:]:
                    with contextlib.suppress(MeshNotRunning):
                        await self.mesh.publish(REVOCATION_TOPIC, encode_message(revocation))
            else:
                await self._flood_waiting.park()

    async def _read_mesh(self, inbox: Inbox[Delivery]) -> None:
        """Handle what the mesh delivers, telling the inbox what each delivery cost: a
        link peer's turns come by the node's time it has used, so strangers whose
        messages are dear to check cannot take a client's turns (dms.net._turns)."""
        async for delivery in inbox:
            started = time.thread_time()  # CPU time: not the machine's other jobs'
            await self.receive(delivery.payload, topic=delivery.topic, via=delivery.peer)
            inbox.charge(delivery.peer, time.thread_time() - started)

    async def receive(self, data: bytes, *, topic: str | None, via: str) -> None:
        """One frame from link peer `via`: a revocation, or a message for the actors.
        A publication dropped unprocessed (over a budget) is not "seen": a later copy
        of it may get in."""
        if topic == REVOCATION_TOPIC:
            taken = self.revocations.receive(data, via)
        else:
            taken = await self.system.receive(data, topic=topic, via=via)
        if not taken and topic is not None:
            self.mesh.forget(topic, data)

    def _greeting(self, peer: str) -> list[tuple[str, bytes]]:
        """What a newly linked peer is sent: the revocations this node keeps for good
        (the newest `GREETING_LIMIT`), which it may have missed while it was away (it
        dedups what it has). Bounded: a peer that relinks again and again must not make
        the node send an unbounded amount per handshake."""
        return [(REVOCATION_TOPIC, encode_message(revocation))
                for revocation in self.trust.revocations.kept_revocations()[-GREETING_LIMIT:]]

    def screen_publication(self, topic: str, payload: bytes, via: str) -> bool:
        """Whether the mesh may deliver and forward a publication that link peer `via`
        relayed (junk stops here). Checking a signature is the expensive part, so each
        relaying peer has a budget of them; past it a publication is dropped unchecked
        and unmarked as seen (a later copy may get in), unless it is a revocation that
        matters here."""
        if not self._screen_budget.allow(via, topic, self.clock()) and not (
                topic == REVOCATION_TOPIC and self.revocations.known(payload)):
            self.counters["dropped.screen-budget"] += 1
            self.mesh.forget(topic, payload)
            return False
        if topic == REVOCATION_TOPIC:
            return self.revocations.screen(payload)
        return self.system.screen_publication(topic, payload)

    def measured_rtts(self) -> dict[str, float]:
        """Round-trip times (ms) to the peers this node is linked with, as pinged."""
        return {peer: info.rtt_ms for peer, info in self.mesh.peers.items()
                if info.connected and info.rtt_ms is not None}

    def describe(self) -> NodeInfo:
        """What `/dms/node/info` answers."""
        markets = tuple(deployment_markets(self.trust.provided.values(), self.did))
        roles = (("orchestrator",) if markets else ()) + (
            ("provider",) if self.provider is not None else ())
        service = self.deployments
        active = 0 if service is None else sum(
            not known.final for known in service.deployments.values())
        now = self.clock()
        return NodeInfo(did=self.did, address=self.address, version=_version(),
                        started=self.started, uptime=round(max(0.0, now - self.started), 3),
                        roles=roles, markets=markets, deployments=active,
                        peers=len(self.mesh.connected_peers()))

    def offering(self) -> NodeResources:
        """What `/dms/node/resources` answers."""
        provider = self.provider
        if provider is None:
            return NodeResources(provider=False)
        book = provider.book
        offered, free = book.offered, book.free(self.clock())
        return NodeResources(
            provider=True, offered=_amounts(offered), free=_amounts(free),
            reserved=Amounts(millicores=offered.millicores - free.millicores,
                             ram=offered.ram - free.ram, disk=offered.disk - free.disk,
                             gpus=len(offered.gpus) - len(free.gpus)),
            executors=tuple(sorted(kind.value for kind in provider.executors)),
            location=offered.location, price=provider.price,
            reservations=len(book.reservations()))

    def metrics(self) -> dict[str, int]:
        """Counters: admission decisions, replies, revocations and the mesh's frames."""
        merged: Counter[str] = self.system.metrics()
        merged.update(self.revocations.counters)
        merged.update(self.counters)
        merged.update({f"net.{k}": v for k, v in self.mesh.metrics.items()})
        return dict(merged)

    # -- trust ------------------------------------------------------------------------

    def grant(self, audience: str, command: str, *, lifetime: float | None = 3600.0,
              policy: Sequence[Any] = ()) -> Delegation:
        """Delegate `command` over this node's resources to `audience`."""
        return delegate(self.key, audience, command, policy=list(policy),
                        expiration=clamp_expiry(None, self.clock(), lifetime))

    def add_proofs(self, *delegations: Delegation) -> None:
        """Hold delegations that let this node's actors prove their invocations."""
        self.trust.provide(*delegations)
        if self.store is not None:
            for delegation in delegations:
                self.store.put_delegation(delegation)

    def drop_proofs_for(self, holder: str) -> int:
        """Stop holding (here and on disk) the delegations others granted to `holder`, an
        actor of this node that has ended for good (a deployment's orchestrator: its
        allocations' controls), so that held proofs do not pile up with every deployment
        ever made. The node's own grants to its actors are the actor system's. Returns
        how many were dropped."""
        gone = [d for d in self.trust.provided.values() if d.aud == holder and d.iss != self.did]
        for delegation in gone:
            self.trust.provided.pop(delegation.cid, None)
            if self.store is not None:
                self.store.remove_delegation(delegation.cid)
        return len(gone)

    async def publish_revocation(self, revocation: Invocation) -> None:
        """Apply a revocation here, keep it, and flood it on the revocation topic."""
        self.revocations.apply(revocation)
        await self.mesh.publish(REVOCATION_TOPIC, encode_message(revocation))


def _amounts(capacity: Capacity) -> Amounts:
    return Amounts(millicores=capacity.millicores, ram=capacity.ram, disk=capacity.disk,
                   gpus=len(capacity.gpus))


def _version() -> str:
    try:
        return importlib.metadata.version("pydms")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _checked_anchor(anchor: str) -> str:
    try:
        public_key_from_did(anchor)
    except (UcanError, ValueError, TypeError):
        raise ValueError(f"anchor {anchor!r} is not a did:key of an Ed25519 key") from None
    return anchor


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
    provider: ProviderConfig | None = None,
    deployments: DeploymentSettings | None = None,
    publication_lifetime: float = PUBLICATION_LIFETIME,
) -> AsyncIterator[Node]:
    """Run a node for the duration of the block; leaving it cancels every actor.

    The node key is `key`, else `key_name` from the `keystore` directory (created on
    first use, encrypted with the passphrase), else a fresh key that dies with the node.
    `listen` is `tcp://HOST:PORT` or `ws://HOST:PORT` (port 0 picks one; see
    `node.address`) or, with `network`, a `memory://NAME` address on that in-memory
    network. `bootstrap` lists addresses to dial, each over the carrier its scheme names
    (`dms.net.NodeTransport`), so a tcp:// node and a ws:// node reach each other.
    `anchors` are the DIDs whose authority this node accepts.
    With `state_dir`, held grants and known revocations persist across restarts,
    deployments are recorded in its SQLite database, and the anchors kept there
    (`dms.node._anchors`, `dms cap anchor`) are accepted too; what `dms cap` writes
    there while the node runs is taken in within seconds (`dms.node._state_watch`).

    Every node runs the deployment service (`/dms/node/deployment/...`): it orchestrates
    when it holds a grant of `/dms/deployment/request`. With `provider`, it also offers
    this machine to deployments (bids, reservations, allocations).
    `publication_lifetime` is how long a publication's id is remembered, so that a copy
    is not delivered twice (at least `MIN_PUBLICATION_LIFETIME`; the GRAFT repair cache
    keeps publications no longer than that).
    """
    seen, cache = publication_memory(publication_lifetime)  # ValueError before any I/O
    if key is None:
        key = (load_node_key(keystore, key_name, passphrase) if keystore is not None
               else SigningKey.generate())
    elif not isinstance(key, SigningKey):
        raise TypeError(f"key must be a ucan.SigningKey, got {type(key).__name__}; to load a "
                        f"key by name use keystore=DIR and key_name=NAME")
    anchors = [_checked_anchor(anchor) for anchor in anchors]
    flags = tuple(anchors)
    if network is None and listen is not None:
        parse_node_address(listen, listening=True)  # BadAddress now, not in the nursery
    transport: Transport = (network.transport(key.nacl_key) if network is not None
                            else NodeTransport(key.nacl_key))
    # Built before the nursery so a bad address or state directory is a plain exception.
    mesh = Mesh(key.nacl_key, transport, listen=listen, bootstrap=list(bootstrap),
                priority_topics=[REVOCATION_TOPIC], seen=seen, cache=cache,
                screen=lambda topic, payload, via: node.screen_publication(topic, payload, via),
                greeting=lambda peer: node._greeting(peer))
    store = None if state_dir is None else TokenStore(os.path.join(state_dir, "tokens"))
    async with hold_state_dir(state_dir):
        if state_dir is not None:  # InvalidAnchors names the file: a plain exception
            anchors += [a for a in read_anchors(state_dir) if a not in anchors]
        # Accepted message ids survive a restart: a message must not run twice.
        replays = None if state_dir is None else ReplayLog(
            os.path.join(state_dir, "replays"), clock())
        try:
            node = Node(key, mesh, anchors=anchors, clock=clock, policy=policy, store=store,
                        replays=replays)
            async with contextlib.AsyncExitStack() as stack:
                records = None if state_dir is None else NodeStore.open(state_dir)
                if records is not None:
                    stack.callback(records.close)  # after the nursery: no call runs then
                service = DeploymentService(
                    lambda: deployment_markets(node.trust.provided.values(), node.did),
                    records, clock, deployments or DeploymentSettings(),
                    hold=node.add_proofs, release=node.drop_proofs_for)
                node.root.register(service)
                node.deployments = service
                nursery = await stack.enter_async_context(serving_nursery())
                await nursery.start(mesh.run)
                await nursery.start(node.run)
                if state_dir is not None and store is not None:  # what `dms cap` writes
                    nursery.start_soon(StateWatch(node.trust, node.revocations,
                                                  node.publish_revocation, state_dir, store,
                                                  flags).run)
                await service.recover()
                # `subnet.join`: nothing is made until a deployment's owner joins one
                service.joined = joined = await stack.enter_async_context(
                    joined_networks(mesh.peer_id, mesh.send_tunnel))
                hosted = None
                if provider is not None:
                    from dms.provider import open_provider

                    node.provider = await stack.enter_async_context(
                        open_provider(node.root, provider, clock, rtts=node.measured_rtts,
                                      store=records, tunnel=mesh.send_tunnel))
                    hosted = node.provider.networks

                def tunnel(peer: str, frame: bytes) -> None:
                    if joined.deliver(peer, frame):
                        return
                    if hosted is not None:
                        hosted.deliver(peer, frame)
                    else:
                        joined.counters["frames_unknown_ensemble"] += 1

                mesh.tunnel = tunnel
                stack.callback(setattr, mesh, "tunnel", None)
                stack.push_async_callback(service.stop_all)
                yield node
        finally:
            if replays is not None:
                replays.close()
