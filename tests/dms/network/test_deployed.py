"""The ensemble network wired into deployments: two providers with `network=True` on
the in-memory market, a web service on one and its client on the other talking over
the private network by `web.internal`, and nothing of it left after."""

from __future__ import annotations

import sys
import uuid
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from dms.actor import RemoteError
from dms.net import MemoryNetwork, NetError
from dms.network import (
    AddressPlan,
    NamespaceError,
    NetworkOrder,
    create_namespace,
    delete_namespace,
    encode_batch,
    namespace_names,
    order_to_wire,
    plan_addresses,
)
from dms.network._netns import run_ip as provider_network_run_ip
from dms.node import Node, open_node
from dms.provider import NetworkUnavailable, ProviderConfig, namespace_prefix, wire
from dms.provider import _network as provider_network
from tests.capabilities import needs_network
from tests.dms.deployment.conftest import FAST, Market, machine, open_market
from tests.dms.deployment.test_deploy_hostile import intruder, provider_actor
from ucan import SigningKey, delegate

HELLO_INTERNAL = Path(__file__).resolve().parents[3] / "examples" / "ensembles" / \
    "hello-internal.yaml"
ENSEMBLE = f"""
version: V1
allocations:
  web:
    type: service
    executor: process
    dns_name: www
    resources: {{cpu: 0.6, ram: 128Mi, disk: 16Mi}}
    execution:
      command: sh
      args: ["-c", "echo hello over the ensemble network > index.html && exec {sys.executable} -m http.server 8765 --bind 0.0.0.0"]
    healthcheck: {{type: http, endpoint: "http://127.0.0.1:8765/", interval: 0.3s, timeout: 1s, retries: 3}}
  client:
    type: task
    executor: process
    resources: {{cpu: 0.6, ram: 128Mi, disk: 16Mi}}
    execution:
      command: {sys.executable}
      args: ["-c", "import urllib.request as u; print(u.urlopen('http://www.internal:8765/', timeout=5).read().decode().strip()); print(u.urlopen('http://web:8765/', timeout=5).read().decode().strip())"]
    depends_on: [web]
nodes:
  server: {{allocations: [web]}}
  caller: {{allocations: [client]}}
"""


def left_of(providers: list[Node]) -> list[str]:
    prefixes = tuple(namespace_prefix(node.peer_id) for node in providers)
    return [name for name in namespace_names() if name.startswith(prefixes)] + [
        str(path) for path in Path("/etc/netns").glob("*") if path.name.startswith(prefixes)]


async def events_of(market: Market, deployment: str) -> list[dict[str, Any]]:
    reply = await market.user.root.invoke(market.orchestrator.root.handle,
                                          "/dms/node/deployment/events",
                                          {"id": deployment, "after": 0})
    return list(reply["events"])


@needs_network
async def test_a_client_on_one_provider_reads_a_web_service_on_another_by_its_internal_name(
        tmp_path: Path) -> None:
    async with open_market(tmp_path, providers=2, capacities=[machine(cpu=1)] * 2,
                           ensemble_network=True) as market:
        deployment = await market.deploy(ENSEMBLE)
        with trio.fail_after(40):
            while True:
                status = await market.status(deployment)
                client = next((a for a in status["allocations"] if a["name"] == "client"), None)
                if client is not None and client["state"] in ("completed", "failed"):
                    break
                assert status["phase"] not in ("failed", "completed"), status["failure"]
                await trio.sleep(0.2)
        events = await events_of(market, deployment)
        done = [e["payload"] for e in events if e["kind"] == "allocation"
                and e["payload"]["allocation"] == "client"
                and e["payload"]["event"] in ("completed", "exited")]
        assert done and done[0]["exit_code"] == 0, done
        assert done[0]["logs_tail"].count("hello over the ensemble network") == 2
        by_name = {a["name"]: a for a in status["allocations"]}
        assert {by_name["web"]["provider"], by_name["client"]["provider"]} == {
            node.peer_id for node in market.providers}
        subnet = status["network"]
        assert subnet.startswith("10.") and subnet.endswith("/24")
        assert by_name["web"]["dns_name"] == "www.internal"
        assert by_name["client"]["dns_name"] == "client.internal"
        assert by_name["web"]["address"] != by_name["client"]["address"]
        assert all(by_name[n]["address"].startswith(subnet.rsplit(".", 1)[0] + ".")
                   for n in by_name)
        for node in market.providers:  # the packets crossed between the providers' links
            assert node.mesh.metrics["mesh.tunnel_received"] > 0
        # web's namespace and its /etc/netns files; the client's went as it ended
        assert len(left_of(market.providers)) == 2
        await market.shutdown(deployment)
        await market.wait_phase(deployment, "completed", "failed")
        assert left_of(market.providers) == []


TWO_SERVICES = f"""
version: V1
allocations:
  web:
    type: service
    executor: process
    resources: {{cpu: 0.6, ram: 64Mi, disk: 1Mi}}
    execution: {{command: {sys.executable}, args: ["-c", "import time; time.sleep(600)"]}}
  idle:
    type: service
    executor: process
    resources: {{cpu: 0.6, ram: 64Mi, disk: 1Mi}}
    execution: {{command: {sys.executable}, args: ["-c", "import time; time.sleep(600)"]}}
nodes:
  a: {{allocations: [web]}}
  b: {{allocations: [idle]}}
"""


def ipv4_packet(source: str, destination: str) -> bytes:
    header = bytearray(20)
    header[0], header[9] = 0x45, 17
    header[2:4] = (20).to_bytes(2, "big")
    header[12:16], header[16:20] = IPv4Address(source).packed, IPv4Address(destination).packed
    return bytes(header)


@needs_network
async def test_a_frame_from_a_peer_hosting_no_member_is_dropped_and_counted(
        tmp_path: Path) -> None:
    async with open_market(tmp_path, providers=2, capacities=[machine(cpu=1)] * 2,
                           ensemble_network=True) as market:
        deployment = await market.deploy(TWO_SERVICES)
        status = await market.wait_phase(deployment, "running", "failed", "completed")
        assert status["phase"] == "running", status["failure"]
        by_name = {a["name"]: a for a in status["allocations"]}
        web_host = next(n for n in market.providers if n.peer_id == by_name["web"]["provider"])
        networks = web_host.provider.networks
        assert networks is not None
        network = networks.network_of(deployment)
        assert network is not None
        membership = network.pump.membership
        # A real member's address as the source, web's as the destination: only the
        # link it comes on (the user's node, which hosts nothing) makes it foreign.
        frame = encode_batch(membership.tag, [ipv4_packet(by_name["idle"]["address"],
                                                          by_name["web"]["address"])])
        before = membership.dropped["not a member"]
        with trio.fail_after(10):
            while True:
                try:
                    market.user.mesh.send_tunnel(web_host.peer_id, frame)
                    break
                except NetError:  # no link yet: the first try dials
                    await trio.sleep(0.05)
            while membership.dropped["not a member"] == before:
                await trio.sleep(0.02)
        assert membership.dropped["not a member"] == before + 1
        assert web_host.mesh.metrics["mesh.tunnel_received"] >= 1
        assert left_of(market.providers)  # still running: the providers stop with it
    assert left_of(market.providers) == []  # stopping a provider takes its networks down


@needs_network
async def test_a_provider_failing_allocate_leaves_no_namespace_on_either_provider(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = attrs.evolve(FAST, deadline=4.0)
    async with open_market(tmp_path, providers=2, capacities=[machine(cpu=1)] * 2,
                           ensemble_network=True, settings=settings) as market:
        made: list[str] = []
        failing = market.providers[1].provider.networks
        working = market.providers[0].provider.networks
        assert failing is not None and working is not None
        real_add = working.add

        async def add_and_note(deployment: str, allocation: str, ports: Any = (),
                               **more: Any) -> str | None:
            namespace = await real_add(deployment, allocation, ports, **more)
            made.extend([namespace] if namespace else [])
            return namespace

        async def refuse(deployment: str, allocation: str, ports: Any = (),
                         **more: Any) -> str | None:
            raise NamespaceError(f"allocation {allocation}", "refused by the test")

        monkeypatch.setattr(working, "add", add_and_note)
        monkeypatch.setattr(failing, "add", refuse)
        deployment = await market.deploy(TWO_SERVICES)
        status = await market.wait_phase(deployment, "failed", "completed", timeout=20)
        assert status["phase"] == "failed"
        events = await events_of(market, deployment)
        assert any(e["kind"] == "provider_failed" and "refused by the test" in
                   e["payload"]["reason"] for e in events)
        assert made  # the working provider had made its namespace before the revert
        assert left_of(market.providers) == []
        assert working.hosting() == failing.hosting() == 0


@needs_network
async def test_namespaces_a_provider_left_behind_are_removed_when_it_starts_again(
        tmp_path: Path) -> None:
    key = SigningKey.generate()
    stale = f"{namespace_prefix(key.did)}{'0' * 12}"
    create_namespace(stale, "nameserver 127.0.0.53\n")
    try:
        config = ProviderConfig(tmp_path / "work", capacity=machine(), network=True)
        async with open_node(key, listen="memory://p", network=MemoryNetwork(),
                             provider=config):
            assert stale not in namespace_names()
            assert not Path(f"/etc/netns/{stale}").exists()
    finally:
        delete_namespace(stale)


async def test_a_provider_that_cannot_host_the_network_says_what_is_missing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(provider_network, "missing_capability", lambda: "needs /dev/net/tun")
    config = ProviderConfig(tmp_path / "work", capacity=machine(), network=True)
    with pytest.raises(NetworkUnavailable, match="cannot run the ensemble network: needs "
                                                 "/dev/net/tun"):
        async with open_node(listen="memory://p", network=MemoryNetwork(), provider=config):
            pass


CLIENT_LOOP = ("import time, urllib.request as u\\n"
               "while True:\\n"
               "    try: print('got', u.urlopen('http://web.internal:8765/', timeout=2)"
               ".read().decode().strip(), flush=True)\\n"
               "    except OSError as e: print('not yet', e, flush=True)\\n"
               "    time.sleep(0.2)")
MOVING = f"""
version: V1
allocations:
  web:
    type: service
    executor: process
    resources: {{cpu: 1, ram: 64Mi, disk: 1Mi}}
    execution:
      command: sh
      args: ["-c", "echo still here > index.html && exec {sys.executable} -m http.server 8765 --bind 0.0.0.0"]
    healthcheck: {{type: http, endpoint: "http://127.0.0.1:8765/", interval: 0.3s, timeout: 1s, retries: 3}}
  client:
    type: service
    executor: process
    resources: {{cpu: 1, ram: 64Mi, disk: 1Mi}}
    execution:
      command: {sys.executable}
      args: ["-c", "{CLIENT_LOOP}"]
nodes:
  s: {{allocations: [web]}}
  m: {{allocations: [client], failure_recovery: redeploy}}
"""


@needs_network
async def test_a_redeployed_allocation_keeps_its_address_and_reaches_the_others_again(
        tmp_path: Path) -> None:
    settings = attrs.evolve(FAST, heartbeat=2.0, lost_after=3.0, request_timeout=1.0)
    async with open_market(tmp_path, providers=3, capacities=[machine(cpu=1)] * 3,
                           ensemble_network=True, settings=settings) as market:
        deployment = await market.deploy(MOVING)
        status = await market.wait_phase(deployment, "running", "failed")
        assert status["phase"] == "running", status["failure"]
        before = {a["name"]: a["address"] for a in status["allocations"]}
        by_did = {node.did: node for node in market.providers}
        lost = by_did[status["assignment"]["m"]]
        await lost.mesh.aclose()  # the client's node drops off the network
        with trio.fail_after(30):
            while (status := await market.status(deployment))["assignment"]["m"] == lost.did:
                await trio.sleep(0.2)
        assert {a["name"]: a["address"] for a in status["allocations"]} == before
        new = by_did[status["assignment"]["m"]]
        with trio.fail_after(20):  # the moved client reads web, which stayed, by name
            while "got still here" not in await client_output(new):
                await trio.sleep(0.2)
        with trio.fail_after(10):  # the lost provider stopped what it ran, network too
            while lost.provider._hosted or left_of([lost]):
                await trio.sleep(0.2)
        await market.shutdown(deployment)
        await market.wait_phase(deployment, "completed", "failed")
        assert left_of(market.providers) == []


def client_pid(node: Node) -> int:
    (hosted,) = node.provider._hosted.values()
    execution = hosted.allocations["client"][1].supervisor.execution
    assert execution is not None
    return int(execution.status().ident)


async def client_output(node: Node) -> str:
    for hosted in node.provider._hosted.values():
        if "client" in hosted.allocations:
            execution = hosted.allocations["client"][1].supervisor.execution
            if execution is not None:
                return (await execution.logs()).stdout
    return ""


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


@pytest.mark.parametrize(("network", "field"), [
    ({"plan": {"ensemble": "x", "subnet": "10.1.2.0/24", "addresses": {"job": "10.9.9.9"}},
      "hosts": {"did:key:z6Mkp": ["job"]}}, "network.plan.addresses.job"),
    ({"plan": {"ensemble": "x", "subnet": "10.1.2.0/24", "addresses": {"job": "10.1.2.2"}},
      "hosts": {}}, "network.hosts"),
    ({"plan": "10.1.2.0/24", "hosts": {}}, "plan"),
])
@needs_network
async def test_an_allocate_with_a_wrong_network_order_is_refused_naming_the_field(
        tmp_path: Path, network: Any, field: str) -> None:
    async with open_market(tmp_path, providers=1, ensemble_network=True) as market, \
            intruder(market) as evil:
        target, mine = provider_actor(market.providers[0]), str(uuid.uuid4())
        await evil.root.invoke(target, wire.COMMIT, wire.CommitOrder(mine, ONE, ("n",)),
                               subject=market.org.did)
        with pytest.raises(RemoteError) as refused:
            await evil.root.invoke(target, wire.ALLOCATE,
                                   wire.AllocateOrder(mine, ONE, ("n",), network=network),
                                   subject=market.org.did)
        assert refused.value.name == "InvalidArgs"
        assert field in refused.value.message
        provider = market.providers[0].provider
        assert not provider._hosted and provider.networks is not None
        assert provider.networks.hosting() == 0
        await evil.root.invoke(target, wire.REVERT, wire.DeploymentRef(mine),
                               subject=market.org.did)


async def test_an_allocate_with_a_network_is_refused_by_a_provider_without_one(
        tmp_path: Path) -> None:
    async with open_market(tmp_path, providers=1) as market, intruder(market) as evil:
        target, mine = provider_actor(market.providers[0]), str(uuid.uuid4())
        await evil.root.invoke(target, wire.COMMIT, wire.CommitOrder(mine, ONE, ("n",)),
                               subject=market.org.did)
        with pytest.raises(RemoteError) as refused:
            await evil.root.invoke(target, wire.ALLOCATE,
                                   wire.AllocateOrder(mine, ONE, ("n",), network={}),
                                   subject=market.org.did)
        assert refused.value.name == "InvalidArgs"
        assert "offers no ensemble network" in refused.value.message
        assert not market.providers[0].provider._hosted


LOCAL_PAIR = MOVING.replace("cpu: 1,", "cpu: 0.5,").replace(
    ", failure_recovery: redeploy", "")


@needs_network
async def test_a_restarted_provider_gives_its_readopted_workloads_their_network_again(
        tmp_path: Path) -> None:
    key = SigningKey.generate()
    config = ProviderConfig(tmp_path / "work", capacity=machine(), keep_workloads=True,
                            network=True)
    settings = attrs.evolve(FAST, request_timeout=2.0)

    def provider() -> Any:
        return open_node(key, listen="memory://restarting", network=market.network,
                         anchors=[market.org.did], bootstrap=["memory://orchestrator"],
                         state_dir=tmp_path / "state", provider=config)

    async with open_market(tmp_path, providers=0, settings=settings) as market:
        async with provider() as node:
            node.add_proofs(delegate(market.org, node.did, "/dms/deployment",
                                     expiration=None))
            await market.orchestrator.mesh.wait_connected(2)
            await trio.sleep(0.2)
            deployment = await market.deploy(LOCAL_PAIR)
            status = await market.wait_phase(deployment, "running", "failed")
            assert status["phase"] == "running", status["failure"]
            with trio.fail_after(10):
                while "got still here" not in await client_output(node):
                    await trio.sleep(0.1)
            before = {a["name"]: a["address"] for a in status["allocations"]}
            pid = client_pid(node)
        # The old provider left its workloads running; their TUNs died with it.
        config = attrs.evolve(config, keep_workloads=False)
        async with provider() as node:
            with trio.fail_after(20):
                while not node.provider._hosted:
                    await trio.sleep(0.1)
            assert client_pid(node) == pid  # re-adopted, not started again
            seen = len(await client_output(node))
            with trio.fail_after(20):  # the same client process reads web by name again
                while "got still here" not in (await client_output(node))[seen:]:
                    await trio.sleep(0.1)
            assert {a["name"]: a["address"] for a in
                    (await market.status(deployment))["allocations"]} == before
            assert len(left_of([node])) == 4  # both namespaces, named again, and their files
            await market.shutdown(deployment)
            await market.wait_phase(deployment, "completed")
            assert left_of([node]) == []


def dms0_addresses(node: Node, deployment: str, allocation: str) -> list[str]:
    assert node.provider.networks is not None
    network = node.provider.networks.network_of(deployment)  # the ensemble is its id
    assert network is not None
    out = provider_network_run_ip("-4", "-o", "addr", "show", "dev", "dms0",
                                   namespace=network.namespace_of(allocation))
    return [line.split()[3].split("/")[0] for line in out.splitlines()]


@needs_network
async def test_a_redeploy_onto_a_provider_using_the_subnet_renumbers_and_the_names_follow(
        tmp_path: Path) -> None:
    settings = attrs.evolve(FAST, heartbeat=2.0, lost_after=3.0, request_timeout=1.0)
    async with open_market(tmp_path, providers=3, capacities=[machine(cpu=1)] * 3,
                           ensemble_network=True, settings=settings) as market:
        deployment = await market.deploy(MOVING)
        status = await market.wait_phase(deployment, "running", "failed")
        assert status["phase"] == "running", status["failure"]
        subnet = IPv4Network(status["network"])
        by_did = {node.did: node for node in market.providers}
        lost, stays = by_did[status["assignment"]["m"]], by_did[status["assignment"]["s"]]
        (spare,) = set(market.providers) - {lost, stays}
        # Another ensemble on the spare provider holds the very same subnet.
        networks = spare.provider.networks
        assert networks is not None
        clash = NetworkOrder(AddressPlan("another-ensemble", subnet,
                                         (("x", subnet.network_address + 2),)),
                             ((spare.peer_id, ("x",)),))
        await networks.join("another-deployment", clash)
        await lost.mesh.aclose()
        with trio.fail_after(30):
            while (status := await market.status(deployment))["assignment"]["m"] == lost.did:
                await trio.sleep(0.2)
        assert by_did[status["assignment"]["m"]] is spare
        renumbered = IPv4Network(status["network"])
        assert not renumbered.overlaps(subnet)
        addresses = {a["name"]: IPv4Address(a["address"]) for a in status["allocations"]}
        base = renumbered.network_address
        assert addresses == {"client": base + 2, "web": base + 3}  # name order, afresh
        assert {"subnet": str(renumbered), "renumbered_from": str(subnet)} in [
            e["payload"] for e in await events_of(market, deployment) if e["kind"] == "network"]
        with trio.fail_after(20):  # web, which stayed, took its new address ...
            while dms0_addresses(stays, deployment, "web") != [str(addresses["web"])]:
                await trio.sleep(0.1)
        with trio.fail_after(20):  # ... and the moved client reaches it by name there
            while "got still here" not in await client_output(spare):
                await trio.sleep(0.2)
        stays_network = stays.provider.networks
        assert stays_network is not None
        web_net = stays_network.network_of(deployment)
        assert web_net is not None and web_net.resolver.records.names["web"] == addresses["web"]
        await networks.close("another-deployment")
        await market.shutdown(deployment)
        await market.wait_phase(deployment, "completed", "failed")
        assert left_of(market.providers) == []


@needs_network
async def test_a_network_update_is_taken_from_the_owner_only_checked_first_and_applied(
        tmp_path: Path) -> None:
    async with open_market(tmp_path, providers=1, ensemble_network=True) as market, \
            intruder(market) as owner, intruder(market, "other") as other:
        target, mine = provider_actor(market.providers[0]), str(uuid.uuid4())
        host = market.providers[0].peer_id
        first = plan_addresses(mine, ["job"], {})
        order = NetworkOrder(first, ((host, ("job",)),))
        await owner.root.invoke(target, wire.COMMIT, wire.CommitOrder(mine, ONE, ("n",)),
                                subject=market.org.did)
        await owner.root.invoke(target, wire.ALLOCATE,
                                wire.AllocateOrder(mine, ONE, ("n",), network=order_to_wire(order)),
                                subject=market.org.did)
        networks = market.providers[0].provider.networks
        assert networks is not None
        network = networks.network_of(mine)
        assert network is not None and network.plan == first
        moved = NetworkOrder(plan_addresses(mine, ["job"], {"p": [first.subnet]}, previous=first),
                             order.hosts)
        refusals = [
            (other, wire.NetworkUpdate(mine, order_to_wire(moved)), "UnknownDeployment",
             "has no allocations of yours"),
            (owner, wire.NetworkUpdate(mine, {"plan": "10.1.2.0/24", "hosts": {}}),
             "InvalidArgs", "plan"),
            (owner, wire.NetworkUpdate(mine, order_to_wire(NetworkOrder(
                plan_addresses("not-mine", ["job"], {}), order.hosts))),
             "NetworkFailed", "network.plan.ensemble"),
        ]
        for sender, update, name, says in refusals:
            with pytest.raises(RemoteError) as refused:
                await sender.root.invoke(target, wire.NETWORK, update, subject=market.org.did)
            assert (refused.value.name, says in refused.value.message) == (name, True)
            assert network.plan == first  # a refused update changed nothing
            assert network.pump.router.members() == first.as_dict()
        reply = await owner.root.invoke(target, wire.NETWORK,
                                        wire.NetworkUpdate(mine, order_to_wire(moved)),
                                        subject=market.org.did)
        assert reply == {"updated": True}
        assert network.plan == moved.plan
        assert network.pump.router.members() == moved.plan.as_dict()
        out = provider_network_run_ip("-4", "-o", "addr", "show", "dev", "dms0",
                                      namespace=network.namespace_of("job"))
        assert [line.split()[3] for line in out.splitlines()] == [
            f"{moved.plan.address_of('job')}/24"]
        await owner.root.invoke(target, wire.SHUTDOWN, wire.DeploymentRef(mine),
                                subject=market.org.did)
        with trio.fail_after(10):
            while left_of(market.providers):
                await trio.sleep(0.05)


@needs_network
async def test_a_failed_renumbering_redeploy_leaves_the_record_on_the_subnet_that_runs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = attrs.evolve(FAST, heartbeat=2.0, lost_after=3.0, request_timeout=1.0)
    async with open_market(tmp_path, providers=3, capacities=[machine(cpu=1)] * 3,
                           ensemble_network=True, settings=settings) as market:
        deployment = await market.deploy(MOVING)
        status = await market.wait_phase(deployment, "running", "failed")
        assert status["phase"] == "running", status["failure"]
        before = {a["name"]: a["address"] for a in status["allocations"]}
        subnet = IPv4Network(status["network"])
        by_did = {node.did: node for node in market.providers}
        lost, stays = by_did[status["assignment"]["m"]], by_did[status["assignment"]["s"]]
        (spare,) = set(market.providers) - {lost, stays}
        networks = spare.provider.networks
        assert networks is not None
        await networks.join("another-deployment", NetworkOrder(
            AddressPlan("another-ensemble", subnet, (("x", subnet.network_address + 2),)),
            ((spare.peer_id, ("x",)),)))

        async def refuse(deployment: str, allocation: str, ports: Any = (),
                         **more: Any) -> str | None:
            raise NamespaceError(f"allocation {allocation}", "refused by the test")

        monkeypatch.setattr(networks, "add", refuse)
        await lost.mesh.aclose()
        with trio.fail_after(30):
            while not any(e["kind"] == "redeploy_failed"
                          for e in await events_of(market, deployment)):
                await trio.sleep(0.2)
        events = await events_of(market, deployment)
        assert any(e["kind"] == "network" and e["payload"].get("renumbered_from") == str(subnet)
                   for e in events)  # the attempt did renumber ...
        status = await market.status(deployment)
        assert status["network"] == str(subnet)  # ... and the record is back on what runs
        assert {a["name"]: a["address"] for a in status["allocations"]}["web"] == before["web"]
        assert dms0_addresses(stays, deployment, "web") == [before["web"]]
        await networks.close("another-deployment")
        await market.shutdown(deployment)
        await market.wait_phase(deployment, "completed", "failed")
