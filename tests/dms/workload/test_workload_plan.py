"""plan_workload: every allocation field lands in the plan or is refused by name."""

from __future__ import annotations

import pathlib

import attrs
import pytest

from dms.ensemble import _spec as spec
from dms.ensemble import load_ensemble, load_ensemble_file
from dms.ensemble._requirements import Resources
from dms.executor import ExecutionSpec, FileDelivery, FirecrackerBoot, PortMapping, ProvisionScript
from dms.supervise import (
    CommandProbe,
    ExpectedResponse,
    HealthCheck,
    HttpProbe,
    RestartPolicy,
    TcpProbe,
)
from dms.workload import ExecutorKind, Recovery, ResponseMatch, SupervisorStrategy, WorkloadKind
from dms.workload.plan import (
    InvalidWorkload,
    MissingSource,
    UnknownAllocation,
    UnsupportedField,
    WorkloadPlan,
    plan_workload,
)

NUNET = pathlib.Path(__file__).parents[1] / "ensemble" / "nunet"
FILES = {
    "scripts/setup.sh": b"apt-get install -y curl\n",
    "scripts/cleanup.sh": b"rm -rf /tmp/*\n",
    "scripts/healthcheck.sh": b"test -f /app/ready\n",
    "keys/worker1_key": b"ssh-ed25519 AAAA worker1",
    "keys/worker2.pub": b"ssh-ed25519 BBBB worker2\n",
    "keys/vm1_key": b"ssh-ed25519 CCCC vm1\n",
}


def read(path: str) -> bytes:
    try:
        return FILES[path]
    except KeyError:
        raise FileNotFoundError(path) from None


def one(allocation: str, nodes: str = "", top: str = "", **changes: object) -> spec.Ensemble:
    """A one-node ensemble around an allocation written in YAML."""
    text = f"""
version: V1
{top}
allocations:
  app:
    resources: {{cpu: 0.5, ram: 64Mi}}
{allocation}
nodes:
  n1:
    allocations: [app]
{nodes}
"""
    ensemble = load_ensemble(text)
    if changes:
        app = attrs.evolve(ensemble.allocations["app"], **changes)
        ensemble = attrs.evolve(ensemble, allocations={"app": app})
    return ensemble


PROCESS = """
    executor: process
    execution: {command: python3, args: ["-m", "http.server", "8000"]}
"""


def test_docker_allocation_translates_field_by_field() -> None:
    plan = plan_workload(load_ensemble_file(NUNET / "full-reference.yaml"), "worker1", read_file=read)
    assert plan == WorkloadPlan(
        allocation="worker1",
        node="node1",
        execution=ExecutionSpec(
            name="worker1",
            executor=ExecutorKind.DOCKER,
            image="ubuntu:22.04",
            entrypoint=("/bin/bash",),
            cmd=("-c", "echo 'Hello from worker1'"),
            environment=("DEBUG=1", "WORKER_ID=1"),
            working_directory="/app",
            resources=Resources(cpu=2.0, ram=4 * 2**30, disk=10 * 2**30, gpus=plan.execution.resources.gpus),
            ports=(PortMapping(private=8080, public=8080),),
            files=(
                FileDelivery("/root/.ssh/authorized_keys", b"ssh-ed25519 AAAA worker1\n", 0o600),
            ),
            provision=(
                ProvisionScript("setup", "apt-get install -y curl\n"),
                ProvisionScript("cleanup", "rm -rf /tmp/*\n"),
            ),
            kind=WorkloadKind.SERVICE,
        ),
        health=HealthCheck(CommandProbe(("/bin/sh", "-c", "test -f /app/ready\n"))),
        restart=RestartPolicy(recovery=Recovery.STAY_DOWN),
        strategy=None,
        depends_on=(),
        dns_name="worker1.local",
        node_recovery=Recovery.STAY_DOWN,
    )
    assert plan.execution.resources.gpus[0].model == "rtx3080"


def test_task_with_inline_key_file_and_dependency() -> None:
    plan = plan_workload(load_ensemble_file(NUNET / "full-reference.yaml"), "worker2", read_file=read)
    assert plan.execution.kind is WorkloadKind.TASK
    assert plan.execution.entrypoint is None  # the image's own
    assert plan.execution.files == (
        FileDelivery("/root/.ssh/authorized_keys", b"ssh-ed25519 BBBB worker2\n", 0o600),
    )
    assert plan.depends_on == ("worker1",)
    assert plan.dns_name == "worker2"  # defaults to the allocation name
    assert plan.health is None


def test_firecracker_boot_comes_from_the_execution() -> None:
    plan = plan_workload(load_ensemble_file(NUNET / "full-reference.yaml"), "vm1", read_file=read)
    assert plan.execution.executor is ExecutorKind.FIRECRACKER
    assert plan.execution.firecracker == FirecrackerBoot(
        kernel="vmlinux-5.10", rootfs="ubuntu-22.04.ext4", boot_args="console=ttyS0 reboot=k panic=1"
    )
    assert plan.node == "node2"


def test_firecracker_initrd_and_urls_are_refused() -> None:
    ensemble = load_ensemble_file(NUNET / "full-reference.yaml")
    vm = ensemble.allocations["vm1"]
    assert isinstance(vm.execution, spec.FirecrackerExecutionSpec)
    for field, value in (("initrd", "initrd.img"), ("kernel_image", "https://example.org/vmlinux")):
        execution = attrs.evolve(vm.execution, **{field: value})
        broken = attrs.evolve(ensemble, allocations={**ensemble.allocations, "vm1": attrs.evolve(vm, execution=execution)})
        with pytest.raises(UnsupportedField, match=f"'vm1': execution.{field}"):
            plan_workload(broken, "vm1", read_file=read)


def test_process_command_environment_and_published_port() -> None:
    ensemble = one(
        PROCESS + "    type: task\n    dns_name: web\n    failure_recovery: one_for_all\n",
        nodes="    failure_recovery: redeploy\n    ports: [{private: 8000, public: 18000, allocation: app}]",
    )
    plan = plan_workload(ensemble, "app")
    assert plan.execution.cmd == ("python3", "-m", "http.server", "8000")
    assert plan.execution.executor is ExecutorKind.PROCESS
    assert plan.execution.ports == (PortMapping(8000, 18000),)
    assert plan.execution.resources == Resources(cpu=0.5, ram=64 * 2**20)
    assert plan.dns_name == "web"
    assert plan.restart.recovery is Recovery.RESTART
    assert plan.strategy is SupervisorStrategy.ALL_FOR_ONE
    assert plan.node_recovery is Recovery.REDEPLOY


def test_process_ssh_keys_go_under_the_working_directory() -> None:
    ensemble = one(PROCESS + "    keys: [k1, k2]\n", top="keys: {k1: a.pub, k2: b.pub}")
    plan = plan_workload(ensemble, "app", read_file={"a.pub": b"ssh-rsa A\n", "b.pub": b"ssh-rsa B"}.__getitem__)
    assert plan.execution.files == (FileDelivery(".ssh/authorized_keys", b"ssh-rsa A\nssh-rsa B\n", 0o600),)


def test_key_with_dest_is_delivered_there_and_gpg_without_dest_is_refused() -> None:
    gpg = spec.KeyFile(type=spec.KeyType.GPG, file="k.asc", dest="keys/k.asc")
    plan = plan_workload(one(PROCESS, keys=(gpg,)), "app", read_file={"k.asc": b"GPG"}.__getitem__)
    assert plan.execution.files == (FileDelivery("keys/k.asc", b"GPG", 0o600),)
    with pytest.raises(UnsupportedField, match="keys.0.dest"):
        plan_workload(one(PROCESS, keys=(attrs.evolve(gpg, dest=None),)), "app", read_file={"k.asc": b"G"}.__getitem__)


def test_unreadable_script_or_key_is_a_missing_source() -> None:
    with pytest.raises(MissingSource, match=r"provision.0: cannot read 'setup.sh'"):
        plan_workload(one(PROCESS + "    provision: [setup]\n", top="scripts: {setup: setup.sh}"), "app")
    with pytest.raises(MissingSource, match="keys.0: cannot read 'a.pub'"):
        plan_workload(one(PROCESS + "    keys: [k1]\n", top="keys: {k1: a.pub}"), "app")


def test_inline_script_needs_no_reader() -> None:
    ensemble = one(PROCESS + "    provision: [setup]\n", top='scripts: {setup: "echo one\\necho two\\n"}')
    assert plan_workload(ensemble, "app").execution.provision == (
        ProvisionScript("setup", "echo one\necho two\n"),
    )


@pytest.mark.parametrize(
    ("healthcheck", "probe"),
    [
        (
            "{type: command, exec: [cat, state], response: {value: ok}}",
            CommandProbe(("cat", "state"), ExpectedResponse("ok", ResponseMatch.STRING)),
        ),
        (
            "{type: command, exec: [cat, state], response: {value: 'o+k', type: regex}}",
            CommandProbe(("cat", "state"), ExpectedResponse("o+k", ResponseMatch.REGEX)),
        ),
        ("{type: http, endpoint: /health}", HttpProbe("http://127.0.0.1:18000/health")),
        (
            "{type: http, endpoint: 'http://localhost:8000/h?x=1', response: {status: 204, value: up, type: contains}}",
            HttpProbe("http://127.0.0.1:18000/h?x=1", status=204, response=ExpectedResponse("up")),
        ),
        ("{type: http, endpoint: 'http://10.0.0.2:9000/'}", HttpProbe("http://10.0.0.2:9000/")),
        ("{type: tcp, endpoint: '8000'}", TcpProbe("127.0.0.1:18000")),
        ("{type: tcp, endpoint: 'localhost:9000'}", TcpProbe("127.0.0.1:9000")),
    ],
)
def test_health_probes_reach_the_published_port(healthcheck: str, probe: object) -> None:
    ensemble = one(
        PROCESS + f"    healthcheck: {healthcheck}\n",
        nodes="    ports: [{private: 8000, public: 18000, allocation: app}]",
    )
    health = plan_workload(ensemble, "app").health
    assert health is not None and health.probe == probe


def test_health_timing_is_carried() -> None:
    ensemble = one(PROCESS + "    healthcheck: {type: tcp, endpoint: '8000', interval: 2s, timeout: 500ms, retries: 7}\n")
    assert plan_workload(ensemble, "app").health == HealthCheck(
        TcpProbe("127.0.0.1:8000"), interval=2.0, timeout=0.5, retries=7
    )


def test_health_script_runs_through_the_shell() -> None:
    ensemble = one(
        PROCESS + "    healthcheck: {type: command, script: probe, response: {value: fine}}\n",
        top='scripts: {probe: "test -f ready\\necho fine\\n"}',
    )
    health = plan_workload(ensemble, "app").health
    assert health is not None
    assert health.probe == CommandProbe(
        ("/bin/sh", "-c", "test -f ready\necho fine\n"), ExpectedResponse("fine", ResponseMatch.STRING)
    )


@pytest.mark.parametrize(
    ("healthcheck", "ports", "message"),
    [
        ("{type: http, endpoint: 'https://localhost:8443/'}", "[]", "only http:// URLs"),
        ("{type: http, endpoint: /health}", "[]", "exactly one published port"),
        ("{type: tcp, endpoint: '8000'}", "[{private: 8000, allocation: app}]", "any free port"),
    ],
)
def test_unprobeable_endpoints_are_refused(healthcheck: str, ports: str, message: str) -> None:
    ensemble = one(PROCESS + f"    healthcheck: {healthcheck}\n", nodes=f"    ports: {ports}")
    with pytest.raises(UnsupportedField, match=f"healthcheck.endpoint: .*{message}"):
        plan_workload(ensemble, "app")


def test_unusable_health_values_are_invalid_workloads() -> None:
    ensemble = one(PROCESS + "    healthcheck: {type: tcp, endpoint: '8000', retries: 0}\n")
    with pytest.raises(InvalidWorkload, match="healthcheck: healthcheck.retries"):
        plan_workload(ensemble, "app")
    bad_regex = one(PROCESS + "    healthcheck: {type: command, exec: [x], response: {value: '(', type: regex}}\n")
    with pytest.raises(InvalidWorkload, match="not a regex"):
        plan_workload(bad_regex, "app")


def test_fields_no_executor_honours_are_refused() -> None:
    docker = "    executor: docker\n    execution: {image: alpine, user: nobody}\n"
    with pytest.raises(UnsupportedField, match="execution.user"):
        plan_workload(one(docker), "app")
    with pytest.raises(UnsupportedField, match="volumes"):
        plan_workload(one(PROCESS + "    volumes: ['data:/data']\n", top="volumes: {data: {type: local}}"), "app")
    mismatched = one(PROCESS, execution=spec.DockerExecutionSpec(image="alpine"))
    with pytest.raises(UnsupportedField, match="execution.type: docker execution for a process executor"):
        plan_workload(mismatched, "app")


def test_environment_that_is_not_key_value_is_an_invalid_workload() -> None:
    ensemble = one(PROCESS, execution=spec.ProcessExecutionSpec(command="x", environment=("NOEQUALS",)))
    with pytest.raises(InvalidWorkload, match="environment"):
        plan_workload(ensemble, "app")


def test_unknown_or_unplaced_allocation_is_refused() -> None:
    ensemble = one(PROCESS)
    with pytest.raises(UnknownAllocation, match="'nope': allocations"):
        plan_workload(ensemble, "nope")
    with pytest.raises(UnknownAllocation, match="no node holds"):
        plan_workload(attrs.evolve(ensemble, nodes={}), "app")
