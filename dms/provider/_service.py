"""The provider role: answers deployment requests with bids or declines, reserves under
leases, turns reservations into allocation actors and takes everything down again.

It runs on an actor of its own (`open_provider` spawns it), whose main task expires
leases and stops the allocations of a deployment whose orchestrator stopped asking
after them. Every command that changes a deployment here is accepted only from the
orchestrator actor that committed it (the reservation's owner); anybody else with
`/dms/deployment` authority is told it is not theirs.

With a node store, what it holds and runs is kept there (`ProviderRecords`) as it
changes, so that a restarted provider picks it up again (`restore`): it re-adopts the
executions of live allocations into new allocation actors, which the orchestrator finds
with `/dms/deployment/allocations` on this node's root actor (`ProviderLocator`), and
removes the rest.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import attrs
import trio

from dms.actor import Actor, ActorError, ActorSystem, BehaviorFailed, Message, Role, behavior
from dms.ensemble import EnsembleError, derive_requirements, load_ensemble
from dms.ensemble._requirements import EnsembleRequirements
from dms.ensemble._spec import Ensemble
from dms.executor import (
    Adoptable,
    Execution,
    ExecutionSpec,
    Executor,
    ExecutorError,
    ProcessExecution,
)
from dms.network import NetworkError, NetworkOrder, order_from_wire
from dms.store import (
    AllocationRecord,
    AllocationState,
    HostedDeployment,
    InvalidRecord,
    StoreError,
)
from dms.supervise import EventKind
from dms.workload import ExecutorKind
from dms.workload.plan import PlanError, WorkloadPlan, plan_workload

from ._allocation import AllocationRole
from ._ask import Ask
from ._book import ReservationBook
from ._capacity import Capacity
from ._decide import decide
from ._leftovers import discard_leftovers
from ._network import HostedNetworks
from ._reservation import Reservation, ReservationError
from ._restart import Resume, ResumedAllocation, plan_restart
from ._resume import EndedWhileAway
from ._state import ProviderRecords, Saved, allocation_id, execution_name, local_deployment
from ._wire import (
    ALLOCATE,
    ALLOCATION,
    BID,
    COMMIT,
    DEPLOYMENT_TOPIC,
    MAX_ENSEMBLE_TEXT,
    MAX_RTTS,
    MAX_SUBNETS,
    MEASURE,
    NETWORK,
    PROBE,
    PROBE_BYTES,
    REQUEST,
    REVERT,
    SHUTDOWN,
    Allocated,
    AllocateOrder,
    AllocationEvent,
    AllocationGrant,
    BidAnswer,
    BidRequest,
    CommitOrder,
    Committed,
    DeploymentRef,
    HostedAllocations,
    Measured,
    MeasureOrder,
    NetworkUpdate,
    Probe,
    ensemble_limits,
)

log = logging.getLogger("dms.provider")

REMOVE_TIMEOUT = 30.0
"""How long removing a stopped allocation's execution (container, files) may take."""
MAX_MEASURED = 16
"""Providers one measurement order times at most."""
SWEEP_INTERVAL = 1.0
"""Seconds between the provider's lease and heartbeat checks (and the writes of when
each orchestrator last asked)."""

_FINAL_EVENTS = frozenset({EventKind.COMPLETED.value, EventKind.CRASH_LOOP.value,
                           EventKind.STAYED_DOWN.value})
"""Events after which an allocation's workload never runs again here."""
_RECORDED_STATE = {
    EventKind.RUNNING: AllocationState.RUNNING,
    EventKind.HEALTHY: AllocationState.HEALTHY,
    EventKind.UNHEALTHY: AllocationState.UNHEALTHY,
    EventKind.RESTARTING: AllocationState.RESTARTING,
    EventKind.COMPLETED: AllocationState.COMPLETED,
    EventKind.CRASH_LOOP: AllocationState.FAILED,
    EventKind.STAYED_DOWN: AllocationState.FAILED,
    EventKind.REDEPLOY_REQUESTED: AllocationState.FAILED,
    EventKind.STOPPED: AllocationState.STOPPED,
}
"""What an allocation's supervision events mean for its record. An exit or a failed
start is not final until its restart policy has decided (the next event says), so a
provider that stops in between resumes it as ended while away and the policy decides
then."""
PROBED_FOR = 120.0
"""Seconds after a bid during which its requester may have other bidders measure the
bandwidth to this provider."""
MEASURERS_PER_BID = 32
"""Measuring providers (grant holders) one bid lets send a loaded probe, once each (the
orchestrator measures at most 32 pairs a round)."""
MAX_PROBED_BIDS = 4096
"""Bids remembered for that at most (the oldest are forgotten first)."""
HOLDER_SHARE = 4
"""One grant holder may hold at most 1/HOLDER_SHARE of a provider's reservation slots:
whoever the organisation granted `/dms/deployment` (and every actor and key it
delegates to) takes no more, so others can still deploy here."""
MAX_HEARTBEAT = 300.0
"""Longest heartbeat an orchestrator may ask for (a longer one is granted this long):
allocations whose orchestrator vanished are stopped within it, whatever it asked."""


@attrs.define
class _Hosted:
    """A deployment's allocations here, and when its orchestrator last asked."""

    owner: str
    heartbeat: float
    last_seen: float
    ensemble: str = ""
    recorded_seen: float = 0.0  # the last_seen the store has
    allocations: dict[str, tuple[Actor, AllocationRole]] = attrs.Factory(dict)


@attrs.define
class _BidMemory:
    """A bid made lately, for bandwidth measurements of it: until when, whether this
    provider measured for it yet, and who probed it."""

    until: float
    measured: bool = False
    probed_by: set[str] = attrs.Factory(set)  # measuring grant holders


class ProviderService(Role):
    """Run `sweep` as the provider actor's main task, `restore` what a store kept, then
    register on the provider actor."""

    def __init__(self, peer: str, offered: Capacity, executors: Mapping[ExecutorKind, Executor],
                 clock: Callable[[], float], *, price: float = 0.0,
                 rtts: Callable[[], Mapping[str, float]] = dict,
                 book: ReservationBook | None = None,
                 records: ProviderRecords | None = None,
                 networks: HostedNetworks | None = None) -> None:
        """`rtts()`: this node's measured round-trip times (ms) to its linked peers.
        `book`: the reservations restored from `records` (default: an empty book).
        With `records`, `sweep` waits until `restore` has run; `clock` must then be the
        wall clock, for what they keep to mean the same after a restart.
        `networks`: the ensemble networks this provider hosts (None: it offers none,
        and its workloads run in the host's network)."""
        self.peer = peer
        self.networks = networks
        self.rtts = rtts
        self.book = book if book is not None else ReservationBook(offered)
        self.executors = dict(executors)
        self.clock = clock
        self.price = price
        self.records = records if records is not None else ProviderRecords(None)
        self.counters: Counter[str] = Counter()
        self._hosted: dict[str, _Hosted] = {}
        self._recorded: dict[str, AllocationRecord] = {}  # by allocation id
        self._holders: dict[str, str] = {}  # reservation id -> its grant holder
        self._bids: OrderedDict[str, _BidMemory] = OrderedDict()  # by local deployment
        self._leaving = False
        self._restored = trio.Event()  # with records, `sweep` waits for `restore`
        if records is None:
            self._restored.set()

    # -- bids -------------------------------------------------------------------------

    @behavior(REQUEST, args=BidRequest)
    async def request(self, message: Message[BidRequest]) -> None:
        """Answer with a bid for the nodes that fit what is free, a decline for the rest.
        The answer goes to `reply_to`, which must be the request's signer."""
        order = message.args
        if order.reply_to.id != message.sender.id:
            raise BehaviorFailed("reply_to must be the requesting actor itself",
                                 name="InvalidArgs")
        if order.reply_to.peer not in _signer_nodes(message):
            # Else one broadcast has every provider send its answer to a third party.
            raise BehaviorFailed("reply_to.peer must be the node of the requesting actor",
                                 name="InvalidArgs")
        requirements = self._requirements(order.ensemble)
        free = self.book.free_for(local_deployment(message.sender.id, order.deployment),
                                  self.clock())
        decision = decide(self.peer, free, requirements, price=self.price)
        self.counters["bids" if decision.bid else "declines"] += 1
        if decision.bid:
            self._remember_bid(local_deployment(message.sender.id, order.deployment))
        # Under the request's own subject (the market's organisation): the orchestrator's
        # node trusts it, as this node does.
        rtts = dict(itertools.islice(self.rtts().items(), MAX_RTTS))
        subnets = () if self.networks is None else tuple(
            str(subnet) for subnet in self.networks.subnets_in_use()[:MAX_SUBNETS])
        await self.actor.send(order.reply_to, BID, BidAnswer(
            order.deployment, decision.bid, decision.decline, rtts,
            network=self.networks is not None, subnets=subnets),
            subject=message.invocation.sub)

    # -- commit and revert ------------------------------------------------------------

    @behavior(MEASURE, args=MeasureOrder)
    async def measure(self, message: Message[MeasureOrder]) -> Measured:
        """Time one `PROBE_BYTES` transfer to each provider named (at most
        `MAX_MEASURED`, each once), net of the round trip without payload: bits per
        second. Only for a deployment this provider bid on to the caller lately, once
        per bid; the empty round trip also asks whether the other provider takes the
        load: only one that bid on it to the caller does, once from each measurer."""
        order = message.args
        bid = self._bid_memory(local_deployment(message.sender.id, order.deployment))
        if bid is None or bid.measured:
            raise BehaviorFailed(f"deployment {order.deployment}: no bid of this provider "
                                 f"to you awaits a measurement", name="NotExpected")
        bid.measured = True
        measured: dict[str, float] = {}
        for target in list(dict.fromkeys(order.to))[:MAX_MEASURED]:
            with contextlib.suppress(ActorError):
                began = trio.current_time()
                answer = await self.actor.invoke(
                    target, PROBE, Probe(b"", order.deployment, message.sender.id),
                    subject=message.invocation.sub, timeout=5)
                empty = trio.current_time() - began
                if not (isinstance(answer, dict) and answer.get("expected") is True):
                    continue
                began = trio.current_time()
                await self.actor.invoke(
                    target, PROBE, Probe(bytes(PROBE_BYTES), order.deployment,
                                         message.sender.id),
                    subject=message.invocation.sub, timeout=10)
                loaded = trio.current_time() - began
                measured[target.peer] = 8 * PROBE_BYTES / max(loaded - empty, 1e-6)
        return Measured(measured)

    @behavior(PROBE, args=Probe)
    async def probe(self, message: Message[Probe]) -> dict[str, Any]:
        """The other end of a bandwidth measurement: receive and say how much came,
        and whether a loaded probe from this measurer is welcome: once per measuring
        grant holder, for a deployment this provider bid on to `requester`."""
        probe = message.args
        if len(probe.payload) > PROBE_BYTES:
            raise BehaviorFailed(f"payload: over {PROBE_BYTES} bytes", name="InvalidArgs")
        bid = self._bid_memory(local_deployment(probe.requester, probe.deployment))
        measurer = _grant_holder(message)
        expected = (bid is not None and measurer not in bid.probed_by
                    and len(bid.probed_by) < MEASURERS_PER_BID)
        if probe.payload:
            if not expected or bid is None:
                raise BehaviorFailed(f"deployment {probe.deployment}: no bid of this provider "
                                     f"to {probe.requester} awaits a measurement from you",
                                     name="NotExpected")
            bid.probed_by.add(measurer)
        return {"received": len(probe.payload), "expected": expected}

    def _remember_bid(self, key: str) -> None:
        self._bids.pop(key, None)
        now = self.clock()
        self._bids[key] = _BidMemory(now + PROBED_FOR)
        while len(self._bids) > MAX_PROBED_BIDS:
            self._bids.popitem(last=False)
        # Each lasts PROBED_FOR, so the oldest ends first: those ended are let go now
        # rather than when looked up (most never are: their deployment ended).
        while self._bids and next(iter(self._bids.values())).until < now:
            self._bids.popitem(last=False)

    def _bid_memory(self, key: str) -> _BidMemory | None:
        bid = self._bids.get(key)
        if bid is not None and bid.until < self.clock():
            del self._bids[key]
            return None
        return bid

    @behavior(COMMIT, args=CommitOrder)
    async def commit(self, message: Message[CommitOrder]) -> Committed:
        """Reserve every node asked for, or none (InsufficientCapacity, NotYours, ...)."""
        order = message.args
        owner = message.sender.id
        deployment = local_deployment(owner, order.deployment)
        ensemble = self._ensemble(order.ensemble)
        requirements = _requirements_of(ensemble)
        by_name = {node.name: node for node in requirements.nodes}
        unknown = [n for n in order.nodes if n not in by_name]
        if unknown:
            raise BehaviorFailed(f"nodes: {unknown[0]!r} is not a node of the ensemble",
                                 name="InvalidArgs")
        holder = _grant_holder(message)
        self._check_share(holder, len(order.nodes))
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
                reserved.append(self.book.reserve(deployment, name, node.resources, ports,
                                                  now, order.lease, owner=owner))
        except ReservationError as error:
            for reservation in reserved:
                self.book.release(reservation.id)
            raise BehaviorFailed(str(error), name=type(error).__name__) from None
        try:
            await self.records.reserved(reserved)
        except StoreError as error:  # not kept, not held: a restart must not find less
            for reservation in reserved:
                self.book.release(reservation.id)
            raise _unrecorded(error) from None
        self._holders.update((r.id, holder) for r in reserved)
        self.counters["commits"] += 1
        return Committed(tuple(r.id for r in reserved))

    def _check_share(self, holder: str, more: int) -> None:
        """TooManyReservations when `holder` would hold over its share of the slots.
        Reservations restored after a restart count for nobody: their leases end."""
        live = {r.id for r in self.book.reservations()}
        self._holders = {r: h for r, h in self._holders.items() if r in live}
        share = self.book.max_reservations // HOLDER_SHARE
        held = sum(1 for h in self._holders.values() if h == holder)
        if held + more > share:
            raise BehaviorFailed(f"nodes: {held} reservations of {holder} are held here, "
                                 f"{more} more would pass its share of {share}",
                                 name="TooManyReservations")

    @behavior(REVERT, args=DeploymentRef)
    async def revert(self, message: Message[DeploymentRef]) -> dict[str, int]:
        """Undo everything the deployment has here; idempotent."""
        return {"released": await self._take_down_for(message)}

    @behavior(SHUTDOWN, args=DeploymentRef)
    async def shutdown(self, message: Message[DeploymentRef]) -> dict[str, int]:
        return {"released": await self._take_down_for(message)}

    async def _take_down_for(self, message: Message[DeploymentRef]) -> int:
        owner, ref = message.sender.id, message.args
        return await self._take_down(local_deployment(owner, ref.deployment), owner, ref.nodes)

    # -- allocate ---------------------------------------------------------------------

    @behavior(ALLOCATE, args=AllocateOrder)
    async def allocate(self, message: Message[AllocateOrder]) -> Allocated:
        """Turn the reservations of `nodes` into allocation actors, ready to start.
        Their orchestrator gets a delegation over each to control it."""
        order = message.args
        owner = message.sender.id
        if not order.nodes:  # it would only touch the deployment's heartbeat here
            raise BehaviorFailed("nodes: name the ensemble nodes to allocate",
                                 name="InvalidArgs")
        if (isinstance(order.heartbeat, bool) or not isinstance(order.heartbeat, int | float)
                or not math.isfinite(order.heartbeat) or order.heartbeat <= 0):
            raise BehaviorFailed(f"heartbeat: {order.heartbeat!r} is not a number of seconds "
                                 f"above 0", name="InvalidArgs")
        heartbeat = min(order.heartbeat, MAX_HEARTBEAT)
        deployment = local_deployment(owner, order.deployment)
        network = self._network_order(order.network)
        ensemble = self._ensemble(order.ensemble)
        asked = {node.name: node for node in _requirements_of(ensemble).nodes}
        now = self.clock()
        held = {r.node: r for r in self.book.by_deployment(deployment)}
        for name in order.nodes:
            reservation = held.get(name)
            if reservation is None:
                raise BehaviorFailed(f"node {name!r} of deployment {order.deployment} holds "
                                     f"no reservation here", name="UnknownReservation")
            # What runs is planned from this ensemble: it must ask what was reserved.
            if name not in asked or not _holds(reservation, Ask.of_node(asked[name])):
                raise BehaviorFailed(
                    f"node {name!r}: the ensemble asks other resources or ports than its "
                    f"reservation holds (it changed since commit)", name="ReservationMismatch")
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
        hosted = self._hosted.setdefault(
            deployment, _Hosted(owner, heartbeat, now, order.ensemble, now))
        hosted.heartbeat, hosted.last_seen = heartbeat, now
        hosted.ensemble = order.ensemble
        if network is not None and self.networks is not None:
            try:
                await self.networks.join(deployment, network)
            except (NetworkError, ValueError) as error:
                raise BehaviorFailed(str(error), name="NetworkFailed") from None
        grants, new = [], []
        for plan in plans:
            existing = hosted.allocations.get(plan.allocation)
            if existing is None:
                existing = await self._spawn_allocation(deployment, plan, hosted)
                new.append(self._recorded[allocation_id(deployment, plan.allocation)])
            grants.append(_grant(*existing, owner))
        allocated = [r for name in order.nodes if (r := self.book.get(held[name].id))]
        try:
            await self.records.hosting(
                HostedDeployment(deployment, owner, order.ensemble, heartbeat, now,
                                 network=order.network or {}),
                allocated, new)
        except StoreError as error:  # the orchestrator reverts: that takes them down
            raise _unrecorded(error) from None
        return Allocated(tuple(grants))

    @behavior(NETWORK, args=NetworkUpdate)
    async def network(self, message: Message[NetworkUpdate]) -> dict[str, bool]:
        """Take a redeployed deployment's new network order (its owner only), renumbered
        or not; checked before anything changes, recorded once applied."""
        update = message.args
        deployment = local_deployment(message.sender.id, update.deployment)
        hosted = self._hosted.get(deployment)
        if hosted is None or hosted.owner != message.sender.id:
            raise BehaviorFailed(f"deployment {update.deployment} has no allocations of "
                                 f"yours here", name="UnknownDeployment")
        order = self._network_order(update.network)
        if order is None or self.networks is None:
            return {"updated": False}
        try:
            await self.networks.join(deployment, order)
        except (NetworkError, ValueError) as error:
            raise BehaviorFailed(str(error), name="NetworkFailed") from None
        await self._keep_safely(self.records.hosting(HostedDeployment(
            deployment, hosted.owner, hosted.ensemble, hosted.heartbeat, hosted.last_seen,
            network=update.network), [], []), f"deployment {update.deployment}'s network moved")
        return {"updated": True}

    def _network_order(self, network: dict[str, Any] | None) -> NetworkOrder | None:
        """A message's network order, checked before anything is made: InvalidArgs
        naming the path when it is wrong or this provider offers no network."""
        if network is None:
            return None
        if self.networks is None:
            raise BehaviorFailed("network: this provider offers no ensemble network",
                                 name="InvalidArgs")
        try:
            return order_from_wire(network)
        except NetworkError as error:
            raise BehaviorFailed(str(error), name="InvalidArgs") from None

    def hosted_allocations(self, ref: DeploymentRef, requester: str) -> HostedAllocations:
        """The deployment's allocation actors here (those of `nodes`, if given), each
        with a fresh delegation to its orchestrator, and this provider actor: how an
        orchestrator finds them again after this provider restarted (they are new
        actors then; `ProviderLocator` serves this). Counts as a heartbeat."""
        hosted = self._hosted.get(local_deployment(requester, ref.deployment))
        if hosted is None:
            raise BehaviorFailed(f"deployment {ref.deployment} has no allocations of yours "
                                 f"here", name="UnknownDeployment")
        hosted.last_seen = max(hosted.last_seen, self.clock())
        wanted = set(ref.nodes)
        return HostedAllocations(self.actor.handle, tuple(
            _grant(actor, role, hosted.owner) for actor, role in hosted.allocations.values()
            if not wanted or role.node in wanted))

    async def _spawn_allocation(self, deployment: str, plan: WorkloadPlan, hosted: _Hosted, *,
                                resumed: Execution | EndedWhileAway | None = None,
                                ended: AllocationState | None = None,
                                record: AllocationRecord | None = None,
                                parent: Actor | None = None,
                                ) -> tuple[Actor, AllocationRole]:
        # Execution names are unique on this machine: two deployments may both have "web".
        spec = attrs.evolve(plan.execution, name=execution_name(deployment, plan.allocation))
        health = plan.health
        namespace = None if ended is not None else await self._add_to_network(
            deployment, plan.allocation, spec, resumed, restoring=record is not None)
        if namespace is not None:
            spec = attrs.evolve(spec, network_namespace=namespace)
            health = health if health is None else attrs.evolve(health, namespace=namespace)

        def heard_from_orchestrator() -> None:
            hosted.last_seen = max(hosted.last_seen, self.clock())

        key = allocation_id(deployment, plan.allocation)

        async def keep_event(role: AllocationRole, event: AllocationEvent) -> None:
            await self._record_event(key, role, event)
            if event.kind in _FINAL_EVENTS and self.networks is not None:
                await self.networks.remove(deployment, plan.allocation)  # nothing runs in it now
            if event.kind == EventKind.COMPLETED.value:
                await self._release_completed(deployment, role.node)

        role = AllocationRole(plan.allocation, plan.node, spec, self.executors[spec.executor],
                              health=health, policy=plan.restart, clock=self.clock,
                              on_heartbeat=heard_from_orchestrator, resumed=resumed,
                              ended=ended, on_event=keep_event)
        actor = await (parent or self.actor).spawn(
            f"allocation/{deployment}/{plan.allocation}", commands=[], main=role.main)
        actor.register(role)
        if isinstance(actor.system, ActorSystem):  # the one that admits its messages
            actor.system.admission.declare_replay_harmless(actor.id, role)
        hosted.allocations[plan.allocation] = (actor, role)
        self._recorded[key] = attrs.evolve(record, actor=actor.id) if record else AllocationRecord(
            id=key, deployment_id=deployment, name=plan.allocation, actor=actor.id,
            executor=spec.executor, created_at=self.clock())
        return actor, role

    async def _add_to_network(self, deployment: str, allocation: str, spec: ExecutionSpec,
                              resumed: Execution | EndedWhileAway | None, *,
                              restoring: bool = False) -> str | None:
        """The namespace `allocation` runs in, when its deployment has a network here
        (None otherwise): made now, or for a workload re-adopted after a restart, the
        one its process is in, named again with a new TUN (the old one died with the
        old provider). A docker allocation's is only reserved here: its container
        makes it, and the docker executor has it set up before the workload runs."""
        if self.networks is None:
            return None
        if spec.executor is ExecutorKind.DOCKER:
            return await self._reserve_container_network(deployment, allocation, spec,
                                                         resumed)
        if spec.executor is not ExecutorKind.PROCESS:
            return None
        pid = resumed.pid if isinstance(resumed, ProcessExecution) else None
        try:
            return await self.networks.add(deployment, allocation, spec.ports, of_pid=pid)
        except (NetworkError, OSError) as error:
            if restoring:  # a restart resumes it all the same, without it
                self.counters["restart_network_lost"] += 1
                log.warning("allocation %s of %s: its network is not rebuilt: %s",
                            allocation, deployment, error)
                return None
            raise BehaviorFailed(f"allocation {allocation}: {error}",
                                 name="NetworkFailed") from None

    async def _reserve_container_network(self, deployment: str, allocation: str,
                                         spec: ExecutionSpec,
                                         resumed: Execution | EndedWhileAway | None,
                                         ) -> str | None:
        """A docker allocation's namespace name; for a container re-adopted after a
        restart, its namespace is given its network again at once (the gate let it
        run long ago), and it is taken down with the container."""
        assert self.networks is not None
        namespace = self.networks.reserve(deployment, allocation, spec.ports)
        if namespace is None or resumed is None or isinstance(resumed, EndedWhileAway):
            return namespace
        from dms.executor._docker import DockerExecution  # docker is imported by now

        if isinstance(resumed, DockerExecution) and resumed.pid:
            try:
                await self.networks.attach(namespace, resumed.pid)
            except (NetworkError, OSError) as error:
                self.counters["restart_network_lost"] += 1
                log.warning("allocation %s of %s: its network is not rebuilt: %s",
                            allocation, deployment, error)
                return namespace
            resumed.spec = attrs.evolve(resumed.spec, network_namespace=namespace)
            resumed.network = self.networks
        return namespace

    async def _record_event(self, key: str, role: AllocationRole,
                            event: AllocationEvent) -> None:
        """Keep the allocation's state and its execution's identity as they change.
        A failing write is logged and counted, never the allocation's end: the workload
        runs on, and a restart in between resumes it from the last state kept."""
        state = _RECORDED_STATE.get(EventKind(event.kind))
        current = self._recorded.get(key)
        if self._leaving or role.on_event is None or state is None or current is None:
            return
        execution = role.supervisor.execution
        executor = role.executor
        identity = (executor.identity_of(execution)
                    if execution is not None and isinstance(executor, Adoptable) else None)
        changed = attrs.evolve(current, state=state, execution=identity or current.execution)
        if changed == current:
            return
        self._recorded[key] = changed
        try:
            await self.records.allocations([changed])
        except StoreError as error:
            self.counters["records_failed"] += 1
            log.error("allocation %s: its state could not be kept: %s", key, error)

    async def _release_completed(self, deployment: str, node: str) -> None:
        """Release the reservation of `node` once every allocation on it has completed
        (a task's end is final): what it held is free for others while the rest of its
        deployment runs on. Its allocation actors stay, to report, until shutdown."""
        hosted = self._hosted.get(deployment)
        if hosted is None or self._leaving:
            return
        states = [self._recorded[allocation_id(deployment, name)].state
                  for name, (_, role) in hosted.allocations.items() if role.node == node
                  if allocation_id(deployment, name) in self._recorded]
        if not states or any(state is not AllocationState.COMPLETED for state in states):
            return
        done = [r.id for r in self.book.by_deployment(deployment) if r.node == node]
        for reservation_id in done:
            self.book.release(reservation_id)
        self.counters["released_completed"] += len(done)
        await self._keep_safely(self.records.forget(done),
                                f"node {node} of deployment {deployment} completed")

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
        going: dict[str, tuple[Actor, AllocationRole]] = {}
        if hosted is not None:
            going = {name: pair for name, pair in hosted.allocations.items()
                     if not wanted or pair[1].node in wanted}
            for _, role in going.values():
                role.on_event = None  # its records go below; its last events are not kept
            async with trio.open_nursery() as nursery:
                for actor, role in going.values():
                    nursery.start_soon(_stop_allocation, actor, role)
            for name in going:  # a take-down running alongside may have done it
                hosted.allocations.pop(name, None)
                self._recorded.pop(allocation_id(deployment, name), None)
                if self.networks is not None:
                    await self.networks.remove(deployment, name)
            if not hosted.allocations and self._hosted.get(deployment) is hosted:
                del self._hosted[deployment]
        released = [r for r in self.book.by_deployment(deployment)
                    if not wanted or r.node in wanted]
        for reservation in released:
            self.book.release(reservation.id)
        if released or hosted is not None:
            self.counters["taken_down"] += 1
        if self.networks is not None and deployment not in self._hosted:
            await self.networks.close(deployment)
        if deployment not in self._hosted and not self.book.by_deployment(deployment):
            forgotten = self.records.forget_deployment(deployment)
        else:
            forgotten = self.records.forget([r.id for r in released],
                                            [allocation_id(deployment, n) for n in going])
        await self._keep_safely(forgotten, f"deployment {deployment} was taken down")
        return len(released)

    async def _keep_safely(self, write: Awaitable[None], what: str) -> None:
        """A write that must not fail what it records (it has happened already): a
        failure is logged and counted. A restart may then find the record stale; it
        reconciles it with what really runs."""
        try:
            await write
        except StoreError as error:
            self.counters["records_failed"] += 1
            log.error("%s, but that could not be kept: %s", what, error)

    async def sweep(self, actor: Actor) -> None:
        """The provider actor's main task: expire unused leases and take down the
        deployments whose orchestrator has not asked after them within their heartbeat."""
        await self._restored.wait()
        actor.subscribe(DEPLOYMENT_TOPIC)
        while True:
            await trio.sleep(SWEEP_INTERVAL)
            now = self.clock()
            await self._expire_leases(now)
            for deployment, hosted in list(self._hosted.items()):
                if now - hosted.last_seen > hosted.heartbeat:
                    self.counters["heartbeats_lapsed"] += 1
                    log.warning("deployment %s: no word from its orchestrator for %.0f s; "
                                "stopping its allocations here", deployment,
                                now - hosted.last_seen)
                    await self._take_down(deployment, None)
            await self._keep_last_seen()

    async def _expire_leases(self, now: float) -> None:
        lapsed = self.book.expire(now)
        for reservation in lapsed:
            self.counters["leases_expired"] += 1
            log.info("lease of %s ran out before it was allocated", reservation.id)
        await self._keep_safely(self.records.forget([r.id for r in lapsed]),
                                f"{len(lapsed)} leases ran out")

    async def _keep_last_seen(self) -> None:
        """Write when each orchestrator last asked, where it changed (once a sweep: a
        restart may count a heartbeat from up to a sweep earlier than it was)."""
        changed = {deployment: hosted.last_seen for deployment, hosted in self._hosted.items()
                   if hosted.last_seen > hosted.recorded_seen}
        await self._keep_safely(self.records.seen(changed), "orchestrators were heard from")
        for deployment, at in changed.items():
            if deployment in self._hosted:
                self._hosted[deployment].recorded_seen = at

    async def stop_everything(self) -> None:
        """Take every deployment down here and release every reservation (the provider
        is stopping and keeps nothing running)."""
        for deployment in list(self._hosted):
            await self._take_down(deployment, None)
        left = [r.id for r in self.book.reservations()]
        for reservation_id in left:
            self.book.release(reservation_id)
        await self._keep_safely(self.records.forget(left), "reservations were released")

    async def leave_running(self) -> None:
        """Stop serving but leave the workloads running, and what is kept as it is, for
        the next provider on this node to restore: the allocation actors end (their
        delegations with them) without stopping their executions. An executor that
        cannot adopt (`dms.executor.Adoptable`) stops its workloads all the same; after
        the restart they resume as ended while the provider was away."""
        self._leaving = True
        for executor in self.executors.values():
            if isinstance(executor, Adoptable):
                executor.detach()
        async with trio.open_nursery() as nursery:
            for hosted in self._hosted.values():
                for actor, _ in hosted.allocations.values():
                    nursery.start_soon(actor.stop)
        await self._keep_last_seen()

    # -- after a restart ----------------------------------------------------------------

    async def restore(self, saved: Saved, actor: Actor) -> None:
        """Pick up what an earlier provider on this node kept (`saved`; the book was
        built from its reservations): the allocations of deployments still asked after
        get new allocation actors, re-adopting their live executions; the rest is
        removed: deployments whose heartbeat lapsed (stopped, released, forgotten),
        leases that ran out meanwhile, and every execution left on this machine that no
        kept allocation adopted. What was done is logged and counted.

        `actor` is the provider actor, before this role is registered on it: nothing is
        served, and `sweep` waits, until this has run."""
        try:
            await self._restore(saved, actor)
        finally:
            self._restored.set()

    async def _restore(self, saved: Saved, actor: Actor) -> None:
        now = self.clock()
        plan = plan_restart(saved, now, self.executors)
        for removed in plan.removed:
            self.counters["restart_removed"] += 1
            log.warning("deployment %s is not resumed: %s", removed.id, removed.reason)
        for reservation_id in plan.release:
            self.book.release(reservation_id)
        self.counters["restart_released"] += len(plan.release)
        for kept in plan.kept:
            record = kept.record
            hosted = _Hosted(record.orchestrator, min(record.heartbeat, MAX_HEARTBEAT),
                             record.last_seen, record.ensemble, record.last_seen)
            self._hosted[record.id] = hosted
            await self._rejoin_network(record)
            for resumed in kept.allocations:
                await self._resume(actor, record.id, resumed, hosted)
        discarded = len(await discard_leftovers(self.executors.values()))
        self.counters["restart_discarded"] += discarded
        await self.records.forget(plan.release, plan.forget_allocations)
        for removed in plan.removed:
            await self.records.forget_deployment(removed.id)
        await self.records.allocations([self._recorded[allocation_id(k.record.id, a.record.name)]
                                        for k in plan.kept for a in k.allocations])
        await self._expire_leases(now)
        log.info("provider restored: %d deployments resumed (%d executions adopted, %d lost, "
                 "%d ended, %d not started), %d removed, %d reservations released, "
                 "%d executions removed", len(plan.kept), self.counters["restart_adopted"],
                 self.counters["restart_lost"], self.counters["restart_ended"],
                 self.counters["restart_pending"], len(plan.removed), len(plan.release),
                 discarded)

    async def _rejoin_network(self, record: HostedDeployment) -> None:
        """Open a resumed deployment's network again from the order it was made from;
        one that cannot be is logged: its allocations run on without it."""
        if not record.network or self.networks is None:
            return
        try:
            await self.networks.join(record.id, order_from_wire(record.network))
        except (NetworkError, ValueError, OSError) as error:
            self.counters["restart_network_lost"] += 1
            log.warning("deployment %s: its network is not rebuilt: %s", record.id, error)

    async def _resume(self, parent: Actor, deployment: str, resumed: ResumedAllocation,
                      hosted: _Hosted) -> None:
        record = resumed.record
        if resumed.how is Resume.PENDING:
            self.counters["restart_pending"] += 1
            await self._spawn_allocation(deployment, resumed.plan, hosted, record=record,
                                         parent=parent)
            return
        if resumed.how is Resume.ENDED:
            self.counters["restart_ended"] += 1
            _, role = await self._spawn_allocation(deployment, resumed.plan, hosted,
                                                   ended=record.state, record=record,
                                                   parent=parent)
            role.note(record.state.value, "ended before the provider restarted")
            return
        found = await self._adopt(deployment, resumed)
        _, role = await self._spawn_allocation(deployment, resumed.plan, hosted,
                                               resumed=found, record=record, parent=parent)
        if isinstance(found, EndedWhileAway):
            self.counters["restart_lost"] += 1
            log.warning("allocation %s of %s: %s", record.name, deployment, found)
            role.note("lost", str(found))
        else:
            self.counters["restart_adopted"] += 1
            ident = record.execution.ident if record.execution else "?"
            log.info("allocation %s of %s: re-adopted its execution %s", record.name,
                     deployment, ident)
            role.note("adopted", f"its execution {ident} was re-adopted after the "
                                 f"provider restarted")

    async def _adopt(self, deployment: str,
                     resumed: ResumedAllocation) -> Execution | EndedWhileAway:
        record = resumed.record
        spec = attrs.evolve(resumed.plan.execution,
                            name=execution_name(deployment, record.name))
        executor = self.executors[spec.executor]
        if record.execution is None:
            return EndedWhileAway(f"allocation {record.name} was {record.state.value} when "
                                  f"the provider stopped, with no execution recorded")
        if not isinstance(executor, Adoptable):
            return EndedWhileAway(f"allocation {record.name}: the {spec.executor.value} "
                                  f"executor cannot adopt executions")
        try:
            return await executor.adopt(record.execution, spec)
        except ExecutorError as error:  # NotAdoptable, or the engine refused
            return EndedWhileAway(f"allocation {record.name}: {error}")

    # -- reading requests ---------------------------------------------------------------

    def _ensemble(self, text: str) -> Ensemble:
        if len(text.encode()) > MAX_ENSEMBLE_TEXT:
            raise BehaviorFailed(f"ensemble: over {MAX_ENSEMBLE_TEXT} bytes",
                                 name="InvalidArgs")
        try:
            return load_ensemble(text, file="<request>", limits=ensemble_limits(text))
        except EnsembleError as error:
            raise BehaviorFailed(str(error), name="InvalidEnsemble") from None

    def _requirements(self, text: str) -> EnsembleRequirements:
        return _requirements_of(self._ensemble(text))


def _requirements_of(ensemble: Ensemble) -> EnsembleRequirements:
    return derive_requirements(ensemble)


def _grant_holder(message: Message[Any]) -> str:
    """Whom the root of authority granted what `message` uses: one party however many
    actors and keys it delegates to (the signer itself when it needs no proof)."""
    delegations = message.chain.delegations
    return delegations[0].aud if delegations else message.sender.id


def _signer_nodes(message: Message[Any]) -> set[str]:
    """The node of the actor that signed `message`: itself (a node's root actor), or
    the node that delegated to it (a child actor's chain ends with that delegation)."""
    nodes = {message.sender.id}
    last = message.chain.delegations[-1] if message.chain.delegations else None
    if last is not None and last.aud == message.sender.id:
        nodes.add(last.iss)
    return nodes


def _holds(reservation: Reservation, ask: Ask) -> bool:
    """Whether `reservation` holds exactly what `ask` asks (ports 0: any one)."""
    return (reservation.millicores, reservation.ram, reservation.disk, len(reservation.gpus),
            len(reservation.ports)) == (ask.millicores, ask.ram, ask.disk, len(ask.gpus),
                                        len(ask.ports)) \
        and ask.fixed_ports <= set(reservation.ports)


async def _stop_allocation(actor: Actor, role: AllocationRole) -> None:
    """Stop the workload, remove what its last run left (its files, its cgroup: nothing
    of a deployment taken down stays on the machine) and end the allocation actor."""
    await role.stop_workload()
    execution = role.supervisor.execution
    if execution is not None:
        with trio.move_on_after(REMOVE_TIMEOUT), contextlib.suppress(Exception):
            await execution.remove()
    await actor.stop()


def _grant(actor: Actor, role: AllocationRole, owner: str) -> AllocationGrant:
    """The allocation actor's handle and a delegation of `/dms/allocation` over it to
    the orchestrator that owns the deployment."""
    proof = actor.delegate(owner, ALLOCATION)
    return AllocationGrant(role.allocation, role.node, actor.handle, proof.envelope)


def _unrecorded(error: StoreError) -> BehaviorFailed:
    """A change the store refused is not made: the asker is told which, and why."""
    if isinstance(error, InvalidRecord):
        return BehaviorFailed(str(error), name="InvalidArgs")
    return BehaviorFailed(f"this provider cannot keep its state: {error}",
                          name="StateUnavailable")
