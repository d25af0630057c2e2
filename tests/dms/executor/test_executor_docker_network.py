"""A networked docker container's workload waits behind its gate until the provider
has set its namespace up (`ContainerNetwork.attach`), and its network is detached
when it ends. A fake network here: it records, and checks the workload did not run
yet while it is being attached."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import docker
import pytest
import trio

from dms.executor import ExecutionSpec, ExecutorKind, InvalidSpec, WorkloadKind
from dms.executor._docker import GATE_DIR, DockerExecutor
from tests.dms.executor.test_executor_docker import IMAGE, NODE, engine  # noqa: F401


class FakeNetwork:
    def __init__(self, root: Path, client: docker.DockerClient, fail: bool = False) -> None:
        self.root, self.engine, self.fail = root, client, fail
        self.events: list[tuple[str, str]] = []
        self.started_before_attach: bool | None = None

    def files(self, namespace: str) -> Path:
        etc = self.root / namespace
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "resolv.conf").write_text("nameserver 127.0.0.53\n")
        return etc

    async def attach(self, namespace: str, pid: int) -> None:
        self.events.append(("attach", namespace))
        (found,) = self.engine.containers.list(filters={"label": f"dms.node={NODE}"})
        await trio.sleep(0.3)  # time enough for an ungated workload to run
        probe = found.exec_run(["test", "-e", "/tmp/started"])
        self.started_before_attach = probe.exit_code == 0
        assert pid > 0
        if self.fail:
            raise OSError("no TUN for you")

    async def detach(self, namespace: str) -> None:
        self.events.append(("detach", namespace))


@contextlib.asynccontextmanager
async def networked(network: FakeNetwork) -> AsyncIterator[DockerExecutor]:
    async with DockerExecutor(NODE, close_grace=0, network=network) as executor:
        yield executor


def spec(*cmd: str) -> ExecutionSpec:
    return ExecutionSpec(name="gated", executor=ExecutorKind.DOCKER, image=IMAGE, cmd=cmd,
                         kind=WorkloadKind.TASK, network_namespace="dmst-gated")


async def test_the_workload_starts_only_after_its_network_is_attached_and_detaches_at_its_end(
        tmp_path: Path, engine: docker.DockerClient) -> None:  # noqa: F811
    network = FakeNetwork(tmp_path, engine)
    async with networked(network) as executor:
        execution = await executor.start(spec(
            "sh", "-c", "touch /tmp/started; cat /etc/resolv.conf; ls " + GATE_DIR))
        exit = await execution.wait()
        logs = await execution.logs()
    assert exit.exit_code == 0, logs
    assert network.started_before_attach is False
    assert logs.stdout.split() == ["nameserver", "127.0.0.53", "ready", "resolv.conf"]
    assert network.events == [("attach", "dmst-gated"), ("detach", "dmst-gated")]


async def test_a_failing_attach_removes_the_container_and_the_workload_never_runs(
        tmp_path: Path, engine: docker.DockerClient) -> None:  # noqa: F811
    network = FakeNetwork(tmp_path, engine, fail=True)
    async with networked(network) as executor:
        with pytest.raises(OSError, match="no TUN"):
            await executor.start(spec("touch", "/tmp/started"))
    assert network.started_before_attach is False
    assert network.events == [("attach", "dmst-gated"), ("detach", "dmst-gated")]
    assert engine.containers.list(all=True, filters={"label": f"dms.node={NODE}"}) == []


async def test_a_spec_asking_for_the_network_is_refused_by_an_executor_without_one(
        engine: docker.DockerClient) -> None:  # noqa: F811
    async with DockerExecutor(NODE, close_grace=0) as executor:
        with pytest.raises(InvalidSpec, match="network_namespace"):
            await executor.start(spec("true"))
