"""A provider node restarted on the same state and work directories: it re-adopts the
process workloads it left running (`keep_workloads`), releases what ran out while it
was down, and leaves nothing once its deployments are shut down; without
`keep_workloads` it stops its workloads on the way out, as it always did.

The orchestrator here is a bare actor on another node that drives the provider's
commands itself, so each step (and each heartbeat) is the test's. Real processes,
the memory network and the real clock (the workloads are real).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from dms.actor import Actor, Handle, RemoteError, structure_args
from dms.executor._leader import process_facts
from dms.net import MemoryNetwork
from dms.node import Node, open_node
from dms.provider import Capacity, ProviderConfig, WorkDirInUse, millicores, wire
from dms.provider._state import local_deployment
from dms.store import DATABASE_FILE, NodeDatabase
from dms.workload import ExecutorKind
from ucan import Delegation, SigningKey, delegate

GiB = 2**30
MACHINE = Capacity(millicores=millicores(4, round_up=False), ram=8 * GiB, disk=100 * GiB)
TICKER = """
version: V1
allocations:
  ticker:
    type: service
    executor: process
    resources: {cpu: 0.1, ram: 32Mi, disk: 16Mi}
    execution:
      command: sh
      args: ["-c", "echo pid $$; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.05; done"]
nodes:
  a: {allocations: [ticker]}
"""
SPARE = TICKER.replace("ticker", "spare")
RESTARTED = TICKER.replace("    type: service\n", "    type: service\n    failure_recovery: one_for_one\n")


def alive(pid: int) -> bool:
    facts = process_facts(pid)
    return facts is not None and facts.state != "Z"


def reap(pid: int) -> None:
    """The test process is the workloads' real parent: reap what ended, if it is ours."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


async def gone(pid: int) -> None:
    with trio.fail_after(15):
        while alive(pid):
            await trio.sleep(0.05)
    reap(pid)


@attrs.define
class Place:
    """An organisation, an orchestrator node with a bare orchestrator actor, and where
    a provider node keeps its state."""

    network: MemoryNetwork
    org: SigningKey
    orchestrator: Node
    owner: Actor
    provider_key: SigningKey
    state_dir: Path
    work_dir: Path

    @contextlib.asynccontextmanager
    async def provider(self, *, keep_workloads: bool = True) -> AsyncIterator[Node]:
        config = ProviderConfig(self.work_dir, (ExecutorKind.PROCESS,), capacity=MACHINE,
                                keep_workloads=keep_workloads)
        async with open_node(self.provider_key, listen="memory://provider",
                             network=self.network, anchors=[self.org.did],
                             bootstrap=["memory://orchestrator"], state_dir=self.state_dir,
                             provider=config) as node:
            node.add_proofs(delegate(self.org, node.did, "/dms/deployment", expiration=None))
            with trio.fail_after(10):
                await node.mesh.wait_connected(1)
            yield node

    async def ask(self, provider: Node, command: str, args: Any) -> Any:
        assert provider.provider is not None
        return await self.owner.invoke(provider.provider.actor.handle, command, args,
                                       subject=self.org.did)

    async def deploy(self, provider: Node, ensemble: str, *, lease: float = 30.0,
                     heartbeat: float = 60.0) -> tuple[str, wire.AllocationGrant]:
        """Commit, allocate and start the ensemble's node `a`; its one allocation."""
        deployment = str(uuid.uuid4())
        await self.ask(provider, wire.COMMIT,
                       wire.CommitOrder(deployment, ensemble, ("a",), lease))
        allocated = structure_args(await self.ask(
            provider, wire.ALLOCATE, wire.AllocateOrder(deployment, ensemble, ("a",),
                                                        heartbeat)), wire.Allocated)
        (grant,) = allocated.allocations
        report = await self.control(grant, wire.ALLOCATION_START)
        assert report.phase == "running", report
        return deployment, grant

    async def control(self, grant: wire.AllocationGrant, command: str,
                      args: Any = None) -> wire.AllocationReport:
        reply = await self.owner.invoke(grant.actor, command, args,
                                        proofs=[Delegation.decode(grant.proof)])
        return structure_args(reply, wire.AllocationReport)

    async def logs(self, grant: wire.AllocationGrant) -> str:
        reply = await self.owner.invoke(grant.actor, wire.ALLOCATION_LOGS, wire.LogsQuery(),
                                        proofs=[Delegation.decode(grant.proof)])
        return str(reply["stdout"]["text"])

    async def find(self, provider: Node, deployment: str) -> wire.HostedAllocations:
        """What an orchestrator asks a restarted provider: at its node's root actor,
        whose address is the same after the restart."""
        root = Handle(provider.did, provider.did, provider.peer_id)
        reply = await self.owner.invoke(root, wire.ALLOCATIONS,
                                        wire.DeploymentRef(deployment), subject=self.org.did)
        return structure_args(reply, wire.HostedAllocations)

    def rows(self) -> tuple[int, int, int]:
        """(reservations, hosted deployments, allocations) the provider's database holds."""
        with NodeDatabase.open(self.state_dir / DATABASE_FILE) as db:
            return (len(db.list_reservations()), len(db.list_hosted_deployments()),
                    len(db.list_allocations()))


@contextlib.asynccontextmanager
async def place(tmp_path: Path) -> AsyncIterator[Place]:
    network = MemoryNetwork()
    org = SigningKey.generate()
    async with open_node(listen="memory://orchestrator", network=network,
                         anchors=[org.did]) as orchestrator:
        orchestrator.add_proofs(delegate(org, orchestrator.did, "/dms/deployment",
                                         expiration=None))
        owner = await orchestrator.root.spawn("orchestrator", commands=["/dms/deployment"])
        yield Place(network, org, orchestrator, owner, SigningKey.generate(),
                    tmp_path / "state", tmp_path / "work")


async def printed_pid(place: Place, grant: wire.AllocationGrant) -> int:
    with trio.fail_after(15):
        while "pid " not in (text := await place.logs(grant)):
            await trio.sleep(0.05)
    return int(text.split("pid ", 1)[1].split()[0])


async def ticks(place: Place, grant: wire.AllocationGrant, at_least: int) -> list[int]:
    with trio.fail_after(15):
        while True:
            lines = (await place.logs(grant)).splitlines()
            numbers = [int(line.split()[1]) for line in lines if line.startswith("tick ")]
            if numbers and numbers[-1] >= at_least:
                return numbers
            await trio.sleep(0.05)


async def test_a_restarted_provider_re_adopts_a_running_process_and_releases_what_ran_out(
        tmp_path: Path) -> None:
    async with place(tmp_path) as here:
        async with here.provider() as provider:
            deployment, grant = await here.deploy(provider, TICKER)
            pid = await printed_pid(here, grant)
            before = (await ticks(here, grant, 3))[-1]
            # Committed, never allocated: its lease runs out while the provider is down.
            await here.ask(provider, wire.COMMIT,
                           wire.CommitOrder(str(uuid.uuid4()), SPARE, ("a",), 0.5))
            assert len(provider.provider.book.reservations()) == 2  # type: ignore[union-attr]
        assert alive(pid)  # left running
        await trio.sleep(0.7)

        async with here.provider() as provider:
            service = provider.provider
            assert service is not None
            (held,) = service.book.reservations()
            assert held.deployment_id == local_deployment(here.owner.id, deployment)
            assert service.counters["restart_adopted"] == 1
            assert service.counters["leases_expired"] == 1
            assert here.rows() == (1, 1, 1)

            # The old delegation names an actor that is gone.
            with trio.fail_after(5), pytest.raises(RemoteError):
                await here.control(grant, wire.ALLOCATION_STATUS, wire.StatusQuery())
            found = await here.find(provider, deployment)
            assert found.provider == service.actor.handle
            (new,) = found.allocations
            assert new.actor.id != grant.actor.id and new.allocation == "ticker"

            report = await here.control(new, wire.ALLOCATION_STATUS, wire.StatusQuery())
            assert report.phase == "running" and not report.ended
            assert report.events[0].kind == "adopted"
            assert await printed_pid(here, new) == pid and alive(pid)
            numbers = await ticks(here, new, before + 20)  # it printed on, all of it kept
            assert numbers == list(range(len(numbers)))

            report = await here.control(new, wire.ALLOCATION_STOP)
            assert report.ended and report.phase == "stopped"
            await gone(pid)
            await here.ask(provider, wire.SHUTDOWN, wire.DeploymentRef(deployment))
            assert service.book.reservations() == ()
        assert here.rows() == (0, 0, 0)
        assert [p.name for p in (here.work_dir / "process").iterdir()] == []


async def test_a_provider_without_keep_workloads_stops_them_and_keeps_nothing_running(
        tmp_path: Path) -> None:
    async with place(tmp_path) as here:
        async with here.provider(keep_workloads=False) as provider:
            _, grant = await here.deploy(provider, TICKER)
            pid = await printed_pid(here, grant)
        assert not alive(pid)
        reap(pid)
        assert here.rows() == (0, 0, 0)
        async with here.provider() as provider:
            assert provider.provider is not None
            assert provider.provider.book.reservations() == ()
            assert provider.provider.counters["restart_adopted"] == 0


async def test_a_pid_reused_by_another_process_is_not_adopted_nor_signalled(
        tmp_path: Path) -> None:
    async with place(tmp_path) as here:
        async with here.provider() as provider:
            deployment, grant = await here.deploy(provider, RESTARTED)
            pid = await printed_pid(here, grant)
        os.killpg(pid, 9)
        await gone(pid)
        stranger = subprocess.Popen(["sleep", "60"], start_new_session=True)
        try:
            # The record now names the stranger's pid, with the workload's start time:
            # what a reused pid looks like.
            with NodeDatabase.open(here.state_dir / DATABASE_FILE) as db:
                (record,) = db.list_allocations()
                assert record.execution is not None
                db.put_allocation(attrs.evolve(record, execution=attrs.evolve(
                    record.execution, ident=str(stranger.pid))))
            async with here.provider() as provider:
                service = provider.provider
                assert service is not None
                assert service.counters["restart_lost"] == 1
                assert stranger.poll() is None  # never signalled
                (new,) = (await here.find(provider, deployment)).allocations
                report = await here.control(new, wire.ALLOCATION_STATUS, wire.StatusQuery())
                lost = report.events[0]
                assert lost.kind == "lost"
                assert f"pid {stranger.pid} is another process now" in lost.detail
                # Its restart policy acts as on any run that ended: it runs again.
                with trio.fail_after(15):
                    while "running" not in [e.kind for e in report.events]:
                        await trio.sleep(0.1)
                        report = await here.control(new, wire.ALLOCATION_STATUS,
                                                    wire.StatusQuery())
                restarted = await printed_pid(here, new)
                assert restarted not in (pid, stranger.pid)
                await here.ask(provider, wire.SHUTDOWN, wire.DeploymentRef(deployment))
                await gone(restarted)
            assert stranger.poll() is None
        finally:
            stranger.kill()
            stranger.wait()


async def test_a_deployment_whose_heartbeat_lapsed_while_the_provider_was_down_is_removed(
        tmp_path: Path) -> None:
    async with place(tmp_path) as here:
        async with here.provider() as provider:
            deployment, grant = await here.deploy(provider, TICKER, heartbeat=1.0)
            pid = await printed_pid(here, grant)
        assert alive(pid)
        await trio.sleep(1.5)
        async with here.provider() as provider:
            service = provider.provider
            assert service is not None
            await gone(pid)
            assert service.counters["restart_removed"] == 1
            assert service.book.reservations() == ()
            assert here.rows() == (0, 0, 0)
            with pytest.raises(RemoteError) as unknown:
                await here.find(provider, deployment)
            assert unknown.value.name == "UnknownDeployment"


async def test_only_the_deployments_orchestrator_finds_its_allocations(tmp_path: Path) -> None:
    async with place(tmp_path) as here, here.provider(keep_workloads=False) as provider:
        deployment, _ = await here.deploy(provider, TICKER)
        intruder = await here.orchestrator.root.spawn("intruder",
                                                      commands=["/dms/deployment"])
        root = Handle(provider.did, provider.did, provider.peer_id)
        with pytest.raises(RemoteError) as refused:
            await intruder.invoke(root, wire.ALLOCATIONS, wire.DeploymentRef(deployment),
                                  subject=here.org.did)
        assert refused.value.name == "UnknownDeployment"  # none of its own by that id
        with pytest.raises(RemoteError) as unknown:
            await here.find(provider, str(uuid.uuid4()))
        assert unknown.value.name == "UnknownDeployment"


async def test_two_providers_cannot_share_a_work_directory(tmp_path: Path) -> None:
    async with place(tmp_path) as here, here.provider():
        with pytest.raises(WorkDirInUse, match=f"work directory {here.work_dir} is in use "
                                               f"by another provider \\(pid {os.getpid()}\\)"):
            async with open_node(network=here.network, anchors=[here.org.did],
                                 provider=ProviderConfig(here.work_dir, capacity=MACHINE)):
                pass
