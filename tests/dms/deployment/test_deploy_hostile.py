"""The deployment protocol under attack, on a real in-memory market: what an
authorized-but-malicious provider, user or fellow orchestrator of the same
organisation, or a stranger can send, and what it must not achieve: take down or steer
what is not theirs, pin resources, flood memory, burn other nodes' time."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from dms.actor import BehaviorFailed, Handle, Message, RemoteError, behavior
from dms.deployment import DeploymentService
from dms.deployment import _service as deployment_service
from dms.executor import ProcessExecutor
from dms.node import Node, open_node
from dms.provider import AllocationRole, ProviderService, wire
from dms.workload import ExecutorKind
from ucan import SigningKey, delegate

from .conftest import Market, machine, open_market
from .test_deploy_end_to_end import processes_running

ONE = """
version: V1
allocations:
  job:
    type: service
    executor: process
    resources: {cpu: 0.5, ram: 16Mi, disk: 1Mi}
    execution: {command: sleep, args: ["120"]}
nodes:
  n: {allocations: [job]}
"""

UNPLACEABLE = ONE.replace("ram: 16Mi", "ram: 64Gi")

TWO = """
version: V1
allocations:
  db:
    type: service
    executor: process
    resources: {cpu: 0.5, ram: 16Mi, disk: 1Mi}
    execution: {command: sleep, args: ["120"]}
  web:
    type: service
    executor: process
    resources: {cpu: 0.5, ram: 16Mi, disk: 1Mi}
    execution: {command: sleep, args: ["120"]}
nodes:
  a: {allocations: [db], peer: PINNED}
  b: {allocations: [web]}
"""


def alias_bomb() -> str:
    """A valid ensemble of under 1 KiB whose YAML aliases expand to about half a
    million values: over a second of parsing wherever it is read."""
    lines = ["x0: &e0 {" + ", ".join(f"k{i}: v" for i in range(22)) + "}"]
    for level in (1, 2, 3):
        lines.append(f"x{level}: &e{level} [" + ", ".join([f"*e{level - 1}"] * 22) + "]")
    return "\n".join(lines) + ONE.replace("    execution:", "    env: *e3\n    execution:")


# -- the parties ------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def intruder(market: Market, name: str = "intruder",
                   command: str | None = "/dms/deployment",
                   key: SigningKey | None = None) -> AsyncIterator[Node]:
    """A node of the market's organisation holding `command` from it (by default what
    every orchestrator and provider holds; None: nothing), run by someone who means
    harm."""
    peers = ["memory://orchestrator", *(f"memory://p{n}" for n in range(len(market.providers)))]
    async with open_node(key, listen=f"memory://{name}", network=market.network,
                         anchors=[market.org.did], bootstrap=peers) as node:
        if command is not None:
            node.add_proofs(delegate(market.org, node.did, command, expiration=None))
        with trio.fail_after(10):
            await node.mesh.wait_connected(len(peers))
        yield node


@contextlib.asynccontextmanager
async def provider_on(market: Market, work: Path, name: str, kind: type[ProviderService],
                      *, price: float = 0.0, **settings: Any) -> AsyncIterator[ProviderService]:
    """A provider of the market's organisation running `kind` (a ProviderService,
    usually one that misbehaves), with `settings` set on it."""
    async with intruder(market, name) as node, ProcessExecutor(work / name) as executor:
        service = kind(node.peer_id, attrs.evolve(
            machine(), executors=frozenset([ExecutorKind.PROCESS])),
            {ExecutorKind.PROCESS: executor}, node.clock, price=price)
        for setting, value in settings.items():
            setattr(service, setting, value)
        actor = await node.root.spawn("provider", commands=["/dms/deployment"],
                                      main=service.sweep)
        actor.register(service)
        await trio.sleep(0.3)  # its subscription to the deployment topic settles
        yield service


def service_of(node: Node) -> DeploymentService:
    spec = node.root.find_behavior(deployment_service.NEW)
    assert spec is not None
    service = spec.run.__self__  # type: ignore[attr-defined]
    assert isinstance(service, DeploymentService)
    return service


async def running(market: Market, ensemble: str = ONE) -> tuple[str, Node]:
    """A deployment of `ensemble` that runs, and the provider its node `n` runs on."""
    deployment = await market.deploy(ensemble)
    status = await market.wait_phase(deployment, "running", "failed")
    assert status["phase"] == "running", status["failure"]
    provider = next(n for n in market.providers if n.did == status["assignment"]["n"])
    return deployment, provider


def provider_actor(node: Node) -> Handle:
    assert node.provider is not None
    return node.provider.actor.handle


class SlowToBid(ProviderService):
    """An honest provider whose bids arrive late."""

    @behavior(wire.REQUEST, args=wire.BidRequest)
    async def request(self, message: Message[wire.BidRequest]) -> None:
        await trio.sleep(0.3)
        await super().request(message)


# -- a fellow orchestrator of the same organisation (holds /dms/deployment) ------------


async def test_an_allocate_naming_no_nodes_cannot_take_down_another_orchestrators_deployment(
        tmp_path: Path) -> None:
    # It used to set the victim's heartbeat to its own (here 10 ms): the provider's next
    # sweep stopped the victim's workload and released its reservation.
    async with open_market(tmp_path, providers=1) as market, intruder(market) as evil:
        deployment, provider = await running(market)
        with pytest.raises(RemoteError) as refused:
            await evil.root.invoke(provider_actor(provider), wire.ALLOCATE,
                                   wire.AllocateOrder(deployment, ONE, (), heartbeat=0.01),
                                   subject=market.org.did)
        assert refused.value.name in {"InvalidArgs", "NotYours"}
        await trio.sleep(1.5)  # past a sweep of the provider's
        assert processes_running(market) == 1
        assert len(provider.provider.book.reservations()) == 1  # type: ignore[union-attr]
        await market.shutdown(deployment)
        await market.wait_phase(deployment, "completed")


async def test_a_fellow_orchestrator_naming_a_deployment_it_does_not_own_touches_nothing_of_it(
        tmp_path: Path) -> None:
    # A provider holds each deployment under its orchestrator's own key: the same id
    # from anybody else names another (empty) deployment of theirs.
    async with open_market(tmp_path, providers=1) as market, intruder(market) as evil:
        deployment, provider = await running(market)
        target = provider_actor(provider)
        ref = wire.DeploymentRef(deployment)
        for command in (wire.REVERT, wire.SHUTDOWN):
            answer = await evil.root.invoke(target, command, ref, subject=market.org.did)
            assert answer == {"released": 0}, command
        with pytest.raises(RemoteError) as refused:
            await evil.root.invoke(target, wire.ALLOCATE, wire.AllocateOrder(deployment, ONE, ("n",)),
                                   subject=market.org.did)
        assert refused.value.name == "UnknownReservation"
        assert provider.provider is not None
        held = provider.provider.book.reservations()
        await evil.root.invoke(target, wire.COMMIT, wire.CommitOrder(deployment, ONE, ("n",)),
                               subject=market.org.did)
        theirs = [r for r in provider.provider.book.reservations() if r not in held]
        assert [r.owner for r in theirs] == [evil.root.id]
        assert all(r.deployment_id != theirs[0].deployment_id for r in held)
        owner_key, = {r.deployment_id for r in held}
        # Its allocation actor answers only its own delegation: not even the
        # organisation (the provider's anchor) may drive it.
        assert provider.provider is not None
        (allocation, _), = provider.provider._hosted[owner_key].allocations.values()
        async with intruder(market, "org", command=None, key=market.org) as org:
            with pytest.raises(RemoteError) as refused:
                await org.root.invoke(allocation.handle, wire.ALLOCATION_STOP,
                                      subject=market.org.did)
        assert refused.value.name == "NotYourAllocation"
        assert processes_running(market) == 1
        await market.shutdown(deployment)
        await market.wait_phase(deployment, "completed")


async def test_an_allocate_whose_ensemble_asks_more_than_was_committed_is_refused(
        tmp_path: Path) -> None:
    # Committing a small node and allocating a big one ran the big one under the small
    # reservation: past everything the provider offers.
    big = ONE.replace("cpu: 0.5, ram: 16Mi", "cpu: 3.5, ram: 7Gi")
    async with open_market(tmp_path, providers=1) as market, intruder(market) as evil:
        provider = market.providers[0]
        target, mine = provider_actor(provider), str(uuid.uuid4())
        await evil.root.invoke(target, wire.COMMIT, wire.CommitOrder(mine, ONE, ("n",)),
                               subject=market.org.did)
        with pytest.raises(RemoteError) as refused:
            await evil.root.invoke(target, wire.ALLOCATE, wire.AllocateOrder(mine, big, ("n",)),
                                   subject=market.org.did)
        assert refused.value.name == "ReservationMismatch"
        assert "'n'" in refused.value.message
        assert provider.provider is not None and not provider.provider._hosted
        await evil.root.invoke(target, wire.REVERT, wire.DeploymentRef(mine),
                               subject=market.org.did)


async def test_an_orchestrator_that_asks_for_an_endless_heartbeat_is_still_stopped_when_silent(
        tmp_path: Path) -> None:
    async with open_market(tmp_path, providers=1) as market, intruder(market) as evil:
        provider = market.providers[0].provider
        assert provider is not None
        target, mine = provider_actor(market.providers[0]), str(uuid.uuid4())
        await evil.root.invoke(target, wire.COMMIT, wire.CommitOrder(mine, ONE, ("n",)),
                               subject=market.org.did)
        await evil.root.invoke(target, wire.ALLOCATE,
                               wire.AllocateOrder(mine, ONE, ("n",), heartbeat=1e300),
                               subject=market.org.did)
        assert provider._hosted
        real = provider.clock
        provider.clock = lambda: real() + 3600  # an hour later; it never asked again
        with trio.fail_after(5):
            while provider._hosted or provider.book.reservations():
                await trio.sleep(0.1)


async def test_shutdowns_that_overlap_both_succeed_and_release_everything(
        tmp_path: Path) -> None:
    async with open_market(tmp_path, providers=1) as market, intruder(market) as evil:
        provider = market.providers[0].provider
        assert provider is not None
        target, mine = provider_actor(market.providers[0]), str(uuid.uuid4())
        await evil.root.invoke(target, wire.COMMIT, wire.CommitOrder(mine, ONE, ("n",)),
                               subject=market.org.did)
        await evil.root.invoke(target, wire.ALLOCATE, wire.AllocateOrder(mine, ONE, ("n",)),
                               subject=market.org.did)
        answers = []

        async def shut_down() -> None:
            answers.append(await evil.root.invoke(target, wire.SHUTDOWN,
                                                  wire.DeploymentRef(mine),
                                                  subject=market.org.did))

        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(shut_down)
        assert len(answers) == 3
        assert sum(answer["released"] for answer in answers) == 1
        assert not provider._hosted and not provider.book.reservations()


async def test_a_request_cannot_point_the_providers_answers_at_a_third_party(
        tmp_path: Path) -> None:
    async with open_market(tmp_path, providers=2) as market, intruder(market) as evil:
        victim = market.orchestrator
        refused_before = victim.system.metrics()["refused.InvalidAudience"]
        mine = str(uuid.uuid4())
        aimed = Handle(evil.did, victim.did, victim.peer_id, "root")
        await evil.root.broadcast(wire.DEPLOYMENT_TOPIC, wire.REQUEST,
                                  wire.BidRequest(mine, ONE, aimed), subject=market.org.did)
        await evil.root.broadcast(wire.DEPLOYMENT_TOPIC, wire.REQUEST,
                                  wire.BidRequest(mine, ONE, evil.root.handle),
                                  subject=market.org.did)
        answered = 0
        with trio.fail_after(5):
            while answered < 2:  # both providers answered the request aimed at themselves
                await trio.sleep(0.05)
                answered = sum(n.provider.counters["bids"] + n.provider.counters["declines"]
                               for n in market.providers if n.provider is not None)
        await trio.sleep(0.3)
        assert answered == 2  # and not the one aimed at the victim
        assert victim.system.metrics()["refused.InvalidAudience"] == refused_before


async def test_a_deployment_id_another_orchestrator_squats_on_first_does_not_exclude_providers(
        tmp_path: Path) -> None:
    async with open_market(tmp_path, providers=0) as market, \
            provider_on(market, tmp_path, "p", SlowToBid) as first, \
            provider_on(market, tmp_path, "q", SlowToBid) as second, \
            intruder(market) as evil:
        targets = [first.actor.handle, second.actor.handle]
        squatted = []

        async def commit(target: Handle, deployment: str) -> None:
            with contextlib.suppress(RemoteError):
                await evil.root.invoke(target, wire.COMMIT, wire.CommitOrder(
                    deployment, ONE, ("n",), lease=300), subject=market.org.did)
                squatted.append(target)

        async def squat(message: Message[Any]) -> None:  # it hears every request
            async with trio.open_nursery() as nursery:
                for target in targets:
                    nursery.start_soon(commit, target, message.args.deployment)

        evil.root.behavior(wire.REQUEST, args=wire.BidRequest)(squat)
        evil.root.subscribe(wire.DEPLOYMENT_TOPIC)
        await trio.sleep(0.3)
        deployment = await market.deploy(ONE, deadline=3)
        status = await market.wait_phase(deployment, "running", "failed")
        if len(squatted) != len(targets):
            raise RuntimeError("the squatter did not get its commits in first")
        if status["phase"] == "running":
            await market.shutdown(deployment)
            await market.wait_phase(deployment, "completed", "failed")
    assert status["phase"] == "running", status["failure"]


def tiny_nodes(count: int) -> str:
    return "version: V1\nallocations:\n" + "".join(
        f"  a{i}:\n    type: service\n    executor: process\n"
        f"    resources: {{cpu: 0.001, ram: 1Mi, disk: 1Mi}}\n"
        f"    execution: {{command: sleep, args: ['1']}}\n" for i in range(count)) + \
        "nodes:\n" + "".join(f"  n{i}: {{allocations: [a{i}]}}\n" for i in range(count))


async def test_one_grant_holder_cannot_hold_every_reservation_slot_of_a_provider(
        tmp_path: Path) -> None:
    # Leases of up to 300 s, renewed by committing again: one grant holder took all
    # 1024 slots, from its node and from as many actors as it spawns.
    chunk = 100
    many = tiny_nodes(chunk)
    async with open_market(tmp_path, providers=1) as market, intruder(market) as evil:
        provider = market.providers[0]
        assert provider.provider is not None
        slots = provider.provider.book.max_reservations
        actors = [evil.root, *[await evil.root.spawn(f"a{n}", commands=["/dms/deployment"])
                               for n in range(3)]]
        refused = None
        for attempt in range(slots // chunk + 1):
            try:
                await actors[attempt % len(actors)].invoke(
                    provider_actor(provider), wire.COMMIT, wire.CommitOrder(
                        str(uuid.uuid4()), many, tuple(f"n{i}" for i in range(chunk)),
                        lease=300), subject=market.org.did)
            except RemoteError as error:
                refused = error
                break
        assert refused is not None and refused.name == "TooManyReservations"
        held = len(provider.provider.book.reservations())
        assert 0 < held <= slots // 2
        deployment = await market.deploy(ONE, deadline=5)
        status = await market.wait_phase(deployment, "running", "failed")
        if status["phase"] == "running":
            await market.shutdown(deployment)
            await market.wait_phase(deployment, "completed", "failed")
    assert status["phase"] == "running", status["failure"]


async def test_a_bandwidth_measure_cannot_be_aimed_at_a_bystander(tmp_path: Path) -> None:
    # One small request had a provider send 16 probes of 256 KiB to any provider named.
    async with open_market(tmp_path, providers=2) as market, intruder(market) as evil:
        victim = market.providers[1]
        before = victim.system.metrics()["received"]
        with pytest.raises(RemoteError) as refused:  # it bid on nothing of evil's
            await evil.root.invoke(provider_actor(market.providers[0]), wire.MEASURE,
                                   wire.MeasureOrder(str(uuid.uuid4()),
                                                     (provider_actor(victim),) * 16),
                                   subject=market.org.did, timeout=60)
        assert refused.value.name == "NotExpected"
        received = victim.system.metrics()["received"] - before
    assert received == 0, f"the bystander received {received} probes"


# -- an authorized-but-malicious provider ------------------------------------------------


class ForgingProvider(ProviderService):
    """Bids cheapest, commits and allocates, then lies in its allocate reply."""

    forgery = ""
    victim = ""  # the peer of the honest provider

    @behavior(wire.ALLOCATE, args=wire.AllocateOrder)
    async def allocate(self, message: Message[wire.AllocateOrder]) -> wire.Allocated:
        made = await super().allocate(message)
        grant = made.allocations[0]
        actor = self._hosted[message.args.deployment].allocations[grant.allocation][0]
        if self.forgery == "claims the other provider's allocation":
            await trio.sleep(0.5)  # after the honest provider's reply
            return wire.Allocated((grant, attrs.evolve(grant, allocation="db", node="a")))
        if self.forgery == "points at an actor on another peer":
            return wire.Allocated((attrs.evolve(grant, actor=attrs.evolve(
                grant.actor, peer=self.victim)),))
        assert self.forgery == "hands over a proof for somebody else"
        proof = actor.delegate(SigningKey.generate().did, wire.ALLOCATION)
        return wire.Allocated((attrs.evolve(grant, proof=proof.envelope),))


@pytest.mark.parametrize("forgery", ["claims the other provider's allocation",
                                     "points at an actor on another peer",
                                     "hands over a proof for somebody else"])
async def test_a_provider_whose_allocate_reply_lies_is_replaced_and_steers_nothing(
        tmp_path: Path, forgery: str) -> None:
    async with open_market(tmp_path, providers=0) as market, \
            provider_on(market, tmp_path, "honest", SlowToBid, price=5.0) as honest, \
            provider_on(market, tmp_path, "liar", ForgingProvider, forgery=forgery,
                        victim=honest.peer) as liar:
        deployment = await market.deploy(TWO.replace("PINNED", honest.peer))
        status = await market.wait_phase(deployment, "running", "failed")
        assert status["phase"] == "running", status["failure"]
        assert status["assignment"] == {"a": honest.peer, "b": honest.peer}
        assert {a["name"]: a["provider"] for a in status["allocations"]} == {
            "db": honest.peer, "web": honest.peer}
        kinds = [e["kind"] for e in status["recent_events"]]
        assert "provider_failed" in kinds
        await market.shutdown(deployment)
        await market.wait_phase(deployment, "completed")
        with trio.fail_after(5):
            while liar._hosted or honest._hosted:
                await trio.sleep(0.1)


class FailsEveryStart(ProviderService):
    """Bids cheapest and allocates, then refuses to start anything."""

    async def _spawn_allocation(self, deployment: str, plan: Any,
                                hosted: Any) -> tuple[Any, AllocationRole]:
        actor, role = await super()._spawn_allocation(deployment, plan, hosted)

        def refuse(message: Message[Any]) -> None:
            raise BehaviorFailed("no", name="StartRefused")

        actor._behaviors.pop(wire.ALLOCATION_START)
        actor.behavior(wire.ALLOCATION_START)(refuse)  # type: ignore[arg-type]
        return actor, role


async def test_a_provider_that_refuses_every_start_does_not_fail_the_deployment(
        tmp_path: Path) -> None:
    async with open_market(tmp_path, providers=0) as market, \
            provider_on(market, tmp_path, "honest", SlowToBid, price=5.0), \
            provider_on(market, tmp_path, "liar", FailsEveryStart):
        deployment = await market.deploy(ONE)
        status = await market.wait_phase(deployment, "running", "failed")
        if status["phase"] == "running":
            await market.shutdown(deployment)
            await market.wait_phase(deployment, "completed", "failed")
    assert status["phase"] == "running", status["failure"]


class FloodingReports(ProviderService):
    """Its allocations report hundreds of events with huge texts at once."""

    async def _spawn_allocation(self, deployment: str, plan: Any,
                                hosted: Any) -> tuple[Any, AllocationRole]:
        actor, role = await super()._spawn_allocation(deployment, plan, hosted)
        events = tuple(wire.AllocationEvent(n, "running" * 300, 0.0, detail="x" * 4000)
                       for n in range(1, 601))

        def report(after: int = 0) -> wire.AllocationReport:
            return wire.AllocationReport(role.allocation, "running", "healthy" * 1000, 0,
                                         events, False)

        role.report = report  # type: ignore[method-assign]
        return actor, role


async def test_an_allocation_report_flood_is_cut_to_what_a_provider_keeps(
        tmp_path: Path) -> None:
    async with open_market(tmp_path, providers=0) as market, \
            provider_on(market, tmp_path, "liar", FloodingReports):
        deployment = await market.deploy(ONE)
        status = await market.wait_phase(deployment, "running", "failed")
        assert status["phase"] == "running", status["failure"]
        await trio.sleep(0.5)  # a few polls more
        journal = service_of(market.orchestrator).deployments[deployment].journal
        reported = [e.payload for e in journal.events if e.kind == "allocation"]
        assert 0 < len(reported) <= 256
        assert max(len(p["detail"]) for p in reported) <= 1024
        assert max(len(p["event"]) for p in reported) <= 1024
        assert all(len(a["health"]) <= 1024 for a in (await market.status(deployment))[
            "allocations"])
        await market.shutdown(deployment)
        await market.wait_phase(deployment, "completed", "failed")


class FloodingRtts(ProviderService):
    """Answers each request many times, each answer with new made-up peers' rtts."""

    @behavior(wire.REQUEST, args=wire.BidRequest)
    async def request(self, message: Message[wire.BidRequest]) -> None:
        order = message.args
        for round in range(20):
            rtts = {f"did:key:made-up-{round}-{n}": 1.0 for n in range(wire.MAX_RTTS)}
            await self.actor.send(order.reply_to, wire.BID, wire.BidAnswer(
                order.deployment, rtt_ms=rtts), subject=message.invocation.sub)


async def test_a_bidder_repeating_made_up_round_trip_times_holds_a_bounded_table(
        tmp_path: Path) -> None:
    async with open_market(tmp_path, providers=0) as market, \
            provider_on(market, tmp_path, "liar", FloodingRtts):
        deployment = await market.deploy(UNPLACEABLE, deadline=30)
        orchestrator = service_of(market.orchestrator).deployments[deployment].orchestrator
        with trio.fail_after(5):
            while not orchestrator.providers:
                await trio.sleep(0.05)
        await trio.sleep(0.5)
        held = sum(len(row) for row in orchestrator._rtts.values())
        assert 0 < held <= wire.MAX_RTTS
        await market.shutdown(deployment)
        await market.wait_phase(deployment, "completed", "failed")


# -- an authorized-but-malicious user (holds /dms/node/deployment) ---------------------


async def test_an_ensemble_whose_aliases_expand_far_past_its_size_is_refused_everywhere(
        tmp_path: Path) -> None:
    bomb = alias_bomb()
    assert len(bomb) < 1024
    async with open_market(tmp_path, providers=1) as market, intruder(market) as evil:
        with pytest.raises(RemoteError) as refused:
            await market.deploy(bomb)
        assert refused.value.name == "InvalidEnsemble" and "expand" in refused.value.message
        with pytest.raises(RemoteError) as refused:  # nor does a provider read it
            await evil.root.invoke(provider_actor(market.providers[0]), wire.REQUEST,
                                   wire.BidRequest(str(uuid.uuid4()), bomb, evil.root.handle),
                                   subject=market.org.did)
        assert refused.value.name == "InvalidEnsemble" and "expand" in refused.value.message


async def test_a_user_can_neither_see_nor_stop_another_users_deployment(
        tmp_path: Path) -> None:
    async with open_market(tmp_path, providers=1) as market, \
            intruder(market, command="/dms/node/deployment") as other:
        deployment, _ = await running(market)
        node = market.orchestrator.root.handle
        for command in (deployment_service.STATUS, deployment_service.EVENTS,
                        deployment_service.SHUTDOWN):
            with pytest.raises(RemoteError) as refused:
                await other.root.invoke(node, command, {"id": deployment})
            assert refused.value.name == "UnknownDeployment"
        listed = await other.root.invoke(node, deployment_service.LIST)
        assert listed["deployments"] == []
        assert (await market.status(deployment))["phase"] == "running"
        await market.shutdown(deployment)
        await market.wait_phase(deployment, "completed", "failed")


async def test_a_user_past_its_share_of_deployments_is_refused_while_others_still_deploy(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(deployment_service, "MAX_DEPLOYMENTS", 4)
    monkeypatch.setattr(deployment_service, "MAX_DEPLOYMENTS_PER_USER", 2, raising=False)
    async with open_market(tmp_path, providers=1) as market, \
            intruder(market, command="/dms/node/deployment") as other:
        # Its own keys count as itself: delegating on buys it no more.
        helper = await market.user.root.spawn(commands=["/dms/node/deployment"])
        node, org = market.orchestrator.root.handle, market.org.did
        mine = [await market.deploy(UNPLACEABLE),
                str((await helper.invoke(node, deployment_service.NEW,
                                         {"ensemble": UNPLACEABLE}, subject=org))["id"])]
        with pytest.raises(RemoteError) as refused:
            await helper.invoke(node, deployment_service.NEW, {"ensemble": UNPLACEABLE},
                                subject=org)
        assert refused.value.name == "TooManyDeployments"
        theirs = await other.root.invoke(node, deployment_service.NEW, {"ensemble": UNPLACEABLE})
        await market.shutdown(mine[0])
        await market.wait_phase(mine[0], "completed", "failed")
        await helper.invoke(node, deployment_service.SHUTDOWN, {"id": mine[1]}, subject=org)
        await other.root.invoke(node, deployment_service.SHUTDOWN, {"id": theirs["id"]})


async def test_ended_deployments_do_not_pile_up_in_memory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(deployment_service, "FINISHED_KEPT", 2, raising=False)
    async with open_market(tmp_path, providers=1) as market:
        service = service_of(market.orchestrator)
        made = []
        for _ in range(5):
            made.append(await market.deploy(UNPLACEABLE))
            await market.shutdown(made[-1])
            await market.wait_phase(made[-1], "failed", "completed")
        assert len(service.deployments) <= 3  # the newest ended ones
        assert made[-1] in service.deployments and made[0] not in service.deployments


async def test_long_polls_held_by_many_callers_leave_the_node_answering(
        tmp_path: Path) -> None:
    async with open_market(tmp_path, providers=1) as market, \
            intruder(market, command="/dms/node/deployment") as other:
        node = market.orchestrator.root.handle
        deployment = await market.deploy(UNPLACEABLE, deadline=60)
        callers = [await market.user.root.spawn(commands=["/dms/node/deployment"])
                   for _ in range(3)]
        far = 10**9  # an event that will not come: every call waits as long as it may

        async def hold(caller: Any) -> None:
            with contextlib.suppress(RemoteError):
                await caller.invoke(node, deployment_service.EVENTS,
                                    {"id": deployment, "after": far, "wait": 30}, timeout=40)

        async with trio.open_nursery() as nursery:
            for caller in callers:
                for _ in range(32):  # each caller's share of the root actor's 64 slots
                    nursery.start_soon(hold, caller)
            await trio.sleep(0.5)
            with trio.fail_after(5):  # not after the 30 s the polls may wait
                await other.root.invoke(node, deployment_service.LIST)
            nursery.cancel_scope.cancel()
        await market.shutdown(deployment)
        await market.wait_phase(deployment, "completed", "failed")


async def test_a_journal_keeps_a_bounded_number_of_bytes_of_events() -> None:
    from dms.deployment import DeploymentJournal
    from dms.deployment._journal import EVENT_BYTES_KEPT
    from dms.store import DeploymentRecord

    record = DeploymentRecord(id=str(uuid.uuid4()), owner=SigningKey.generate().did,
                              ensemble=ONE, created_at=0.0, updated_at=0.0)
    journal = DeploymentJournal(record, None, lambda: 0.0)
    for _ in range(1000):
        await journal.event("phase", detail="x" * 4000)
    held = sum(len(e.payload["detail"]) for e in journal.events)
    assert held <= EVENT_BYTES_KEPT
    assert journal.events[-1].seq == 1000 and journal.last_event == 1000
    assert journal.events_after(999)[0].seq == 1000


# -- a stranger (no grant at all) ------------------------------------------------------


async def test_a_stranger_is_refused_by_name_on_every_deployment_command(
        tmp_path: Path) -> None:
    async with open_market(tmp_path, providers=1) as market, \
            intruder(market, command=None) as stranger:
        deployment, provider = await running(market)
        target = provider_actor(provider)
        orders = {wire.COMMIT: wire.CommitOrder(str(uuid.uuid4()), ONE, ("n",)),
                  wire.REVERT: wire.DeploymentRef(deployment),
                  wire.SHUTDOWN: wire.DeploymentRef(deployment),
                  wire.ALLOCATE: wire.AllocateOrder(deployment, ONE, ("n",))}
        for command, order in orders.items():
            with pytest.raises(RemoteError) as refused:
                await stranger.root.invoke(target, command, order, subject=market.org.did)
            assert refused.value.name in {"InvalidClaim", "UnavailableProof"}, command
        with pytest.raises(RemoteError) as refused:
            await stranger.root.invoke(market.orchestrator.root.handle,
                                       deployment_service.NEW, {"ensemble": ONE})
        assert refused.value.name in {"InvalidClaim", "UnavailableProof", "InvalidSubject"}
        assert processes_running(market) == 1
        await market.shutdown(deployment)
        await market.wait_phase(deployment, "completed")

