import math
import secrets
import socket
from collections.abc import AsyncIterator, Iterator

import docker
import h11
import pytest
import trio

from dms.ensemble._requirements import Resources
from dms.executor import (
    ExecutionSpec,
    ExecutionState,
    ExecutorKind,
    FileDelivery,
    InvalidSpec,
    PortMapping,
    ProvisionFailed,
    ProvisionScript,
    WorkloadKind,
)
from dms.executor._docker import DockerExecutor
from dms.supervise import http_get

IMAGE = "dms-test/busybox:latest"
NODE = "did:key:z6MkTestNode"
MiB = 1 << 20

# How "nothing serves that port yet" shows: refused (OSError), reset while the request is
# sent or read (BrokenResourceError), or docker's userland proxy accepting and then
# closing because the container does not listen yet (h11 sees no response).
NOT_SERVING_YET = (OSError, trio.BrokenResourceError, h11.RemoteProtocolError)


def engine_or_skip() -> docker.DockerClient:
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
    # A sync fixture: pytest-trio would hide the skip reason of an async one.
    return engine_or_skip()


@pytest.fixture
async def executor(engine: docker.DockerClient) -> AsyncIterator[DockerExecutor]:
    async with DockerExecutor(NODE, close_grace=1) as running:
        yield running


def spec(name: str, *cmd: str, **kw: object) -> ExecutionSpec:
    return ExecutionSpec(name=name, executor=ExecutorKind.DOCKER, image=IMAGE, cmd=cmd, **kw)  # type: ignore[arg-type]


async def test_task_exit_code_and_both_log_streams(executor: DockerExecutor) -> None:
    execution = await executor.start(
        spec("job", "sh", "-c", "echo out; echo err >&2; exit 4", kind=WorkloadKind.TASK)
    )
    exit = await execution.wait()
    logs = await execution.logs(tail=5)
    assert exit.exit_code == 4 and not exit.oom
    assert (logs.stdout, logs.stderr) == ("out\n", "err\n")
    assert execution.status().state is ExecutionState.EXITED


async def test_environment_entrypoint_working_directory_and_files(executor: DockerExecutor) -> None:
    execution = await executor.start(
        spec(
            "env",
            "-c",
            "echo $GREETING; pwd; cat config/app.conf; cat /root/.ssh/authorized_keys",
            entrypoint=("/bin/sh",),
            environment=("GREETING=hi",),
            working_directory="/srv",
            files=(
                FileDelivery("config/app.conf", b"port=80\n"),
                FileDelivery("/root/.ssh/authorized_keys", b"ssh-ed25519 AAAA\n", 0o600),
            ),
        )
    )
    assert (await execution.wait()).succeeded
    stdout = (await execution.logs()).stdout
    assert stdout.splitlines() == ["hi", "/srv", "port=80", "ssh-ed25519 AAAA"]


async def test_published_port_is_reachable_on_loopback(executor: DockerExecutor) -> None:
    serve = "mkdir -p /www && echo pong > /www/ping && exec httpd -f -p 8080 -h /www"
    execution = await executor.start(spec("web", "sh", "-c", serve, ports=(PortMapping(8080),)))
    [(private, public)] = execution.status().ports
    assert private == 8080
    with trio.fail_after(30):
        while True:
            try:
                status, body = await http_get(f"http://127.0.0.1:{public}/ping")
                break
            except NOT_SERVING_YET:
                await trio.sleep(0.05)
    assert (status, body) == (200, "pong\n")
    host_ports = execution.container.attrs["HostConfig"]["PortBindings"]["8080/tcp"]
    assert host_ports[0]["HostIp"] == "127.0.0.1"


async def test_limits_and_labels_are_visible_in_docker_inspect(executor: DockerExecutor) -> None:
    limits = Resources(cpu=0.5, ram=64 * MiB)
    execution = await executor.start(spec("limited", "sleep", "300", resources=limits))
    inspected = docker.from_env().api.inspect_container(execution.container.id)
    assert inspected["HostConfig"]["Memory"] == 64 * MiB
    assert inspected["HostConfig"]["NanoCpus"] == 500_000_000
    assert inspected["Config"]["Labels"] == {"dms.allocation": "limited", "dms.node": NODE}
    assert inspected["HostConfig"]["LogConfig"]["Config"] == {"max-size": "1m", "max-file": "3"}
    records = await executor.reconcile()
    assert any(r.allocation == "limited" and r.state == "running" for r in records)


async def test_memory_hog_is_reported_out_of_memory(executor: DockerExecutor) -> None:
    hog = "head -c 200m /dev/zero | tail > /dev/null"
    execution = await executor.start(
        spec("hog", "sh", "-c", hog, resources=Resources(ram=32 * MiB))
    )
    exit = await execution.wait()
    assert exit.oom and exit.oom_evidence == "docker State.OOMKilled"
    assert execution.status().state is ExecutionState.OUT_OF_MEMORY


async def test_stop_escalates_to_kill_after_grace(executor: DockerExecutor) -> None:
    stubborn = "trap '' TERM; while true; do sleep 1; done"
    execution = await executor.start(spec("stubborn", "sh", "-c", stubborn))
    start = trio.current_time()
    exit = await execution.stop(grace=1)
    assert exit.stopped and exit.signal == 9
    assert 0.9 < trio.current_time() - start < 8


async def test_provision_scripts_run_before_the_workload(executor: DockerExecutor) -> None:
    scripts = (
        ProvisionScript("dirs", "mkdir -p /data && echo one > /data/order"),
        ProvisionScript("more", "echo two >> /data/order"),
    )
    execution = await executor.start(spec("prov", "cat", "/data/order", provision=scripts))
    await execution.wait()
    assert (await execution.logs()).stdout == "one\ntwo\n"
    await execution.remove()


async def test_failing_provision_script_aborts_with_its_output(executor: DockerExecutor) -> None:
    scripts = (ProvisionScript("ok", "true"), ProvisionScript("broken", "echo no disk; exit 5"))
    with pytest.raises(ProvisionFailed, match="'broken' exited 5") as raised:
        await executor.start(spec("prov", "true", provision=scripts))
    assert raised.value.output == "no disk\n"


async def test_leaving_the_executor_removes_its_containers(engine: docker.DockerClient) -> None:
    client = engine
    async with DockerExecutor(NODE, close_grace=0) as executor:
        execution = await executor.start(spec("gone", "sleep", "300"))
        container_id = execution.container.id
    with pytest.raises(docker.errors.NotFound):
        client.containers.get(container_id)


async def test_exec_runs_inside_the_container(executor: DockerExecutor) -> None:
    execution = await executor.start(spec("svc", "sleep", "300", environment=("MODE=on",)))
    result = await execution.exec(("sh", "-c", "echo $MODE; hostname"), timeout=10)
    assert result.exit_code == 0 and result.output.startswith("on\n")
    stats = await execution.stats()
    assert stats.pids >= 1 and stats.memory_bytes > 0
    assert math.isfinite(stats.cpu_seconds)


async def test_running_containers_do_not_hold_the_default_thread_limiter(
    engine: docker.DockerClient,
) -> None:
    # Stands for trio's default 40 tokens: more running containers than tokens must still
    # leave room for other blocking calls and for a clean exit.
    trio.to_thread.current_default_thread_limiter().total_tokens = 3
    with trio.fail_after(30):
        async with DockerExecutor(NODE, close_grace=0) as executor:
            executions = [await executor.start(spec(f"many{i}", "sleep", "300")) for i in range(4)]
            await trio.sleep(0.3)
            assert (await executions[0].exec(("true",), timeout=5)).exit_code == 0
        ids = [execution.container.id for execution in executions]
    for container_id in ids:
        with pytest.raises(docker.errors.NotFound):
            engine.containers.get(container_id)


@pytest.mark.parametrize("timeout", [0.001, 0.3])  # before docker started it, and after
async def test_timed_out_exec_probe_is_killed_inside_the_container(
    executor: DockerExecutor, timeout: float
) -> None:
    execution = await executor.start(spec("probed", "sleep", "300"))
    with pytest.raises(trio.TooSlowError):
        await execution.exec(("sleep", "1000"), timeout=timeout)
    processes = await execution.exec(("ps",), timeout=5)
    assert "sleep 1000" not in processes.output


@pytest.fixture
def image_with_cmd(engine: docker.DockerClient) -> Iterator[str]:
    tag = secrets.token_hex(4)  # test runs sharing one engine must not remove each other's
    base = engine.containers.create(IMAGE, command=["true"])
    try:
        base.commit(repository="dms-test/withcmd", tag=tag, conf={"Cmd": ["echo", "from-cmd"]})
    finally:
        base.remove(force=True)
    yield f"dms-test/withcmd:{tag}"
    engine.images.remove(f"dms-test/withcmd:{tag}", force=True)


async def test_provisioned_image_keeps_the_image_cmd(
    executor: DockerExecutor, image_with_cmd: str
) -> None:
    provisioned = ExecutionSpec(
        name="cmdless",
        executor=ExecutorKind.DOCKER,
        kind=WorkloadKind.TASK,
        image=image_with_cmd,
        provision=(ProvisionScript("noop", "true"),),
    )
    execution = await executor.start(provisioned)
    assert (await execution.wait()).exit_code == 0
    assert (await execution.logs()).stdout == "from-cmd\n"
    await execution.remove()


async def test_failed_start_leaves_no_container_or_provisioned_image(
    executor: DockerExecutor, engine: docker.DockerClient
) -> None:
    leaky = f"leaky-{secrets.token_hex(4)}"  # test runs sharing one engine see only their own
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        with pytest.raises(InvalidSpec, match=f"'{leaky}': docker refused it"):
            await executor.start(
                spec(
                    leaky,
                    "sleep",
                    "300",
                    provision=(ProvisionScript("p", "echo hi > /x"),),
                    ports=(PortMapping(80, taken),),
                )
            )
    label = f"dms.allocation={leaky}"
    assert engine.containers.list(all=True, filters={"label": label}) == []
    assert engine.images.list(name=f"dms-provisioned/{leaky}") == []
