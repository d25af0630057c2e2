"""The orchestrator actor: runs one deployment from bids to shutdown.

    bidding     broadcast the request; collect bids and declines until every ensemble
                node has enough candidates (early) or the round ends; repeat
    solving     `placement.solve` over the bids; unplaceable: another round, until
                the deadline, then fail with the solver's explanation and the declines
    committing  reserve on every chosen provider at once; a refusal or silence reverts
                every reservation made, excludes that provider and solves again
    allocating  allocation actors on each provider, then start them in `depends_on`
                order across providers (a dependent starts once what it needs is ready)
    running     poll every allocation: its events become the deployment's; a silent
                provider is suspected, never torn down for it
    shutdown    stop the allocations newest first, release every reservation

Each revertible step registers its undo before it runs (an `UndoStack` phase), so an
error or a cancellation at any point leaves nothing behind on any provider; the
providers also take down what a silent orchestrator leaves (lease and heartbeat).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import attrs
import trio

from dms.actor import (
    Actor,
    ActorError,
    BehaviorFailed,
    Handle,
    Message,
    RemoteError,
    Role,
    behavior,
    structure_args,
)
from dms.cleanup import shielded_cleanup
from dms.ensemble import derive_requirements
from dms.ensemble._spec import Ensemble
from dms.network import NetworkError, NetworkOrder
from dms.orchestrator import (
    BidWindow,
    DeploymentLifecycle,
    DeploymentUnplaceable,
    NodeDecline,
    Phase,
    PhaseEvent,
    UndoStack,
)
from dms.orchestrator.placement import (
    Assignment,
    Measurements,
    Placement,
    ProviderPath,
    SearchBudget,
    Unplaceable,
    solve,
)
from dms.provider import wire
from dms.store import AllocationState, DeploymentAllocation, DeploymentPhase
from dms.workload import Recovery
from ucan import Delegation, UcanError
from ucan.command import proves

from ._journal import DeploymentJournal
from ._network import NetworkOffer, network_record, plan_network, recorded_order

log = logging.getLogger("dms.deployment")
P = DeploymentPhase

ENDED_BADLY = {"start_failed", "crash_loop", "stayed_down", "exited", "redeploy_requested"}
STATES = {
    "starting": AllocationState.STARTING, "running": AllocationState.RUNNING,
    "healthy": AllocationState.HEALTHY, "unhealthy": AllocationState.UNHEALTHY,
    "restarting": AllocationState.RESTARTING, "completed": AllocationState.COMPLETED,
    "exited": AllocationState.FAILED, "start_failed": AllocationState.FAILED,
    "crash_loop": AllocationState.FAILED, "stayed_down": AllocationState.FAILED,
    "redeploy_requested": AllocationState.FAILED, "stopped": AllocationState.STOPPED,
}
REPORT_EVENTS = 256
"""Events taken from one allocation report at most (a provider keeps this many)."""
EVENT_TEXT = 1024
"""Characters kept of an allocation event's kind and detail (its log tail: 1000)."""


def _finite_seconds(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
            math.isfinite(value) and value > 0):
        raise ValueError(f"{type(instance).__name__}.{attribute.name}: {value!r} is not a "
                         f"finite number of seconds > 0")


def _at_least_one(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{type(instance).__name__}.{attribute.name}: {value!r} is not a "
                         f"whole number of deployments, 1 or more")


@attrs.frozen
class DeploymentSettings:
    """Timing of a deployment (seconds), and how many ended ones a node keeps."""

    deadline: float = 120.0  # to be running, from the request
    bid_round: float = 2.0  # a round closes early once every node has candidates
    minimum_candidates: int = 1  # bids wanted per node before a round closes early
    solve_seconds: float = attrs.field(default=0.5, validator=_finite_seconds)
    """The solver's budget (it keeps the best placement found); checked here, so that a
    bad value is refused when the node is made, not by the first deployment's solve."""
    lease: float = 30.0  # a commit's reservation, until allocated
    heartbeat: float = 30.0  # providers stop allocations nobody asked after for this long
    poll_interval: float = 1.0
    request_timeout: float = 10.0
    start_timeout: float = 300.0
    undo_timeout: float = 10.0
    lost_after: float = 40.0  # silent this long (past the heartbeat): the provider is lost
    ended_kept: int = attrs.field(default=1000, validator=_at_least_one)
    """Ended (completed or failed) deployments a node keeps on record, the newest; older
    ones are pruned from its memory and database as others end, and when it starts."""


DEFAULT_SETTINGS = DeploymentSettings()


class DeploymentFailed(Exception):
    """The deployment cannot be done; the message says why, for the user."""


class NeverPlaceable(DeploymentFailed):
    """Some ensemble node has no candidate, and every provider that answered declined
    it for a reason that waiting does not change (see `PERMANENT`): asking again until
    the deadline would only make the user wait for the same answer."""

    def __init__(self, unplaceable: DeploymentUnplaceable, nodes: list[str]) -> None:
        super().__init__(f"no provider that answered can ever host {', '.join(nodes)}: "
                         f"{unplaceable.text()}")
        self.unplaceable = unplaceable
        self.nodes = nodes


PERMANENT = frozenset({"executor", "location", "pinned", "excluded"})
"""Decline requirements that do not change while a provider runs: unlike free cpu, ram,
disk, gpus or ports, no other deployment's end makes them met."""
CAPABILITY = frozenset({"executor", "location"})
"""The permanent ones about what a provider is, not about which peer it is: a node only
pinned or excluded away from those that answered may be for one still to answer."""
LOGS_TIMEOUT = 10.0
"""Seconds a provider has to answer for an allocation's output."""


MEASURED_PAIRS = 32
"""Provider pairs whose bandwidth one round measures at most."""
STALE = frozenset({"InsufficientCapacity", "TooManyReservations"})
"""Commit refusals that mean the provider's bid was overtaken, not that it is bad."""


class ProviderFailed(Exception):
    """A provider refused or did not answer a step of the deployment (commit, allocate,
    start): what was made is reverted and placement runs again without it, or (`stale`:
    another deployment took what it offered) with its next bid."""

    def __init__(self, peer: str, reason: str, *, stale: bool = False) -> None:
        super().__init__(f"provider {peer}: {reason}")
        self.peer = peer
        self.reason = reason
        self.stale = stale


@attrs.frozen
class _Placed:
    allocation: str
    node: str
    provider: str
    actor: Handle
    proof: Delegation | None  # None: held by the node (a deployment resumed after a restart)


class Orchestrator(Role):
    """Register on the orchestrator actor and run `main` as its main task."""

    def __init__(self, journal: DeploymentJournal, ensemble: Ensemble, market: str,
                 settings: DeploymentSettings = DEFAULT_SETTINGS, *,
                 hold: Callable[[Delegation], None] = lambda proof: None,
                 resume: bool = False) -> None:
        """`hold(proof)` keeps an allocation's delegation to this orchestrator with the
        node (on disk with a state dir), so that a restarted node can still drive it;
        `resume`: the deployment was running before the node restarted (see `main`)."""
        self.journal = journal
        self.hold = hold
        self.resume = resume
        self.id = journal.record.id
        self.ensemble = ensemble
        self.market = market
        self.settings = settings
        self.requirements = derive_requirements(ensemble)
        self.lifecycle = (DeploymentLifecycle(DeploymentPhase(journal.record.phase),
                                              last_event=journal.last_event)
                          if resume else DeploymentLifecycle())
        self.window: BidWindow | None = None
        self.providers: dict[str, Handle] = {}
        self.placed: dict[str, _Placed] = {}
        self.reports: dict[str, wire.AllocationReport] = {}
        self._seen_events: dict[str, int] = {}  # per allocation, the last event recorded
        self.shutdown_requested = trio.Event()
        self._answered = trio.Event()
        self._answers = 0  # answers taken so far: a waiter knows what it has seen
        self._phase_events: list[PhaseEvent] = []
        self._last_reason = "no provider answered"
        self._rtts: dict[str, dict[str, float]] = {}  # per bidder, its newest report
        self._network_offers: dict[str, NetworkOffer] = {}  # per bidder, its newest bid's
        self._network_order: dict[str, Any] | None = None  # the newest, as sent
        self.follow_network: Callable[[NetworkOrder], Awaitable[object]] | None = None
        """Given every newer network order sent to the providers (a redeploy, a join):
        how a node joined to the network (`subnet.join`) follows a renumbering."""
        self._bandwidths: dict[tuple[str, str], float] = {}  # bits per second
        self.assignment: Assignment | None = None
        self._moved_to: dict[str, Handle] = {}  # providers a redeploy added
        self._asked_again: dict[str, float] = {}  # provider -> when it was last looked up
        # per provider, the nodes it can never host and the PERMANENT reasons why
        self._never: dict[str, dict[str, frozenset[str]]] = {}
        self._explained: object = None  # what the last "unplaceable" event said

    # -- answers from providers ---------------------------------------------------------

    @behavior(wire.BID, args=wire.BidAnswer)
    async def bid(self, message: Message[wire.BidAnswer]) -> None:
        answer = message.args
        if answer.deployment != self.id:
            raise BehaviorFailed(f"this orchestrator runs deployment {self.id}",
                                 name="InvalidArgs")
        window = self.window
        if window is None:
            return
        # The provider is the peer the answer came from, whatever it says it is.
        peer = message.sender.peer
        self.providers[peer] = message.sender
        self._note_rtts(peer, answer.rtt_ms)
        self._network_offers[peer] = NetworkOffer.from_bid(answer.network, answer.subnets)
        if answer.bid is not None:
            window.add_bid(attrs.evolve(answer.bid, peer=peer))
        never: dict[str, frozenset[str]] = {}
        if answer.decline is not None:
            for decline in NodeDecline.split(attrs.evolve(answer.decline, peer=peer)):
                window.add_decline(decline)
            for node in answer.decline.nodes:
                why = frozenset(u.requirement for u in answer.decline.of(node)) & PERMANENT
                if why:
                    never[node] = why
        self._never[peer] = never  # its newest answer replaces the last
        self._answers += 1
        self._answered.set()

    def _note_rtts(self, peer: str, rtts: Mapping[str, float]) -> None:
        """Keep what a bidder measured to other peers, its newest report replacing the
        last (so a bidder holds at most MAX_RTTS of them, however often it bids); only
        pairs of bidders reach the solver."""
        self._rtts[peer] = {
            other: rtt for other, rtt in itertools.islice(rtts.items(), wire.MAX_RTTS)
            if other != peer and isinstance(rtt, float) and math.isfinite(rtt) and rtt >= 0}

    def measurements(self) -> Measurements:
        known = self.providers
        links = {(a, b): ProviderPath(bandwidth=bps) for (a, b), bps in self._bandwidths.items()
                 if a in known and b in known}
        for peer, row in self._rtts.items():  # both ends' reports: the worse one counts
            for other, rtt in row.items():
                if peer in known and other in known:
                    pair = (peer, other) if peer < other else (other, peer)
                    links[(peer, other)] = ProviderPath(rtt_ms=rtt,
                                                        bandwidth=self._bandwidths.get(pair))
        return Measurements(links)

    async def _measure_bandwidth(self, actor: Actor, window: BidWindow) -> None:
        """For edges that ask for bandwidth: have one provider of each candidate pair
        time a bounded transfer to the other (at most `MEASURED_PAIRS` new pairs per
        round; what was measured is kept)."""
        wanted: set[tuple[str, str]] = set()
        for edge in self.requirements.edges:
            if edge.min_bandwidth is None:
                continue
            for a in window.candidates(edge.source):
                for b in window.candidates(edge.target):
                    pair = (a, b) if a < b else (b, a)
                    if a != b and pair not in self._bandwidths:
                        wanted.add(pair)
        by_source: dict[str, list[str]] = {}
        for a, b in sorted(wanted)[:MEASURED_PAIRS]:
            by_source.setdefault(a, []).append(b)

        async def measure(source: str, targets: list[str]) -> None:
            order = wire.MeasureOrder(self.id, tuple(self.providers[t] for t in targets))
            with contextlib.suppress(ActorError, ValueError):
                reply = await actor.invoke(self.providers[source], wire.MEASURE, order,
                                           subject=self.market,
                                           timeout=self.settings.request_timeout)
                for target, bps in structure_args(reply, wire.Measured).bits_per_second.items():
                    if target in targets and math.isfinite(bps) and bps > 0:
                        pair = (source, target) if source < target else (target, source)
                        self._bandwidths[pair] = bps

        async with trio.open_nursery() as nursery:
            for source, targets in by_source.items():
                nursery.start_soon(measure, source, targets)
        if by_source:
            await self.journal.event("bandwidth_measured", pairs=len(self._bandwidths))

    # -- the deployment -----------------------------------------------------------------

    async def main(self, actor: Actor) -> None:
        """Run the deployment; with `resume`, pick up supervising it where the node's
        restart left it (its allocations, providers and the delegations to drive them
        come from the record and the node)."""
        try:
            await (self._run_resumed(actor) if self.resume else self._run(actor))
        except DeploymentFailed as failure:
            await self._fail(str(failure))
        except Exception as error:  # a bug: the deployment fails, the node goes on
            log.exception("deployment %s failed", self.id)
            await self._fail(f"{type(error).__name__}: {error}")
        finally:
            if not self.lifecycle.final:  # cancelled: what it made is reverted by now
                with trio.CancelScope(shield=True), trio.move_on_after(5):
                    await self._fail("stopped before it was running (shut down, or its "
                                     "node stopped); everything it made was reverted")

    async def _run(self, actor: Actor) -> None:
        async with UndoStack(undo_timeout=self.settings.undo_timeout,
                             on_event=self._phase_events.append) as undos:
            with trio.move_on_after(self.settings.deadline) as deadline:
                await self._deploy(actor, undos)
            if deadline.cancelled_caught:
                raise DeploymentFailed(f"not running within {self.settings.deadline:g} s: "
                                       f"{self._last_reason}")
            await self._enter(P.RUNNING)
            why = await self._supervise(actor)
            await self._enter(P.SHUTTING_DOWN, why)
            await self._take_down_moved(actor)
        await self._flush_phase_events()
        await self._enter(P.COMPLETED, why)

    async def _take_down_moved(self, actor: Actor) -> None:
        """Shut down where redeploys put nodes (those are not on the deployment's undo
        stack: see `_redeploy`)."""
        with shielded_cleanup(self.settings.undo_timeout * 2):
            for provider in self._moved_to.values():
                await self._take_down(actor, provider, wire.SHUTDOWN)

    def _new_window(self) -> BidWindow:
        return BidWindow(self.requirements, round_seconds=self.settings.bid_round,
                         minimum_candidates=self.settings.minimum_candidates)

    async def _run_resumed(self, actor: Actor) -> None:
        record = self.journal.record
        self.window = self._new_window()
        self.assignment = Assignment(primary=dict(record.assignment))
        for name, known in record.allocations.items():
            node = next(n for n, spec in self.ensemble.nodes.items() if name in spec.allocations)
            provider = Handle(known.provider_actor, known.provider, known.provider, "provider")
            self.providers.setdefault(known.provider, provider)
            self.placed[name] = _Placed(name, node, known.provider,
                                        Handle(known.actor, known.provider, known.provider,
                                               known.inbox), None)
        await self.journal.event("resumed", allocations=sorted(self.placed))
        async with UndoStack(undo_timeout=self.settings.undo_timeout,
                             on_event=self._phase_events.append) as undos:
            async with undos.phase("resume") as phase:
                for peer, provider in self.providers.items():
                    phase.on_revert(functools.partial(self._take_down, actor, provider,
                                                      wire.SHUTDOWN),
                                    f"allocations on {peer}")
            if self.lifecycle.phase is P.SHUTTING_DOWN:
                why = "resumed after the node restarted, to finish shutting down"
            else:
                why = await self._supervise(actor)
                await self._enter(P.SHUTTING_DOWN, why)
            await self._take_down_moved(actor)
        await self._flush_phase_events()
        await self._enter(P.COMPLETED, why)

    async def _deploy(self, actor: Actor, undos: UndoStack) -> None:
        window = self.window = self._new_window()
        await self._enter(P.BIDDING)
        while True:
            placement = await self._bid_until_placeable(actor, window)
            await self._enter(P.COMMITTING)
            try:
                assignment = placement.assignment.primary
                async with undos.phase("commit") as phase:
                    await self._commit(actor, assignment, phase)
                await self._flush_phase_events()
                await self.journal.update(assignment=dict(assignment))
                self.assignment = placement.assignment
                await self._enter(P.ALLOCATING)
                async with undos.phase("allocate") as phase:
                    await self._allocate(actor, assignment, phase)
                    await self._start_in_order(actor, phase, self._allocations_of(assignment))
                break
            except ProviderFailed as failure:  # everything made so far is reverted now
                self._last_reason = str(failure)
                self.placed.clear()
                self.reports.clear()
                self._seen_events.clear()
                await self._flush_phase_events()
                await self.journal.event("provider_failed", provider=failure.peer,
                                         reason=failure.reason[:1000], stale=failure.stale)
                if failure.stale:  # raced by another deployment: ask it again
                    window.withdraw(failure.peer)
                else:  # refused or silent: not this provider again
                    window.exclude(failure.peer, failure.reason)
                await self._enter(P.SOLVING, str(failure))
        await self._flush_phase_events()

    async def _bid_until_placeable(self, actor: Actor, window: BidWindow, *,
                                   once: bool = False) -> Placement:
        """Rounds of bids until the solver finds a placement; `once`: one round only,
        then DeploymentUnplaceable (NeverPlaceable at once when waiting cannot help)."""
        request = wire.BidRequest(self.id, self.journal.record.ensemble, actor.handle)
        while True:
            if self.lifecycle.phase is not P.BIDDING:
                await self._enter(P.BIDDING)
            closes = window.open_round(trio.current_time())
            await actor.broadcast(wire.DEPLOYMENT_TOPIC, wire.REQUEST, request,
                                  subject=self.market)
            while not window.should_close(trio.current_time()):
                await self._next_answer(self._answers, closes)
            await self._measure_bandwidth(actor, window)
            await self._enter(P.SOLVING)
            while True:
                seen = self._answers
                try:
                    return await self._solve(window)
                except DeploymentUnplaceable as unplaceable:
                    last = unplaceable
                    if nodes := self._never_placeable(window):
                        await self._unplaceable(unplaceable)
                        raise NeverPlaceable(unplaceable, nodes) from None
                # Solve again on each new answer until the round ends, then ask again;
                # what a round's first answers cannot place is not news until it ends.
                if not await self._next_answer(seen, closes):
                    await self._unplaceable(last)
                    if once:
                        raise last
                    break

    async def _unplaceable(self, unplaceable: DeploymentUnplaceable) -> None:
        """Keep why it is not placeable; an event only when that changed (each round
        mostly repeats the last one's answer, and a user reads it once)."""
        self._last_reason = unplaceable.text()
        why = unplaceable.explanation
        same = (why.reason, why.nodes, why.conflicts, unplaceable.declines,
                sorted(unplaceable.excluded.items()))  # not its round count, nor timings
        if same != self._explained:
            self._explained = same
            await self.journal.event("unplaceable", explanation=self._last_reason[:4000])

    def _never_placeable(self, window: BidWindow) -> list[str]:
        """The nodes without a candidate that every provider heard from (its newest
        answer) declined for good (`PERMANENT`), one of them for what it is
        (`CAPABILITY`); empty while any might still take it."""
        if not self._never:
            return []
        return sorted(
            node.name for node in self.requirements.nodes
            if not window.candidates(node.name)
            and all(node.name in never for never in self._never.values())
            and any(never[node.name] & CAPABILITY for never in self._never.values()))

    async def _next_answer(self, seen: int, until: float) -> bool:
        """Wait until a provider has answered since `seen` answers (True), or `until`
        (False). Answers that came while the caller was busy count."""
        with trio.move_on_at(until):
            while self._answers == seen:
                self._answered = trio.Event()
                await self._answered.wait()
            return True
        return False

    async def _solve(self, window: BidWindow, *, previous: Assignment | None = None,
                     replace: frozenset[str] = frozenset()) -> Placement:
        """`placement.solve` over what the window holds now, in a worker thread under a
        time budget: the search is CPU work that must not stall this node's other
        deployments and peers. `DeploymentUnplaceable` when it finds nothing."""
        job = functools.partial(
            solve, window.requirements, window.bids, self.measurements(),
            exclude=window.excluded, previous=previous, replace=replace,
            budget=SearchBudget(max_seconds=self.settings.solve_seconds))
        try:
            return await trio.to_thread.run_sync(job, abandon_on_cancel=True)
        except Unplaceable as failure:
            raise window.unplaceable(failure.explanation) from failure

    # -- commit -------------------------------------------------------------------------

    @staticmethod
    def _by_provider(assignment: Mapping[str, str]) -> dict[str, list[str]]:
        chosen: dict[str, list[str]] = {}
        for node, peer in assignment.items():
            chosen.setdefault(peer, []).append(node)
        return chosen

    async def _commit(self, actor: Actor, assignment: Mapping[str, str], phase: Phase) -> None:
        """Reserve on every provider of `assignment` at once, each recorded first (in
        `commits`, kept for the deployment's life) so that a restart reverts there."""
        failures: list[ProviderFailed] = []
        asked = {peer: self.providers[peer].id for peer in self._by_provider(assignment)}
        commits = {**self.journal.record.commits, **asked}
        if commits != self.journal.record.commits:
            await self.journal.update(commits=commits)
        async with trio.open_nursery() as nursery:
            for peer, nodes in self._by_provider(assignment).items():
                handle = self.providers[peer]
                phase.on_revert(functools.partial(self._take_down, actor, handle, wire.REVERT,
                                                  tuple(nodes)), f"reservations on {peer}")
                nursery.start_soon(self._commit_one, actor, handle, nodes, failures,
                                   nursery.cancel_scope)
        if failures:
            raise failures[0]

    async def _commit_one(self, actor: Actor, provider: Handle, nodes: list[str],
                          failures: list[ProviderFailed], scope: trio.CancelScope) -> None:
        order = wire.CommitOrder(self.id, self.journal.record.ensemble, tuple(nodes),
                                 self.settings.lease)
        try:
            await actor.invoke(provider, wire.COMMIT, order, subject=self.market,
                               timeout=self.settings.request_timeout)
        except ActorError as error:
            stale = isinstance(error, RemoteError) and error.name in STALE
            failures.append(ProviderFailed(provider.peer, f"did not commit: {error}",
                                           stale=stale))
            scope.cancel()
            return
        await self.journal.event("committed", provider=provider.peer, nodes=nodes)

    async def _take_down(self, actor: Actor, provider: Handle, command: str,
                         nodes: tuple[str, ...] = ()) -> None:
        """Revert or shut down `nodes` on one provider (idempotent there), at its
        provider actor as known now (a restarted provider has a new one: it is looked up
        once more on a refusal). A provider that does not answer takes them down itself
        when its leases or heartbeat run out."""
        current = self.providers.get(provider.peer, provider)
        for attempt in range(2):
            try:
                await actor.invoke(current, command, wire.DeploymentRef(self.id, nodes),
                                   subject=self.market, timeout=self.settings.request_timeout)
                return
            except ActorError as error:
                failure = error
            if attempt == 0:
                self._asked_again.pop(current.peer, None)
                await self._find_again(actor, current.peer)
                found = self.providers.get(current.peer, current)
                if found == current:
                    break
                current = found
        await self.journal.event("take_down_unconfirmed", provider=current.peer,
                                 reason=str(failure)[:1000])

    # -- allocate and start ------------------------------------------------------------

    async def _allocate(self, actor: Actor, assignment: Mapping[str, str], phase: Phase) -> None:
        failures: list[ProviderFailed] = []
        network = await self._plan_network(assignment)
        async with trio.open_nursery() as nursery:
            for peer, nodes in self._by_provider(assignment).items():
                handle = self.providers[peer]
                phase.on_revert(functools.partial(self._take_down, actor, handle,
                                                  wire.SHUTDOWN, tuple(nodes)),
                                f"allocations on {peer}")
                nursery.start_soon(self._allocate_one, actor, handle, nodes, failures, network)
        if failures:
            raise failures[0]
        await self._record_allocations()

    async def _record_allocations(self) -> None:
        known = self.journal.record.allocations
        await self.journal.update(allocations={
            name: DeploymentAllocation(
                provider=placed.provider, actor=placed.actor.id, inbox=placed.actor.inbox,
                provider_actor=self.providers[placed.provider].id,
                state=known[name].state if name in known else AllocationState.PENDING)
            for name, placed in self.placed.items()})

    async def _plan_network(self, assignment: Mapping[str, str]) -> dict[str, Any] | None:
        """Plan the ensemble network for the whole assignment (`assignment` joined to
        what stays where it is, on a redeploy), keep it in the record, and return the
        order's wire form for the allocate messages (None: no network)."""
        whole = {**self.journal.record.assignment, **assignment}
        # Only what runs keeps its address: a first attempt that was reverted does not.
        previous = recorded_order(self.journal.record.network) if self.placed else None
        planned = plan_network(self.id, self.ensemble, whole, self._network_offers, previous)
        record = network_record(planned)
        self._network_order = record.get("order")
        if record != self.journal.record.network:
            await self.journal.update(network=record)
            payload = {"subnet": record["order"]["plan"]["subnet"]} if "order" in record \
                else dict(record)
            if previous is not None and "order" in record and \
                    str(previous.plan.subnet) != payload["subnet"]:
                payload["renumbered_from"] = str(previous.plan.subnet)  # a new provider clashed
            await self.journal.event("network", **payload)
        return record.get("order")

    async def _allocate_one(self, actor: Actor, provider: Handle, nodes: list[str],
                            failures: list[ProviderFailed],
                            network: dict[str, Any] | None = None) -> None:
        order = wire.AllocateOrder(self.id, self.journal.record.ensemble, tuple(nodes),
                                   self.settings.heartbeat, network)
        try:
            allocated = await actor.invoke(provider, wire.ALLOCATE, order,
                                           subject=self.market,
                                           timeout=self.settings.request_timeout)
            placed = self._checked_grants(actor, provider, nodes,
                                          _allocation_grants(allocated))
        except (ActorError, UcanError, ValueError) as error:
            failures.append(ProviderFailed(provider.peer, f"did not allocate {nodes}: {error}"))
            return
        self.placed.update(placed)
        for grant in placed.values():
            assert grant.proof is not None
            self.hold(grant.proof)

    def _checked_grants(self, actor: Actor, provider: Handle, nodes: list[str],
                        grants: tuple[wire.AllocationGrant, ...]) -> dict[str, _Placed]:
        """The allocations `provider` says it made for `nodes`: each exactly once, an
        actor on that provider, a delegation from it to this orchestrator. Anything else
        (another provider's allocation, an actor elsewhere) is a ValueError: a provider
        must not steer this orchestrator at somebody else's actors."""
        wanted = {a: node for node in nodes for a in self.ensemble.nodes[node].allocations}
        placed: dict[str, _Placed] = {}
        for grant in grants:
            if wanted.get(grant.allocation) != grant.node or grant.allocation in placed:
                raise ValueError(f"granted allocation {grant.allocation[:100]!r} of node "
                                 f"{grant.node[:100]!r}, which it was not asked for")
            if grant.actor.peer != provider.peer:
                raise ValueError(f"allocation {grant.allocation!r}: its actor is on "
                                 f"{grant.actor.peer[:100]}, not on the provider")
            proof = Delegation.decode(grant.proof)
            if (proof.iss, proof.sub, proof.aud) != (grant.actor.id, grant.actor.id,
                                                     actor.id) \
                    or not proves(proof.cmd, wire.ALLOCATION):
                raise ValueError(f"allocation {grant.allocation!r}: its proof is not "
                                 f"{wire.ALLOCATION} from its actor to this orchestrator")
            placed[grant.allocation] = _Placed(grant.allocation, grant.node, provider.peer,
                                               grant.actor, proof)
        if missing := sorted(set(wanted) - set(placed)):
            raise ValueError(f"granted no allocation for {missing}")
        return placed

    def _allocations_of(self, assignment: Mapping[str, str]) -> set[str]:
        return {a for node in assignment for a in self.ensemble.nodes[node].allocations}

    async def _start_in_order(self, actor: Actor, phase: Phase, only: set[str]) -> None:
        """Start allocations (those in `only`) level by level of `depends_on`: each level
        at once, after everything it depends on is ready (healthy, when checked)."""
        for level in _levels({name: spec.depends_on
                              for name, spec in self.ensemble.allocations.items()}):
            failures: list[Exception] = []
            async with trio.open_nursery() as nursery:
                for name in level:
                    if name not in only:
                        continue
                    placed = self.placed[name]
                    phase.on_revert(functools.partial(self._stop_one, actor, placed),
                                    f"allocation {name}")
                    nursery.start_soon(self._start_one, actor, placed, failures)
            if failures:
                raise failures[0]

    async def _start_one(self, actor: Actor, placed: _Placed, failures: list[Exception]) -> None:
        try:
            report = await self._ask(actor, placed, wire.ALLOCATION_START,
                                     timeout=self.settings.start_timeout + 10)
        except ActorError as error:  # refused or silent: the provider's doing, not the
            # workload's (a workload that fails to start says so in its report)
            failures.append(ProviderFailed(placed.provider,
                                           f"did not start {placed.allocation}: {error}"))
            return
        await self._take_report(placed, report)
        if report.phase in ENDED_BADLY or (report.ended and report.phase != "completed"):
            failures.append(DeploymentFailed(
                f"allocation {placed.allocation} on {placed.provider} failed to start "
                f"({report.phase}): {_why_it_ended(report)}"))

    async def _stop_one(self, actor: Actor, placed: _Placed) -> None:
        try:
            report = await self._ask(actor, placed, wire.ALLOCATION_STOP,
                                     timeout=self.settings.request_timeout + 30)
        except ActorError:
            return  # the provider's shutdown (the undo below this one) stops it anyway
        await self._take_report(placed, report)

    async def _ask(self, actor: Actor, placed: _Placed, command: str, *, timeout: float,
                   args: Any = None) -> wire.AllocationReport:
        proofs = () if placed.proof is None else (placed.proof,)
        reply = await actor.invoke(placed.actor, command, args, timeout=timeout,
                                   proofs=proofs)
        return _report(reply)

    # -- what users ask of a running deployment -----------------------------------------

    async def logs(self, allocation: str, query: wire.LogsQuery) -> wire.LogsReply:
        """`allocation`'s output, asked of its allocation actor as the orchestrator that
        allocated it (nobody else may). BehaviorFailed naming the allocation when it is
        not one of the deployment's, is not allocated (yet, or any more: its provider
        was lost) or its provider does not answer."""
        if allocation not in self.ensemble.allocations:
            known = ", ".join(sorted(self.ensemble.allocations))
            raise BehaviorFailed(f"deployment {self.id} has no allocation {allocation!r} "
                                 f"(it has: {known})", name="UnknownAllocation")
        placed = self.placed.get(allocation)
        recorded = self.journal.record.allocations.get(allocation)
        if placed is None:
            if recorded is not None:
                raise BehaviorFailed(f"allocation {allocation}: its provider "
                                     f"{recorded.provider} is gone (lost while it ran); "
                                     f"its output went with it", name="ProviderGone")
            raise BehaviorFailed(f"allocation {allocation} of deployment {self.id} is not "
                                 f"allocated yet (phase {self.lifecycle.phase.value})",
                                 name="NotAllocated")
        proofs = () if placed.proof is None else (placed.proof,)
        answer: list[Any] = []  # the reply, or the ActorError instead

        async def ask(scope: trio.CancelScope) -> None:
            try:
                answer.append(await self.actor.invoke(
                    placed.actor, wire.ALLOCATION_LOGS, query, proofs=proofs,
                    timeout=min(LOGS_TIMEOUT, self.settings.request_timeout)))
            except ActorError as error:
                answer.append(error)
            scope.cancel()

        # A shutdown stops the allocation actor, which then never answers: the reader
        # is told at once instead of when the request times out.
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ask, nursery.cancel_scope)
            nursery.start_soon(_cancel_when, self.shutdown_requested, nursery.cancel_scope)
        if not answer:
            raise BehaviorFailed(f"deployment {self.id} is shutting down: its allocations, "
                                 f"and their output, are going", name="DeploymentEnded")
        reply = answer[0]
        if isinstance(reply, RemoteError):
            raise BehaviorFailed(f"allocation {allocation}: its provider {placed.provider} "
                                 f"refused: {reply.name}: {reply.message}",
                                 name="ProviderRefused")
        why = (str(reply) or type(reply).__name__) if isinstance(reply, ActorError) else ""
        if not why:
            try:
                return structure_args(reply, wire.LogsReply)
            except ValueError as malformed:
                why = f"it answered something malformed: {malformed}"
        raise BehaviorFailed(f"allocation {allocation}: its provider {placed.provider} is "
                             f"gone or does not answer ({why})", name="ProviderGone")

    async def plan(self, actor: Actor, timeout: float) -> Placement | DeploymentUnplaceable:
        """Ask for bids and solve, as a deployment does, and stop there: nothing is
        committed (a bid holds nothing on its provider). One round: the placement it
        allows, or why there is none now; `timeout` bounds the round."""
        window = self.window = self._new_window()
        with trio.move_on_after(timeout):
            try:
                return await self._bid_until_placeable(actor, window, once=True)
            except NeverPlaceable as never:
                return never.unplaceable
            except DeploymentUnplaceable as unplaceable:
                return unplaceable
        try:  # the round was cut short: what the answers so far allow
            return await self._solve(window)
        except DeploymentUnplaceable as unplaceable:
            return unplaceable

    # -- running ------------------------------------------------------------------------

    async def _supervise(self, actor: Actor) -> str:
        """Poll every allocation until shutdown is asked for, the duration ends or
        every allocation has ended; returns which. A provider that stops answering is
        suspected; once it has been silent past `lost_after` (longer than the heartbeat
        after which it stops the allocations itself) it is lost, and its nodes are
        redeployed elsewhere when their `failure_recovery` says so."""
        duration = self.journal.record.duration
        ends = math.inf if duration is None else trio.current_time() + duration
        silent: dict[str, float] = {}
        while True:
            async with trio.open_nursery() as nursery:
                for placed in list(self.placed.values()):
                    nursery.start_soon(self._poll, actor, placed, silent)
            now = trio.current_time()
            for provider, since in list(silent.items()):
                if now - since >= self.settings.lost_after:
                    del silent[provider]
                    await self._lost(actor, provider)
            if self.reports and all(r.ended for r in self.reports.values()):
                return "every allocation has ended"
            with trio.move_on_after(self.settings.poll_interval):
                await self.shutdown_requested.wait()
            if self.shutdown_requested.is_set():
                return "shutdown requested"
            if trio.current_time() >= ends:
                return f"its duration of {duration:g} s is over"

    async def _poll(self, actor: Actor, placed: _Placed, silent: dict[str, float]) -> None:
        after = self._seen_events.get(placed.allocation, 0)
        try:
            report = await self._ask(actor, placed, wire.ALLOCATION_STATUS,
                                     timeout=self.settings.request_timeout,
                                     args=wire.StatusQuery(after))
        except ActorError as error:
            if placed.provider not in silent:  # suspected, not dead: nothing is torn down
                silent[placed.provider] = trio.current_time()
                await self.journal.event("provider_suspected", provider=placed.provider,
                                         reason=str(error)[:1000])
            await self._find_again(actor, placed.provider)
            return
        if silent.pop(placed.provider, None) is not None:
            await self.journal.event("provider_answers_again", provider=placed.provider)
        await self._take_report(placed, report)

    async def _find_again(self, actor: Actor, provider: str) -> None:
        """Ask the provider node's root (an address that outlives a provider restart)
        for this deployment's allocation actors there: a restarted provider re-adopts
        the workloads into new actors, with fresh delegations to this orchestrator.
        At most once per `poll_interval * 5` per provider."""
        now = trio.current_time()
        if now - self._asked_again.get(provider, -math.inf) < self.settings.poll_interval * 5:
            return
        self._asked_again[provider] = now
        root = Handle(provider, provider, provider, "root")
        try:
            reply = await actor.invoke(root, wire.ALLOCATIONS, wire.DeploymentRef(self.id),
                                       subject=self.market,
                                       timeout=self.settings.request_timeout)
            found = structure_args(reply, wire.HostedAllocations)
            grants = [(g, Delegation.decode(g.proof)) for g in found.allocations]
        except (ActorError, UcanError, ValueError):
            return  # silent still: the loss rule decides
        if found.provider.did != provider:
            return
        self.providers[provider] = found.provider
        for grant, proof in grants:
            known = self.placed.get(grant.allocation)
            if known is None or known.provider != provider:
                continue  # not an allocation this deployment has there
            self.placed[grant.allocation] = attrs.evolve(known, actor=grant.actor, proof=proof)
            self._seen_events[grant.allocation] = 0  # new actors number events from 1
            self.hold(proof)
        await self._record_allocations()
        await self.journal.event("allocations_found_again", provider=provider,
                                 allocations=sorted(g.allocation for g, _ in grants))

    async def _lost(self, actor: Actor, provider: str) -> None:
        """`provider` has been silent past `lost_after`: what ran there has stopped (it
        stops allocations nobody asks after). Redeploy its nodes that ask for it."""
        assert self.assignment is not None
        nodes = sorted(n for n, p in self.assignment.primary.items() if p == provider)
        await self.journal.event("provider_lost", provider=provider, nodes=nodes)
        for allocation in self._allocations_of({n: provider for n in nodes}):
            self.placed.pop(allocation, None)
            self.reports.pop(allocation, None)
            self._seen_events.pop(allocation, None)
        moving = {n for n in nodes
                  if self.ensemble.nodes[n].failure_recovery is Recovery.REDEPLOY}
        staying = [n for n in nodes if n not in moving]
        if staying:
            await self._mark(self._allocations_of({n: provider for n in staying}),
                             AllocationState.FAILED)
            await self.journal.event("nodes_down", provider=provider, nodes=staying)
        if moving:
            assert self.window is not None
            self.window.exclude(provider, "lost while running the deployment")
            try:
                await self._redeploy(actor, frozenset(moving))
            except (ProviderFailed, DeploymentFailed, DeploymentUnplaceable) as failure:
                text = failure.text() if isinstance(failure, DeploymentUnplaceable) else str(
                    failure)
                await self._mark(self._allocations_of({n: provider for n in moving}),
                                 AllocationState.FAILED)
                await self.journal.event("redeploy_failed", nodes=sorted(moving),
                                         reason=text[:4000])

    async def _redeploy(self, actor: Actor, nodes: frozenset[str]) -> None:
        """Place `nodes` again with the least disruption (nothing else moves), then
        commit, allocate and start them there while the rest keeps running. A failed
        attempt reverts only itself."""
        assert self.window is not None and self.assignment is not None
        window = self.window
        closes = window.open_round(trio.current_time())
        await actor.broadcast(wire.DEPLOYMENT_TOPIC, wire.REQUEST,
                              wire.BidRequest(self.id, self.journal.record.ensemble,
                                              actor.handle), subject=self.market)
        with trio.move_on_at(closes):
            while not window.enough():
                await self._next_answer(self._answers, closes)
        placement = await self._solve(window, previous=self.assignment, replace=nodes)
        moved = {n: placement.assignment.primary[n] for n in nodes}
        network_before = self.journal.record.network
        try:
            async with UndoStack(undo_timeout=self.settings.undo_timeout,
                                 on_event=self._phase_events.append) as attempt:
                async with attempt.phase("redeploy") as phase:
                    await self._commit(actor, moved, phase)
                    await self._allocate(actor, moved, phase)
                    await self._start_in_order(actor, phase, self._allocations_of(moved))
                attempt.keep()  # the deployment's shutdown takes them down from here
        except BaseException:
            # The providers that stayed never got the attempt's order (it may have
            # renumbered the ensemble): the record goes back to the one they follow.
            if self.journal.record.network != network_before:
                with trio.CancelScope(shield=True):
                    await self.journal.update(network=network_before)
                self._network_order = network_before.get("order")
            raise
        for peer in moved.values():
            self._moved_to[peer] = self.providers[peer]
        await self._update_networks(actor, {peer for node, peer in
                                            placement.assignment.primary.items()
                                            if node not in moved})
        self.assignment = placement.assignment
        await self.journal.update(assignment=dict(placement.assignment.primary))
        await self.journal.event("redeployed", moved=moved)
        await self._flush_phase_events()

    async def set_joined(self, actor: Actor, joined: str | None) -> NetworkOrder:
        """`subnet.join`: the deployment's network order with `joined` (a node id, or
        None to revoke), kept in the record (a redeploy keeps it) and sent to every
        provider hosting part of it, whose pumps then admit that node's frames from
        the gateway address. NetworkError when the deployment has no network (the
        reason named) or `joined` hosts part of it."""
        order = recorded_order(self.journal.record.network)
        if order is None:
            reason = self.journal.record.network.get("none", "none planned yet")
            raise NetworkError(f"deployment {self.id} has no ensemble network: {reason}")
        changed = attrs.evolve(order, joined=joined)
        record = network_record(changed)
        if record != self.journal.record.network:
            await self.journal.update(network=record)
            await self.journal.event("network_joined" if joined else "network_left",
                                     node=joined or order.joined)
        self._network_order = record["order"]
        await self._update_networks(actor, {peer for peer, _ in changed.hosts})
        return changed

    async def _update_networks(self, actor: Actor, staying: set[str]) -> None:
        """Send the redeployed network order to the providers whose allocations stayed:
        their pumps must reach, and admit, the moved ones where they run now. One that
        does not answer keeps the old routes (its packets to the moved ones are lost
        until it does); that is an event, not a failure of the redeploy."""
        if self._network_order is None:
            return
        update = wire.NetworkUpdate(self.id, self._network_order)

        async def send(peer: str) -> None:
            try:
                await actor.invoke(self.providers[peer], wire.NETWORK, update,
                                   subject=self.market, timeout=self.settings.request_timeout)
            except (ActorError, UcanError) as error:
                await self.journal.event("network_update_failed", provider=peer,
                                         reason=str(error)[:1000])

        async with trio.open_nursery() as nursery:
            for peer in sorted(staying):
                if peer in self.providers:
                    nursery.start_soon(send, peer)
        order = recorded_order(self.journal.record.network)
        if self.follow_network is not None and order is not None:
            await self.follow_network(order)

    async def _mark(self, allocations: set[str], state: AllocationState) -> None:
        records = dict(self.journal.record.allocations)
        for name in allocations:
            if name in records:
                records[name] = attrs.evolve(records[name], state=state)
        await self.journal.update(allocations=records)

    async def _take_report(self, placed: _Placed, report: wire.AllocationReport) -> None:
        """Record an allocation's new events in the deployment's stream, and its state."""
        seen = self._seen_events.get(placed.allocation, 0)
        for event in report.events[-REPORT_EVENTS:]:  # more is a provider's lie
            if event.number > seen:
                seen = event.number
                await self.journal.event("allocation", allocation=placed.allocation,
                                         provider=placed.provider,
                                         event=event.kind[:EVENT_TEXT],
                                         detail=event.detail[:EVENT_TEXT],
                                         exit_code=event.exit_code,
                                         logs_tail=event.logs_tail[-1000:])
        self._seen_events[placed.allocation] = seen
        self.reports[placed.allocation] = attrs.evolve(  # what `status` shows of it
            report, allocation=placed.allocation, events=(),
            health=None if report.health is None else report.health[:EVENT_TEXT])
        state = STATES.get(report.phase or "", AllocationState.PENDING)
        current = self.journal.record.allocations.get(placed.allocation)
        if current is not None and current.state is not state:
            allocations = dict(self.journal.record.allocations)
            allocations[placed.allocation] = attrs.evolve(current, state=state)
            await self.journal.update(allocations=allocations)

    # -- phases and events --------------------------------------------------------------

    async def _enter(self, phase: DeploymentPhase, detail: str = "") -> None:
        self.lifecycle.enter(phase, trio.current_time(), detail)
        await self.journal.update(phase=phase)
        await self.journal.event("phase", phase=phase.value, detail=detail[:4000])

    async def _flush_phase_events(self) -> None:
        events, self._phase_events = self._phase_events, []
        for event in events:
            await self.journal.event("revert" if "undo" in event.kind.value
                                     or event.kind.value.startswith("revert") else "step",
                                     step=event.kind.value, detail=str(event)[:1000])

    async def _fail(self, reason: str) -> None:
        await self._flush_phase_events()
        if not self.lifecycle.final:
            self.lifecycle.enter(P.FAILED, trio.current_time(), reason)
        await self.journal.update(phase=P.FAILED, failure=reason[:8000])
        await self.journal.event("phase", phase=P.FAILED.value, detail=reason[:4000])


async def _cancel_when(event: trio.Event, scope: trio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


def _levels(depends_on: Mapping[str, tuple[str, ...]]) -> list[list[str]]:
    """Allocations grouped so that each group only needs earlier groups."""
    level: dict[str, int] = {}

    def depth(name: str, seen: frozenset[str] = frozenset()) -> int:
        if name not in level:
            if name in seen:
                raise DeploymentFailed(f"allocations depend on each other in a cycle ({name})")
            needs = depends_on.get(name, ())
            level[name] = 1 + max((depth(n, seen | {name}) for n in needs), default=-1)
        return level[name]

    for name in depends_on:
        depth(name)
    groups: list[list[str]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
    for name, at in level.items():
        groups[at].append(name)
    return groups


FAILURE_EVENTS = ("start_failed", "unhealthy", "exited", "crash_loop")


def _why_it_ended(report: wire.AllocationReport) -> str:
    """What made an allocation fail, from its own events: the latest failure's detail
    (not the last event's, which may be a `stayed_down` with none) and its output's end."""
    for event in reversed(report.events):
        if event.kind in FAILURE_EVENTS:
            why = f"{event.kind}: {event.detail}" if event.detail else event.kind
            if event.exit_code is not None:
                why += f" (exit code {event.exit_code})"
            tail = event.logs_tail.strip()
            return f"{why}; its output ends: {tail[-500:]}" if tail else why
    return "no failure was reported (it ended)" if report.ended else "it did not get ready"


def _allocation_grants(reply: Any) -> tuple[wire.AllocationGrant, ...]:
    return structure_args(reply, wire.Allocated).allocations


def _report(reply: Any) -> wire.AllocationReport:
    return structure_args(reply, wire.AllocationReport)
