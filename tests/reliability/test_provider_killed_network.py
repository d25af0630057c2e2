"""A provider hosting one allocation of an ensemble that uses the ensemble network,
SIGKILLed in a process of its own while the ensemble runs (no finally block: its
namespace stays, its workload keeps running inside it, only its TUN dies with its
descriptor). The allocation is redeployed on a spare provider, the providers that
stayed take the new order (the dead one is no longer a peer of the network), and once
the deployment is shut down nothing of the network is left on any survivor:
namespaces, TUN links, resolver files and DNS records, processes. Started again
from its state and work directories, the killed provider removes what it left
(its restart reconciliation): its namespace, resolver files and orphan.

Needs root and /dev/net/tun (skipped naming the missing one); every packet stays on
loopback (the nodes' websockets) or inside the namespaces the providers make."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import attrs
import trio

from dms.node import Node, open_node
from dms.provider import ProviderConfig
from dms.store._database import DATABASE_FILE, NodeDatabase
from dms.workload import ExecutorKind
from tests.capabilities import needs_network
from tests.dms.deployment.conftest import FAST, machine
from ucan import SigningKey, delegate

from .faults import network_leftovers, processes_in, status_of
from .test_provider_sigkill import kill, provider_process

SETTINGS = attrs.evolve(FAST, request_timeout=1.0, heartbeat=1.5, lost_after=2.0,
                        minimum_candidates=3)
# Each allocation takes most of a provider (4 CPUs), so the two land on two providers
# and the victim (price 0, the others 5) hosts one of them.
SLEEPER = f'{{command: {sys.executable}, args: ["-c", "import time; time.sleep(600)"]}}'
ENSEMBLE = f"""
version: V1
allocations:
  web:
    type: service
    executor: process
    dns_name: www
    resources: {{cpu: 3, ram: 64Mi, disk: 1Mi}}
    execution: {SLEEPER}
  idle:
    type: service
    executor: process
    resources: {{cpu: 3, ram: 64Mi, disk: 1Mi}}
    execution: {SLEEPER}
nodes:
  a: {{allocations: [web], failure_recovery: redeploy}}
  b: {{allocations: [idle], failure_recovery: redeploy}}
"""


def hosted_peers(node: Node, deployment: str) -> set[str] | None:
    """The providers `node`'s network of `deployment` accepts packets from (its
    order's hosts), or None when `node` hosts no network of it (no records either)."""
    networks = node.provider.networks if node.provider is not None else None
    hosted = [] if networks is None else [
        held for held in networks._networks.values() if held.order.plan.ensemble == deployment]
    return set(dict(hosted[0].order.hosts)) if hosted else None


def clean(did: str, work: Path) -> bool:
    return not any(network_leftovers(did).values()) and not processes_in(work)


@needs_network
async def test_a_provider_sigkilled_with_the_network_leaves_nothing_of_it_anywhere(
        tmp_path: Path) -> None:
    org = SigningKey.generate()
    seed = os.urandom(32)
    victim_did = SigningKey.from_seed(seed).did
    grant = tmp_path / "grant.ucan"
    grant.write_bytes(delegate(org, victim_did, "/dms/deployment", expiration=None).envelope)
    victim = tmp_path / "victim"
    async with contextlib.AsyncExitStack() as stack:
        orchestrator = await stack.enter_async_context(open_node(
            listen="ws://127.0.0.1:0", anchors=[org.did], deployments=SETTINGS))
        orchestrator.add_proofs(delegate(org, orchestrator.did, "/dms/deployment",
                                         expiration=None))
        assert orchestrator.address is not None
        survivors: list[Node] = []
        for n in range(2):
            survivor = await stack.enter_async_context(open_node(
                listen="ws://127.0.0.1:0", anchors=[org.did], bootstrap=[orchestrator.address],
                provider=ProviderConfig(tmp_path / f"survivor{n}", (ExecutorKind.PROCESS,),
                                        capacity=machine(), price=5.0, network=True)))
            survivor.add_proofs(delegate(org, survivor.did, "/dms/deployment",
                                         expiration=None))
            survivors.append(survivor)
        user = await stack.enter_async_context(open_node(
            anchors=[org.did], bootstrap=[orchestrator.address]))
        user.add_proofs(delegate(org, user.did, "/dms/node/deployment", expiration=None))
        root = orchestrator.root.handle
        with trio.fail_after(90):
            async with provider_process(seed, victim, org.did, grant, orchestrator.address,
                                        "network") as process:
                await orchestrator.mesh.wait_connected(4)
                await trio.sleep(0.3)
                reply = await user.root.invoke(root, "/dms/node/deployment/new",
                                               {"ensemble": ENSEMBLE})
                deployment = reply["id"]
                while (status := await status_of(user, root, deployment))["phase"] != "running":
                    assert status["phase"] not in ("failed", "completed"), status["failure"]
                    await trio.sleep(0.1)
                assert status["network"].startswith("10."), status  # it got its network
                assert victim_did in status["assignment"].values()
                stayed, stayed_on = next((node, provider) for node, provider
                                         in status["assignment"].items() if provider != victim_did)
                stayed_work = tmp_path / f"survivor{[s.did for s in survivors].index(stayed_on)}"
                stayed_processes = processes_in(stayed_work)
                assert stayed_processes
                held = network_leftovers(victim_did)
                assert len(held["namespaces"]) == 1 and len(held["tuns"]) == 1, held
                orphans = processes_in(victim / "work")
                assert orphans
                await kill(process)
            # The kernel kept what no finally block removed: the namespace with its
            # resolver file and the workload in it; the TUN closed with its descriptor.
            left = network_leftovers(victim_did)
            assert left["namespaces"] == held["namespaces"], left
            assert left["resolver_files"] == held["resolver_files"], left
            assert left["tuns"] == []
            assert processes_in(victim / "work") == orphans

            while victim_did in status["assignment"].values():
                await trio.sleep(0.2)
                status = await status_of(user, root, deployment)
            assert status["phase"] == "running", status["failure"]
            assert set(status["assignment"].values()) == {s.did for s in survivors}
            # Nothing healthy was torn down: the other allocation stayed where it ran.
            assert status["assignment"][stayed] == stayed_on
            assert processes_in(stayed_work) == stayed_processes
            assert status["network"].startswith("10."), status["network"]
            # Both survivors hold the network, and take packets only from each other.
            with trio.fail_after(10):
                while any(hosted_peers(s, deployment) != {s.did for s in survivors}
                          for s in survivors):
                    await trio.sleep(0.1)

            async with provider_process(seed, victim, org.did, grant, orchestrator.address,
                                        "network") as process:
                with trio.move_on_after(20):
                    while not clean(victim_did, victim / "work"):
                        await trio.sleep(0.1)
                await trio.sleep(0.5)  # what it decided is written before it is killed
                await kill(process)
            assert clean(victim_did, victim / "work"), (network_leftovers(victim_did),
                                                        processes_in(victim / "work"))
            with NodeDatabase.open(victim / "state" / DATABASE_FILE) as database:
                assert database.list_hosted_deployments() == ()  # its order, its records

            await user.root.invoke(root, "/dms/node/deployment/shutdown", {"id": deployment})
            while (await status_of(user, root, deployment))["phase"] != "completed":
                await trio.sleep(0.2)
            for n, survivor in enumerate(survivors):
                work = tmp_path / f"survivor{n}"
                with trio.move_on_after(20):
                    while not clean(survivor.did, work) or hosted_peers(survivor, deployment):
                        await trio.sleep(0.1)
                assert clean(survivor.did, work), (network_leftovers(survivor.did),
                                                   processes_in(work))
                assert hosted_peers(survivor, deployment) is None
                assert survivor.provider is not None
                assert survivor.provider.networks is not None
                assert survivor.provider.networks.hosting() == 0  # no records served
                assert survivor.provider.book.reservations() == ()
