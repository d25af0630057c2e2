"""The provider role: answers deployment requests with bids or declines, reserves under
leases, turns reservations into allocation actors and takes everything down again.

It runs on an actor of its own (`open_provider` spawns it), whose main task expires
leases and stops the allocations of a deployment whose orchestrator stopped asking
after them. Every command that changes a deployment here is accepted only from the
orchestrator actor that committed it (the reservation's owner); anybody else with
`/dms/deployment` authority is told it is not theirs.
"""

from __future__ import annotations

import itertools
import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import trio

from dms.actor import Actor, BehaviorFailed, Message, Role, behavior
from dms.ensemble import EnsembleError, derive_requirements, load_ensemble
from dms.ensemble._requirements import EnsembleRequirements
from dms.ensemble._spec import Ensemble
from dms.executor import Executor
from dms.workload import ExecutorKind
from dms.workload.plan import PlanError, plan_workload

from ._allocation import AllocationRole
from ._book import ReservationBook
from ._capacity import Capacity
from ._decide import decide
from ._reservation import ReservationError
from ._wire import (
    ALLOCATE,
    ALLOCATION,
    BID,
    COMMIT,
    DEPLOYMENT_TOPIC,
    MAX_ENSEMBLE_TEXT,
    MAX_RTTS,
    REQUEST,
    REVERT,
    SHUTDOWN,
    Allocated,
    AllocateOrder,
    AllocationGrant,
    BidAnswer,
    BidRequest,
    CommitOrder,
    Committed,
    DeploymentRef,
)

log = logging.getLogger("dms.provider")

SWEEP_INTERVAL = 1.0
"""Seconds between the provider's lease and heartbeat checks."""


@attrs.define
class _Hosted:
    """A deployment's allocations here, and when its orchestrator last asked."""

    owner: str
    heartbeat: float
    last_seen: float
    allocations: dict[str, tuple[Actor, AllocationRole]] = attrs.Factory(dict)


class ProviderService(Role):
    """Register on the provider actor; run `sweep` as its main task."""

    def __init__(self, peer: str, offered: Capacity, executors: Mapping[ExecutorKind, Executor],
                 clock: Callable[[], float], *, price: float = 0.0,
                 rtts: Callable[[], Mapping[str, float]] = dict) -> None:
        """`rtts()`: this node's measured round-trip times (ms) to its linked peers."""
        self.peer = peer
        self.rtts = rtts
        self.book = ReservationBook(offered)
        self.executors = dict(executors)
        self.clock = clock
        self.price = price
        self.counters: Counter[str] = Counter()
        self._hosted: dict[str, _Hosted] = {}

    # -- bids -------------------------------------------------------------------------

    @behavior(REQUEST, args=BidRequest)
    async def request(self, message: Message[BidRequest]) -> None:
        """Answer with a bid for the nodes that fit what is free, a decline for the rest.
        The answer goes to `reply_to`, which must be the request's signer."""
        order = message.args
        if order.reply_to.id != message.sender.id:
            raise BehaviorFailed("reply_to must be the requesting actor itself",
                                 name="InvalidArgs")
        requirements = self._requirements(order.ensemble)
        free = self.book.free_for(order.deployment, self.clock())
        decision = decide(self.peer, free, requirements, price=self.price)
        self.counters["bids" if decision.bid else "declines"] += 1
        # Under the request's own subject (the market's organisation): the orchestrator's
        # node trusts it, as this node does.
        rtts = dict(itertools.islice(self.rtts().items(), MAX_RTTS))
        await self.actor.send(order.reply_to, BID, BidAnswer(order.deployment, decision.bid,
                                                             decision.decline, rtts),
                              subject=message.invocation.sub)

    # -- commit and revert ------------------------------------------------------------

    @behavior(COMMIT, args=CommitOrder)
    async def commit(self, message: Message[CommitOrder]) -> Committed:
        """Reserve every node asked for, or none (InsufficientCapacity, NotYours, ...)."""
        order = message.args
        owner = message.sender.id
        ensemble = self._ensemble(order.ensemble)
        requirements = _requirements_of(ensemble)
        by_name = {node.name: node for node in requirements.nodes}
        unknown = [n for n in order.nodes if n not in by_name]
        if unknown:
            raise BehaviorFailed(f"nodes: {unknown[0]!r} is not a node of the ensemble",
                                 name="InvalidArgs")
        now = self.clock()
        asked = attrs.evolve(requirements, nodes=tuple(by_name[n] for n in order.nodes))
        decision = decide(self.peer, self.book.free(now), asked)
        if decision.decline is not None:  # executors, location, pinning: not only sizes
            raise BehaviorFailed(str(decision.decline), name="InsufficientCapacity")
        reserved = []
        try:
            for name in order.nodes:
                node = by_name[name]
                ports = [port.public for port in node.ports]
                reserved.append(self.book.reserve(order.deployment, name, node.resources, ports,
                                                  now, order.lease, owner=owner))
        except ReservationError as error:
            for reservation in reserved:
                self.book.release(reservation.id)
            raise BehaviorFailed(str(error), name=type(error).__name__) from None
        self.counters["commits"] += 1
        return Committed(tuple(r.id for r in reserved))

    @behavior(REVERT, args=DeploymentRef)
    async def revert(self, message: Message[DeploymentRef]) -> dict[str, int]:
        """Undo everything the deployment has here; idempotent."""
        ref = message.args
        return {"released": await self._take_down(ref.deployment, message.sender.id, ref.nodes)}

    @behavior(SHUTDOWN, args=DeploymentRef)
    async def shutdown(self, message: Message[DeploymentRef]) -> dict[str, int]:
        ref = message.args
        return {"released": await self._take_down(ref.deployment, message.sender.id, ref.nodes)}

    # -- allocate ---------------------------------------------------------------------

    @behavior(ALLOCATE, args=AllocateOrder)
    async def allocate(self, message: Message[AllocateOrder]) -> Allocated:
        """Turn the reservations of `nodes` into allocation actors, ready to start.
        Their orchestrator gets a delegation over each to control it."""
        order = message.args
        owner = message.sender.id
        ensemble = self._ensemble(order.ensemble)
        now = self.clock()
        held = {r.node: r for r in self.book.by_deployment(order.deployment)}
        for name in order.nodes:
            reservation = held.get(name)
            if reservation is None:
                raise BehaviorFailed(f"node {name!r} of deployment {order.deployment} holds "
                                     f"no reservation here", name="UnknownReservation")
            if reservation.owner != owner:
                raise BehaviorFailed(f"deployment {order.deployment} is not yours",
                                     name="NotYours")
        plans = []
        try:
            for name in order.nodes:
                for allocation in ensemble.nodes[name].allocations:
                    plans.append(plan_workload(ensemble, allocation))
        except PlanError as error:
            raise BehaviorFailed(str(error), name="InvalidWorkload") from None
        for plan in plans:
            if plan.execution.executor not in self.executors:
                raise BehaviorFailed(f"allocation {plan.allocation}: executor "
                                     f"{plan.execution.executor.value} is not available here",
                                     name="InvalidWorkload")
        for name in order.nodes:
            try:
                self.book.allocate(held[name].id, now)
            except ReservationError as error:
                raise BehaviorFailed(str(error), name=type(error).__name__) from None
        hosted = self._hosted.setdefault(order.deployment,
                                         _Hosted(owner, order.heartbeat, now))
        hosted.heartbeat, hosted.last_seen = order.heartbeat, now
        grants = []
        for plan in plans:
            existing = hosted.allocations.get(plan.allocation)
            if existing is None:
                existing = await self._spawn_allocation(order.deployment, plan, hosted)
            actor, role = existing
            proof = actor.delegate(owner, ALLOCATION)
            grants.append(AllocationGrant(plan.allocation, plan.node, actor.handle,
                                          proof.envelope))
        return Allocated(tuple(grants))

    async def _spawn_allocation(self, deployment: str, plan: Any,
                                hosted: _Hosted) -> tuple[Actor, AllocationRole]:
        # Execution names are unique on this machine: two deployments may both have "web".
        spec = attrs.evolve(plan.execution, name=f"{deployment[:8]}-{plan.allocation}")

        def heard_from_orchestrator() -> None:
            hosted.last_seen = self.clock()

        role = AllocationRole(plan.allocation, plan.node, spec, self.executors[spec.executor],
                              health=plan.health, policy=plan.restart, clock=self.clock,
                              on_heartbeat=heard_from_orchestrator)
        actor = await self.actor.spawn(f"allocation/{deployment}/{plan.allocation}",
                                       commands=[], main=role.main)
        actor.register(role)
        hosted.allocations[plan.allocation] = (actor, role)
        return actor, role

    # -- taking down ------------------------------------------------------------------

    async def _take_down(self, deployment: str, requester: str | None,
                         nodes: Sequence[str] = ()) -> int:
        """Stop the deployment's allocations (all at once) and release what it holds,
        or only that of `nodes` when given. `requester` must own it (None: the provider
        itself, e.g. a lapsed heartbeat)."""
        hosted = self._hosted.get(deployment)
        owners = {r.owner for r in self.book.by_deployment(deployment)}
        if hosted is not None:
            owners.add(hosted.owner)
        if requester is not None and owners and owners != {requester}:
            raise BehaviorFailed(f"deployment {deployment} is not yours", name="NotYours")
        wanted = set(nodes)
        if hosted is not None:
            going = {name: pair for name, pair in hosted.allocations.items()
                     if not wanted or pair[1].node in wanted}
            async with trio.open_nursery() as nursery:
                for actor, role in going.values():
                    nursery.start_soon(_stop_allocation, actor, role)
            for name in going:
                del hosted.allocations[name]
            if not hosted.allocations:
                del self._hosted[deployment]
        released = [r for r in self.book.by_deployment(deployment)
                    if not wanted or r.node in wanted]
        for reservation in released:
            self.book.release(reservation.id)
        if released or hosted is not None:
            self.counters["taken_down"] += 1
        return len(released)

    async def sweep(self, actor: Actor) -> None:
        """The provider actor's main task: expire unused leases and take down the
        deployments whose orchestrator has not asked after them within their heartbeat."""
        actor.subscribe(DEPLOYMENT_TOPIC)
        while True:
            await trio.sleep(SWEEP_INTERVAL)
            now = self.clock()
            for lapsed in self.book.expire(now):
                self.counters["leases_expired"] += 1
                log.info("lease of %s ran out before it was allocated", lapsed.id)
            for deployment, hosted in list(self._hosted.items()):
                if now - hosted.last_seen > hosted.heartbeat:
                    self.counters["heartbeats_lapsed"] += 1
                    log.warning("deployment %s: no word from its orchestrator for %.0f s; "
                                "stopping its allocations here", deployment,
                                now - hosted.last_seen)
                    await self._take_down(deployment, None)

    async def stop_everything(self) -> None:
        """Take every deployment down here (the provider is stopping)."""
        for deployment in list(self._hosted):
            await self._take_down(deployment, None)

    # -- reading requests ---------------------------------------------------------------

    def _ensemble(self, text: str) -> Ensemble:
        if len(text.encode()) > MAX_ENSEMBLE_TEXT:
            raise BehaviorFailed(f"ensemble: over {MAX_ENSEMBLE_TEXT} bytes",
                                 name="InvalidArgs")
        try:
            return load_ensemble(text, file="<request>")
        except EnsembleError as error:
            raise BehaviorFailed(str(error), name="InvalidEnsemble") from None

    def _requirements(self, text: str) -> EnsembleRequirements:
        return _requirements_of(self._ensemble(text))


def _requirements_of(ensemble: Ensemble) -> EnsembleRequirements:
    return derive_requirements(ensemble)


async def _stop_allocation(actor: Actor, role: AllocationRole) -> None:
    await role.stop_workload()
    await actor.stop()
