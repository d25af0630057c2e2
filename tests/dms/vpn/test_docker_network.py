"""Docker containers on the ensemble network: a container on one provider and a
process on another (in-memory market, real namespaces, TUNs and containers) reach
each other by address and by `<name>.internal`, and nothing is left after."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import attrs
import docker
import pytest
import trio

from dms.network import missing_capability, namespace_names
from dms.node import Node, open_node
from dms.provider import ProviderConfig, namespace_prefix
from dms.workload import ExecutorKind
from tests.dms.deployment.conftest import FAST, machine, open_market
from tests.dms.network.test_deployed import CLIENT_LOOP
from ucan import SigningKey, delegate

IMAGE = "dms-test/busybox:latest"

ENSEMBLE = f"""
version: V1
allocations:
  web:
    type: service
    executor: docker
    dns_name: www
    resources: {{cpu: 0.6, ram: 64Mi, disk: 16Mi}}
    execution:
      image: {IMAGE}
      cmd: ["sh", "-c", "mkdir -p /www && echo hello from a container > /www/index.html && exec httpd -f -p 8080 -h /www"]
    healthcheck: {{type: http, endpoint: "http://127.0.0.1:8080/", interval: 0.3s, timeout: 1s, retries: 3}}
  api:
    type: service
    executor: process
    resources: {{cpu: 0.6, ram: 64Mi, disk: 16Mi}}
    execution:
      command: sh
      args: ["-c", "echo hello from a process > index.html && exec {sys.executable} -m http.server 8765 --bind 0.0.0.0"]
    healthcheck: {{type: http, endpoint: "http://127.0.0.1:8765/", interval: 0.3s, timeout: 1s, retries: 3}}
nodes:
  box: {{allocations: [web]}}
  host: {{allocations: [api]}}
"""


def engine_or_skip() -> docker.DockerClient:
    missing = missing_capability()
    if missing:
        pytest.skip(f"the ensemble network {missing}")
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as error:
        pytest.skip(f"docker engine not reachable: {error} (run `make engines`)")
    try:
        client.images.get(IMAGE)
    except docker.errors.ImageNotFound:
        pytest.skip(f"test image {IMAGE} missing (built by .ci/engines from busybox-static)")
    return client


@pytest.fixture
def engine() -> docker.DockerClient:
    return engine_or_skip()  # sync: pytest-trio would hide an async fixture's skip


def containers_of(engine: docker.DockerClient, nodes: list[Node]) -> list[str]:
    return [c.id or "" for node in nodes for c in engine.containers.list(
        all=True, filters={"label": f"dms.node={node.did}"})]


def left_of(nodes: list[Node]) -> list[str]:
    prefixes = tuple(namespace_prefix(node.peer_id) for node in nodes)
    return [name for name in namespace_names() if name.startswith(prefixes)] + [
        str(path) for path in Path("/etc/netns").glob("*") if path.name.startswith(prefixes)]


async def until_ok(argv: list[str], deadline: float = 20) -> str:
    """Run `argv` until it succeeds (names settle, the pump attaches); its stdout."""
    last = b""
    with trio.move_on_after(deadline):
        while True:
            done = await trio.run_process(argv, capture_stdout=True, capture_stderr=True,
                                          check=False)
            if done.returncode == 0:
                return done.stdout.decode()
            last = done.stdout + done.stderr
            await trio.sleep(0.3)
    raise AssertionError(f"{argv} kept failing: {last.decode(errors='replace')}")


async def test_a_container_and_a_process_on_two_providers_reach_each_other_by_address_and_name(
        tmp_path: Path, engine: docker.DockerClient) -> None:
    async with open_market(tmp_path, providers=2, capacities=[machine(cpu=1)] * 2,
                           ensemble_network=True,
                           executors=(ExecutorKind.PROCESS, ExecutorKind.DOCKER)) as market:
        deployment = await market.deploy(ENSEMBLE)
        status = await market.wait_phase(deployment, "running", "failed", timeout=60)
        assert status["phase"] == "running", status["failure"]
        by_name = {a["name"]: a for a in status["allocations"]}
        assert by_name["web"]["provider"] != by_name["api"]["provider"]
        assert status["network"].startswith("10.")
        (container,) = containers_of(engine, market.providers)
        inside = ["docker", "exec", container]
        # The container's own namespace holds dms0 with its planned address.
        addr = await until_ok([*inside, "ip", "-4", "addr", "show", "dms0"])
        assert f"inet {by_name['web']['address']}/" in addr
        assert "nameserver 127.0.0.53" in await until_ok([*inside, "cat", "/etc/resolv.conf"])
        # container -> process, by address and by name
        await until_ok([*inside, "ping", "-c", "1", "-W", "2", by_name["api"]["address"]])
        # (the image's static busybox wget crashes on any URL: HTTP by hand over nc)
        assert "hello from a process" in await until_ok(
            [*inside, "sh", "-c", "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 api.internal 8765"])
        # process namespace -> container, by its dns_name
        (api_host,) = [n for n in market.providers if n.did == by_name["api"]["provider"]]
        namespace = api_host.provider.networks.namespace_name(  # type: ignore[union-attr]
            next(iter(api_host.provider._hosted)), "api")
        assert "hello from a container" in await until_ok(
            ["ip", "netns", "exec", namespace, sys.executable, "-c",
             "import urllib.request as u; "
             "print(u.urlopen('http://www.internal:8080/', timeout=3).read().decode())"])
        assert len(left_of(market.providers)) == 4  # two namespaces and their files
        await market.shutdown(deployment)
        await market.wait_phase(deployment, "completed", "failed")
        with trio.fail_after(20):
            while containers_of(engine, market.providers):
                await trio.sleep(0.2)
        assert left_of(market.providers) == []
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True)
    assert "dms0" not in links.stdout  # no TUN ever in the host's namespace


RESTARTING = f"""
version: V1
allocations:
  web:
    type: service
    executor: docker
    resources: {{cpu: 0.5, ram: 64Mi, disk: 16Mi}}
    execution:
      image: {IMAGE}
      cmd: ["sh", "-c", "mkdir -p /www && echo still here > /www/index.html && exec httpd -f -p 8765 -h /www"]
    healthcheck: {{type: http, endpoint: "http://127.0.0.1:8765/", interval: 0.3s, timeout: 1s, retries: 3}}
  client:
    type: service
    executor: process
    resources: {{cpu: 0.5, ram: 64Mi, disk: 16Mi}}
    execution:
      command: {sys.executable}
      args: ["-c", "{CLIENT_LOOP}"]
nodes:
  s: {{allocations: [web]}}
  m: {{allocations: [client]}}
"""


async def client_output(node: Node) -> str:
    for hosted in node.provider._hosted.values():
        if "client" in hosted.allocations:
            execution = hosted.allocations["client"][1].supervisor.execution
            if execution is not None:
                return (await execution.logs()).stdout
    return ""


async def test_a_restarted_provider_gives_its_readopted_container_its_network_again(
        tmp_path: Path, engine: docker.DockerClient) -> None:
    key = SigningKey.generate()
    config = ProviderConfig(tmp_path / "work", (ExecutorKind.PROCESS, ExecutorKind.DOCKER),
                            capacity=machine(), keep_workloads=True, network=True)

    def provider() -> Any:
        return open_node(key, listen="memory://restarting", network=market.network,
                         anchors=[market.org.did], bootstrap=["memory://orchestrator"],
                         state_dir=tmp_path / "state", provider=config)

    async with open_market(tmp_path, providers=0,
                           settings=attrs.evolve(FAST, request_timeout=2.0)) as market:
        async with provider() as node:
            node.add_proofs(delegate(market.org, node.did, "/dms/deployment",
                                     expiration=None))
            await market.orchestrator.mesh.wait_connected(2)
            await trio.sleep(0.2)
            deployment = await market.deploy(RESTARTING)
            status = await market.wait_phase(deployment, "running", "failed", timeout=60)
            assert status["phase"] == "running", status["failure"]
            with trio.fail_after(20):
                while "got still here" not in await client_output(node):
                    await trio.sleep(0.1)
            (container,) = containers_of(engine, [node])
        # The container and the client ran on without a provider; their TUNs died with it.
        config = attrs.evolve(config, keep_workloads=False)
        async with provider() as node:
            with trio.fail_after(20):
                while not node.provider._hosted:
                    await trio.sleep(0.1)
            assert containers_of(engine, [node]) == [container]  # re-adopted, not restarted
            seen = len(await client_output(node))
            with trio.fail_after(20):  # the client reads the same container by name again
                while "got still here" not in (await client_output(node))[seen:]:
                    await trio.sleep(0.1)
            assert node.provider.counters["restart_network_lost"] == 0
            await market.shutdown(deployment)
            await market.wait_phase(deployment, "completed")
            with trio.fail_after(20):
                while containers_of(engine, [node]):
                    await trio.sleep(0.2)
            assert left_of([node]) == []
