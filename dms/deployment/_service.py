"""A node's deployment service: `/dms/node/deployment/new`, `status`, `list`, `events`,
`logs`, `plan` and `shutdown`, on the node's root actor.

`new` validates the ensemble (every problem at once; nothing is created for an invalid
one), spawns an orchestrator actor with exactly `/dms/deployment` for the deployment's
life and answers at once with the deployment's id. The other commands work by id,
for the user who created it or anyone that user delegated to (the creator is an
issuer in the caller's chain). `logs` reads an allocation's output through the
deployment's orchestrator (only it may ask the allocation actor); `plan` asks for bids
and solves as `new` would, commits nothing and answers with the placement it found or
why there is none.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import logging
import math
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import attrs
import trio

from dms.actor import Actor, BehaviorFailed, Main, Message, Role, behavior
from dms.cleanup import shielded_cleanup
from dms.ensemble import Ensemble, EnsembleError, load_ensemble
from dms.network import JoinedNetworks, NetworkError, NetworkOrder
from dms.provider import wire
from dms.store import (
    DeploymentPhase,
    DeploymentRecord,
    EventRecord,
    NodeDatabase,
    NodeStore,
    StoreError,
)
from ucan import Delegation
from ucan.command import proves

from ._cut_off import revert_cut_off
from ._journal import DeploymentJournal
from ._network import network_summary, recorded_order
from ._orchestrator import DEFAULT_SETTINGS, DeploymentSettings, Orchestrator
from ._plan import PlanRequest, PlanView, plan_of
from ._requests import (
    EVENTS,
    JOIN,
    LEAVE,
    LIST,
    LOGS,
    NEW,
    PLAN,
    SHUTDOWN,
    STATUS,
    AllocationView,
    DeploymentId,
    DeploymentView,
    EventsQuery,
    EventView,
    LogsRequest,
    NewDeployment,
)

log = logging.getLogger("dms.deployment")

ORCHESTRATOR_COMMANDS = ("/dms/deployment",)
MAX_DEPLOYMENTS = 1000
"""Deployments a node runs at once; past it `new` is refused."""
STARTING_AT_ONCE = 64
"""Deployments between `new` and `running` at once; past it `new` answers Busy (each
costs bids, solving and commits: a burst past this only makes all of them late)."""
MAX_DEPLOYMENTS_PER_USER = 100
"""Deployments one user runs on a node at once, so that one user cannot take them all.
A user is the grantee its chain starts from: keys it delegates to count as itself."""
FINISHED_KEPT = 1000
"""Ended deployments kept in memory (the newest, and no more than the node keeps on
record: `DeploymentSettings.ended_kept`); older ones are read from the store."""
PRUNE_DEADLINE = 5.0
"""Seconds an ended deployment's pruning of the history may take (shielded: a shutdown
before running cancels the orchestrator)."""
MAX_EVENTS_WAIT = 30.0
MAX_WAITING = 16
"""`events` calls that wait for events at once on this node, and for one user
(MAX_WAITING_PER_USER): each holds one of the root actor's slots while it waits, so
past these `events` answers at once and the caller polls again."""
MAX_WAITING_PER_USER = 4
STOP_ALL_DEADLINE = 60.0
MAX_LOG_READS = 16
"""`logs` calls in flight at once on this node, and for one user (MAX_LOG_READS_PER_USER):
each has a provider read up to a few MiB of files, so past these `logs` answers Busy."""
MAX_LOG_READS_PER_USER = 4
DEFAULT_PLAN_SECONDS = 10.0
MAX_PLAN_SECONDS = 60.0
MAX_PLANS = 8
"""Plans at once on this node, and for one user (MAX_PLANS_PER_USER): each costs a
broadcast to every provider and a solve. A plan also counts as a deployment starting
(STARTING_AT_ONCE) and as one of its user's (MAX_DEPLOYMENTS_PER_USER) while it runs."""
MAX_PLANS_PER_USER = 2
PLANS_PER_MINUTE = 20
"""Plans one user may begin in any minute (a broadcast each, however short)."""
BEFORE_RUNNING = (DeploymentPhase.PENDING, DeploymentPhase.BIDDING, DeploymentPhase.SOLVING,
                  DeploymentPhase.COMMITTING, DeploymentPhase.ALLOCATING)


@attrs.frozen
class _Running:
    """A deployment this node knows: with its orchestrator while it runs here; without
    one for a deployment recorded before the node restarted."""

    journal: DeploymentJournal
    orchestrator: Orchestrator | None = None
    actor: Actor | None = None
    user: str = ""  # who it counts against (see MAX_DEPLOYMENTS_PER_USER)

    @property
    def final(self) -> bool:
        return self.journal.record.phase.final


class DeploymentService(Role):
    """Register on a node's root actor (its trust and store are the node's)."""

    def __init__(self, market: Callable[[], Iterable[str]], store: NodeStore | None,
                 clock: Callable[[], float],
                 settings: DeploymentSettings = DEFAULT_SETTINGS, *,
                 hold: Callable[[Delegation], None] = lambda proof: None,
                 release: Callable[[str], object] = lambda holder: None) -> None:
        """`market()`: the subjects this node may ask for bids under; `hold(proof)`: keep
        a delegation with the node (its orchestrators' controls of their allocations);
        `release(actor)`: drop those held for an orchestrator whose deployment ended."""
        self.market = market
        self.hold = hold
        self.release = release
        self.store = store
        self.clock = clock
        self.settings = settings
        self.deployments: dict[str, _Running] = {}
        self._waiting: Counter[str] = Counter()  # events calls waiting now, per user
        self._reading: Counter[str] = Counter()  # logs calls in flight, per user
        self._planning: Counter[str] = Counter()  # plans running, per user
        self._planned: dict[str, collections.deque[float]] = {}  # per user, plans' starts
        self.joined: JoinedNetworks | None = None
        """This node's `subnet.join` namespaces (set by the node; None: it cannot join)."""

    @behavior(NEW, args=NewDeployment)
    async def new(self, message: Message[NewDeployment]) -> DeploymentId:
        order = message.args
        ensemble = _ensemble(order.ensemble)
        for name, seconds in (("deadline", order.deadline), ("duration", order.duration)):
            _check_seconds(name, seconds)
        markets = self._markets()
        user = _user(message)
        self._check_room(user)
        now = self.clock()
        deadline = order.deadline or self.settings.deadline
        record = DeploymentRecord(id=str(uuid.uuid4()), owner=_user(message),
                                  ensemble=order.ensemble, created_at=now, updated_at=now,
                                  deadline=now + deadline, duration=order.duration)
        journal = await DeploymentJournal.create(record, self.store, self.clock)
        orchestrator = Orchestrator(journal, ensemble, markets[0],
                                    attrs.evolve(self.settings, deadline=deadline),
                                    hold=self.hold)
        await self._start(orchestrator, user)
        return DeploymentId(record.id)

    def _markets(self) -> list[str]:
        markets = sorted(self.market())
        if not markets:
            raise BehaviorFailed(
                f"this node holds no grant of {wire.REQUEST}: no provider would take its "
                f"requests (an organisation grants it with `ucan delegate ... "
                f"/dms/deployment`)", name="NoDeploymentAuthority")
        return markets

    def _check_room(self, user: str) -> None:
        """Busy / TooManyDeployments past the node's and the user's bounds; a running
        plan counts as a deployment starting, and as one of its user's."""
        live = [d for d in self.deployments.values() if not d.final]
        if len(live) >= MAX_DEPLOYMENTS:
            raise BehaviorFailed(f"this node runs {MAX_DEPLOYMENTS} deployments already",
                                 name="Busy")
        starting = sum(d.journal.record.phase in BEFORE_RUNNING for d in live)
        if starting + sum(self._planning.values()) >= STARTING_AT_ONCE:
            raise BehaviorFailed(f"this node is starting {STARTING_AT_ONCE} deployments "
                                 f"already; try again when some are running", name="Busy")
        if sum(1 for d in live if d.user == user) + self._planning[user] \
                >= MAX_DEPLOYMENTS_PER_USER:
            raise BehaviorFailed(f"you run {MAX_DEPLOYMENTS_PER_USER} deployments on this "
                                 f"node already (shut one down first)",
                                 name="TooManyDeployments")

    async def _start(self, orchestrator: Orchestrator, user: str) -> None:
        """Spawn the deployment's orchestrator actor: `/dms/deployment` only, and a
        lasting key (the same id after a restart: providers know it as the owner)."""
        journal = orchestrator.journal
        actor = await self.actor.spawn(f"orchestrator/{journal.record.id}",
                                       commands=ORCHESTRATOR_COMMANDS,
                                       main=self._run_then_prune(orchestrator), lasting=True)
        actor.register(orchestrator)
        self.deployments[journal.record.id] = _Running(journal, orchestrator, actor, user)
        self._forget_old()

    def _run_then_prune(self, orchestrator: Orchestrator) -> Main:
        async def run(actor: Actor) -> None:
            try:
                await orchestrator.main(actor)
            finally:  # it has ended (a shutdown before running cancels it)
                if orchestrator.journal.record.phase.final:  # else a restart resumes it
                    self.release(actor.id)  # its allocations' controls: nothing to control
                with trio.CancelScope(shield=True), trio.move_on_after(PRUNE_DEADLINE):
                    await self._prune()
        return run

    async def _prune(self) -> None:
        """Keep the newest `ended_kept` ended deployments on disk (and `FINISHED_KEPT`
        in memory): each leaves a record and its events, and a node runs for months."""
        self._forget_old()
        if self.store is not None:
            with contextlib.suppress(StoreError):  # tried again as the next one ends
                await self.store.call(NodeDatabase.prune_ended_deployments,
                                      self.settings.ended_kept)

    def _forget_old(self) -> None:
        """Keep the newest `FINISHED_KEPT` ended deployments in memory, no more."""
        keep = min(FINISHED_KEPT, self.settings.ended_kept)
        ended = sorted((known.journal.record.updated_at, key)
                       for key, known in self.deployments.items() if known.final)
        for _, key in ended[:max(0, len(ended) - keep)]:
            del self.deployments[key]

    @behavior(STATUS, args=DeploymentId)
    async def status(self, message: Message[DeploymentId]) -> DeploymentView:
        running = await self._owned(message, message.args.id)
        return _view(running)

    @behavior(LIST)
    async def list(self, message: Message[Any]) -> dict[str, list[dict[str, str]]]:
        mine = [r for r in self.deployments.values() if _may_see(message, r.journal.record)]
        return {"deployments": [{"id": r.journal.record.id, "phase": r.journal.record.phase.value}
                                for r in mine]}

    @behavior(EVENTS, args=EventsQuery)
    async def events(self, message: Message[EventsQuery]) -> dict[str, Any]:
        """The deployment's events after `after` (resumable), waiting up to `wait`
        seconds for one; `final` says nothing more will come."""
        query = message.args
        running = await self._owned(message, query.id)
        wait = min(max(query.wait, 0.0), MAX_EVENTS_WAIT) if math.isfinite(query.wait) else 0.0
        journal = running.journal
        events = await journal.read_after(query.after)
        if not events and not running.final:
            user = _user(message)
            if sum(self._waiting.values()) >= MAX_WAITING \
                    or self._waiting[user] >= MAX_WAITING_PER_USER:
                wait = 0.0
            self._waiting[user] += 1
            try:
                events = await journal.wait_after(query.after, wait)
            finally:
                self._waiting[user] -= 1
                if not self._waiting[user]:
                    del self._waiting[user]
        last = events[-1].seq if events else query.after
        return {"events": [_event_view(e) for e in events],
                "final": running.final and last >= journal.last_event}

    @behavior(LOGS, args=LogsRequest)
    async def logs(self, message: Message[LogsRequest]) -> wire.LogsReply:
        """An allocation's output, read through the deployment's orchestrator: the
        allocation actor answers only the orchestrator that allocated it."""
        request = message.args
        tail = request.query.tail
        if isinstance(tail, bool) or not isinstance(tail, int) \
                or not 0 <= tail <= wire.MAX_LOG_LINES:
            raise BehaviorFailed(f"query.tail: {tail!r} is not a line count from 0 to "
                                 f"{wire.MAX_LOG_LINES}", name="InvalidArgs")
        running = await self._owned(message, request.id)
        phase = running.journal.record.phase
        if running.final or running.orchestrator is None \
                or phase is DeploymentPhase.SHUTTING_DOWN \
                or running.orchestrator.shutdown_requested.is_set():
            raise BehaviorFailed(
                f"deployment {request.id} has ended ({phase.value}): its allocations, and "
                f"their output, are gone", name="DeploymentEnded")
        user = _user(message)
        if sum(self._reading.values()) >= MAX_LOG_READS \
                or self._reading[user] >= MAX_LOG_READS_PER_USER:
            raise BehaviorFailed("too many logs reads at once; try again", name="Busy")
        self._reading[user] += 1
        try:
            return await running.orchestrator.logs(request.allocation, request.query)
        finally:
            _release(self._reading, user)

    @behavior(PLAN, args=PlanRequest)
    async def plan(self, message: Message[PlanRequest]) -> PlanView:
        """Bid and solve as `new` would, on an actor of its own that is gone when the
        answer is: nothing is committed, so no provider holds anything for a plan."""
        order = message.args
        ensemble = _ensemble(order.ensemble)
        _check_seconds("timeout", order.timeout)
        timeout = min(order.timeout or DEFAULT_PLAN_SECONDS, MAX_PLAN_SECONDS)
        markets = self._markets()
        user = _user(message)
        self._check_room(user)
        if sum(self._planning.values()) >= MAX_PLANS \
                or self._planning[user] >= MAX_PLANS_PER_USER:
            raise BehaviorFailed("too many plans at once; try again when one has answered",
                                 name="Busy")
        self._count_plan(user)
        now = self.clock()
        record = DeploymentRecord(id=str(uuid.uuid4()), owner=_user(message),
                                  ensemble=order.ensemble, created_at=now, updated_at=now,
                                  deadline=now + timeout)
        orchestrator = Orchestrator(DeploymentJournal(record, None, self.clock), ensemble,
                                    markets[0], attrs.evolve(self.settings, deadline=timeout))
        self._planning[user] += 1
        try:
            actor = await self.actor.spawn(f"plan/{record.id}", commands=ORCHESTRATOR_COMMANDS,
                                           lifetime=timeout + 30)
            try:
                actor.register(orchestrator)
                result = await orchestrator.plan(actor, timeout)
                assert orchestrator.window is not None
                return plan_of(result, orchestrator.window.bids, orchestrator.measurements())
            finally:
                await actor.stop()
        finally:
            _release(self._planning, user)

    def _count_plan(self, user: str) -> None:
        """TooManyPlans past PLANS_PER_MINUTE begun by `user` in the last minute."""
        now = self.clock()
        starts = self._planned.setdefault(user, collections.deque())
        while starts and starts[0] <= now - 60:
            starts.popleft()
        if len(starts) >= PLANS_PER_MINUTE:
            raise BehaviorFailed(f"you began {PLANS_PER_MINUTE} plans in the last minute; "
                                 f"wait a little", name="TooManyPlans")
        starts.append(now)
        for other in [u for u, times in self._planned.items() if not times or
                      times[-1] <= now - 60]:
            del self._planned[other]  # users with no plan in the last minute: forgotten

    @behavior(JOIN, args=DeploymentId)
    async def join(self, message: Message[DeploymentId]) -> dict[str, str]:
        """`subnet.join`: this node joins the running deployment's ensemble network
        (its owner's debugging): a namespace here holding the plan's gateway address,
        granted by the order every provider gets. Its name and address."""
        running = await self._owned(message, message.args.id)
        orchestrator, actor, joined = running.orchestrator, running.actor, self.joined
        if orchestrator is None or actor is None or running.final:
            raise BehaviorFailed(f"deployment {message.args.id} is not running",
                                 name="NotRunning")
        if joined is None:
            raise BehaviorFailed("join: this node cannot join ensemble networks",
                                 name="NetworkFailed")
        try:
            order = await orchestrator.set_joined(actor, joined.peer)
        except NetworkError as error:
            raise BehaviorFailed(str(error), name="NetworkFailed") from None
        try:
            namespace = await joined.join(message.args.id, order)
            orchestrator.follow_network = functools.partial(
                self._follow_joined, message.args.id, orchestrator, actor)
        except BaseException as error:  # fail closed: the providers stop granting it
            with trio.CancelScope(shield=True), contextlib.suppress(NetworkError):
                if joined.namespace_of(message.args.id) is None:
                    await orchestrator.set_joined(actor, None)
            if isinstance(error, NetworkError):
                raise BehaviorFailed(str(error), name="NetworkFailed") from None
            raise
        return {"namespace": namespace, "address": str(order.plan.gateway),
                "subnet": str(order.plan.subnet)}

    async def _follow_joined(self, deployment: str, orchestrator: Orchestrator, actor: Actor,
                             order: NetworkOrder) -> None:
        """A newer order of a deployment this node joined: its namespace follows (a
        renumbered subnet moves its TUN). One it cannot follow has left the network
        (`JoinedNetworks.follow`); the providers then stop granting it, and the
        journal says why."""
        if self.joined is None:
            return
        try:
            await self.joined.follow(deployment, order)
        except NetworkError as error:
            log.warning("%s", error)
            await orchestrator.journal.event("network_left", node=self.joined.peer,
                                             reason=str(error)[:1000])
            with contextlib.suppress(NetworkError):
                await orchestrator.set_joined(actor, None)

    @behavior(LEAVE, args=DeploymentId)
    async def leave(self, message: Message[DeploymentId]) -> dict[str, bool]:
        """Leave what `join` joined: the namespace here goes, and the providers stop
        admitting this node's frames."""
        running = await self._owned(message, message.args.id)
        left = self.joined is not None and await self.joined.leave(message.args.id)
        orchestrator, actor = running.orchestrator, running.actor
        if orchestrator is not None and actor is not None and not running.final:
            with contextlib.suppress(NetworkError):
                await orchestrator.set_joined(actor, None)
        return {"left": left}

    @behavior(SHUTDOWN, args=DeploymentId)
    async def shutdown(self, message: Message[DeploymentId]) -> dict[str, str]:
        running = await self._owned(message, message.args.id)
        if self.joined is not None:
            await self.joined.leave(message.args.id)
        orchestrator, actor = running.orchestrator, running.actor
        if orchestrator is not None and actor is not None:
            orchestrator.shutdown_requested.set()
            if orchestrator.lifecycle.phase in BEFORE_RUNNING:
                await actor.stop()  # not running yet: cancelling reverts everything
        return {"phase": running.journal.record.phase.value}

    async def _owned(self, message: Message[Any], deployment: str) -> _Running:
        running = self.deployments.get(deployment)
        if running is None and self.store is not None:  # finished long ago: on disk only
            with contextlib.suppress(StoreError):
                record = await self.store.call(NodeDatabase.get_deployment, deployment)
                recent = await self.store.call(NodeDatabase.recent_events, deployment, 1)
                running = _Running(DeploymentJournal(
                    record, self.store, self.clock, last_event=recent[-1].seq if recent else 0))
        if running is None or not _may_see(message, running.journal.record):
            raise BehaviorFailed(
                f"no deployment {deployment} of yours here: not one this node orchestrates, "
                f"or one that ended before the newest {self.settings.ended_kept} ended ones "
                f"it keeps", name="UnknownDeployment")
        return running

    async def stop_all(self) -> None:
        """Shut every deployment down (the node is stopping), even when cancelled."""
        for running in self.deployments.values():
            if running.orchestrator is not None:
                running.orchestrator.shutdown_requested.set()
        with shielded_cleanup(STOP_ALL_DEADLINE):
            for running in list(self.deployments.values()):  # those ending prune it
                if running.actor is not None:
                    await running.actor.wait_stopped()

    async def recover(self) -> None:
        """After a restart: know the deployments recorded here again. One that was
        running is resumed (its orchestrator has the same id, and the node holds the
        delegations to drive its allocations); one cut off before it ran is recorded as
        failed once its orchestrator has reverted it on every provider it asked to commit
        (`revert_cut_off`; those that do not answer release it when their leases run out),
        at once when none is recorded or this node holds no grant to ask under."""
        if self.store is None:
            return
        self.store.call_now(NodeDatabase.prune_ended_deployments, self.settings.ended_kept)
        records = self.store.call_now(NodeDatabase.list_deployments)
        for record in records[-MAX_DEPLOYMENTS:]:
            journal = DeploymentJournal(record, self.store, self.clock,
                                        last_event=self._last_event(record.id))
            resumable = record.phase in (DeploymentPhase.RUNNING,
                                         DeploymentPhase.SHUTTING_DOWN) and record.allocations
            if resumable and (markets := sorted(self.market())):
                ensemble = load_ensemble(record.ensemble, file="<ensemble>")
                await self._start(Orchestrator(journal, ensemble, markets[0], self.settings,
                                               hold=self.hold, resume=True),
                                  record.owner)  # the chain it came with is not kept
                continue
            if not record.phase.final and record.commits and (markets := sorted(self.market())):
                await self._revert_cut_off(journal, markets[0])
                continue
            if not record.phase.final:
                was = record.phase.value
                reason = (f"its orchestrator's node restarted while it was {was}; its "
                          f"providers release what it held when their leases run out")
                await journal.update(phase=DeploymentPhase.FAILED, failure=reason)
                await journal.event("phase", phase=DeploymentPhase.FAILED.value, detail=reason)
            self.deployments[record.id] = _Running(journal)
        self._forget_old()

    async def _revert_cut_off(self, journal: DeploymentJournal, market: str) -> None:
        """Revert a deployment the restart cut off on its providers, from its own
        orchestrator actor (the same lasting id), then record it failed: see
        `revert_cut_off`. Shutting it down meanwhile changes nothing."""
        async def run(actor: Actor) -> None:
            try:
                await revert_cut_off(actor, journal, market, self.settings)
            finally:
                if journal.record.phase.final:
                    with trio.CancelScope(shield=True), trio.move_on_after(PRUNE_DEADLINE):
                        await self._prune()

        actor = await self.actor.spawn(f"orchestrator/{journal.record.id}",
                                       commands=ORCHESTRATOR_COMMANDS, main=run, lasting=True)
        self.deployments[journal.record.id] = _Running(journal, None, actor,
                                                       journal.record.owner)

    def _last_event(self, deployment: str) -> int:
        assert self.store is not None
        recent = self.store.call_now(NodeDatabase.recent_events, deployment, 1)
        return recent[-1].seq if recent else 0


def _ensemble(text: str) -> Ensemble:
    """The ensemble a user sent, read as providers will read it (InvalidEnsemble with
    every problem at once)."""
    if len(text.encode()) > wire.MAX_ENSEMBLE_TEXT:
        raise BehaviorFailed(f"ensemble: over {wire.MAX_ENSEMBLE_TEXT} bytes",
                             name="InvalidArgs")
    try:
        return load_ensemble(text, file="<ensemble>", limits=wire.ensemble_limits(text))
    except EnsembleError as error:
        raise BehaviorFailed(str(error), name="InvalidEnsemble") from None


def _check_seconds(name: str, seconds: float | None) -> None:
    if seconds is not None and not (math.isfinite(seconds) and seconds > 0):
        raise BehaviorFailed(f"{name}: must be a number of seconds > 0", name="InvalidArgs")


def _release(counter: Counter[str], user: str) -> None:
    counter[user] -= 1
    if not counter[user]:
        del counter[user]


def _user(message: Message[Any]) -> str:
    """The principal a caller acts for: the grantee of its chain's first delegation
    (however far it delegated on), or the caller itself when it needs no proof."""
    delegations = message.chain.delegations
    return delegations[0].aud if delegations else message.sender.id


def _may_see(message: Message[Any], record: DeploymentRecord) -> bool:
    """The owner: the user that created it (the principal its caller acted for), as
    whichever key it acts through. Not whoever it granted authority of its own: an
    organisation's users do not see the organisation's deployments."""
    return record.owner in (message.sender.id, _user(message))


def _event_view(event: EventRecord) -> EventView:
    return EventView(event.seq, event.at, event.kind, dict(event.payload))


def _view(running: _Running) -> DeploymentView:
    record = running.journal.record
    reports = {} if running.orchestrator is None else running.orchestrator.reports
    allocations = []
    order = recorded_order(record.network)
    addresses = {} if order is None else order.plan.as_dict()
    dns_names = {} if order is None else dict(order.dns_names)
    for name, placed in sorted(record.allocations.items()):
        report = reports.get(name)
        address = addresses.get(name)
        allocations.append(AllocationView(
            name, placed.provider, placed.state.value,
            None if report is None else report.health,
            0 if report is None else report.restarts,
            "" if address is None else str(address),
            "" if address is None else f"{dns_names.get(name, name)}.internal"))
    return DeploymentView(
        id=record.id, phase=record.phase.value, owner=record.owner,
        created_at=record.created_at, assignment=dict(record.assignment),
        allocations=tuple(allocations), failure=record.failure,
        recent_events=tuple(_event_view(e) for e in list(running.journal.events)[-20:]),
        network=network_summary(record.network))


def deployment_markets(provided: Iterable[Delegation], node: str) -> list[str]:
    """The subjects (organisations) under which this node may ask providers for bids:
    those of its grants of `/dms/deployment/request`."""
    return sorted({d.sub for d in provided
                   if d.aud == node and d.sub is not None and proves(d.cmd, wire.REQUEST)})
