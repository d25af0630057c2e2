"""One ensemble allocation (with its node) translated into what a provider runs.

The translation is pure: files the ensemble names by path (scripts without a newline,
key files) are read through the `read_file` the caller passes, so the provider decides
where they come from and tests pass a dict. Every field of the allocation either lands
in the plan or is refused with a `PlanError` subclass naming it:

- `executor`, `execution` -> `ExecutionSpec` (docker image/entrypoint/cmd/environment/
  working_directory; process command + args; firecracker kernel/rootfs/kernel_args).
  Refused: an execution `type` other than the executor, docker `user`, firecracker
  `initrd` and kernel/rootfs URLs (the executors take none of these).
- `resources` -> `ExecutionSpec.resources`; `type` -> `ExecutionSpec.kind`.
- `provision` -> `ProvisionScript`s; `keys` -> `FileDelivery`s: ssh keys are gathered
  into one `authorized_keys` (`.ssh/authorized_keys` under the process executor's
  working directory, `/root/.ssh/authorized_keys` elsewhere) unless a key file names its
  `dest`; gpg keys need a `dest`.
- `healthcheck` -> supervision `HealthCheck`. Endpoints are probed from the provider: a
  port the node publishes for this allocation is probed at its public port on
  127.0.0.1 (published as 0, it is unknown before start: refused); `/path` endpoints
  need exactly one published port; https is refused. An empty response value expects
  nothing of the output.
- `failure_recovery` -> `RestartPolicy.recovery` and `WorkloadPlan.strategy`.
- `depends_on`, `dns_name` -> the plan; `volumes` -> refused (no executor mounts them).
- the node's `ports` for this allocation -> `ExecutionSpec.ports`; its
  `failure_recovery` -> `WorkloadPlan.node_recovery`. Its `location`, `peer` and
  `redundancy` were for placement and do not change what runs.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

import attrs

from dms.ensemble import _spec as spec
from dms.ensemble._derive import allocation_resources
from dms.executor import (
    ExecutionSpec,
    FileDelivery,
    FirecrackerBoot,
    InvalidSpec,
    PortMapping,
    ProvisionScript,
)
from dms.supervise import (
    CommandProbe,
    ExpectedResponse,
    HealthCheck,
    HttpProbe,
    InvalidHealthCheck,
    RestartPolicy,
    TcpProbe,
)
from dms.workload import (
    ExecutorKind,
    HealthCheckKind,
    Recovery,
    SupervisorStrategy,
)
from dms.workload.plan._errors import (
    InvalidWorkload,
    MissingSource,
    UnknownAllocation,
    UnsupportedField,
)

ReadFile = Callable[[str], bytes]
PROBE_HOST = "127.0.0.1"
SSH_AUTHORIZED_KEYS = {
    ExecutorKind.PROCESS: ".ssh/authorized_keys",
    ExecutorKind.DOCKER: "/root/.ssh/authorized_keys",
    ExecutorKind.FIRECRACKER: "/root/.ssh/authorized_keys",
}


@attrs.frozen
class WorkloadPlan:
    """What a provider runs for one allocation, and how it supervises it."""

    allocation: str
    node: str
    execution: ExecutionSpec
    health: HealthCheck | None
    restart: RestartPolicy
    strategy: SupervisorStrategy | None  # how a restart spreads on the node; None: stays down
    depends_on: tuple[str, ...]
    dns_name: str  # under `.internal`
    node_recovery: Recovery  # what the orchestrator does when the provider fails


def _no_files(path: str) -> bytes:
    raise FileNotFoundError(path)


def plan_workload(
    ensemble: spec.Ensemble, allocation_name: str, *, read_file: ReadFile = _no_files
) -> WorkloadPlan:
    """Translate `allocation_name` of a (validated) ensemble. `read_file` supplies the
    files named by path; by default none can be read. Raises a `PlanError`."""
    allocation = ensemble.allocations.get(allocation_name)
    if allocation is None:
        raise UnknownAllocation(allocation_name, "allocations", "no such allocation")
    node_name, node = _node_of(ensemble, allocation_name)
    translate = _Translation(ensemble, allocation_name, allocation, node, read_file)
    return WorkloadPlan(
        allocation=allocation_name,
        node=node_name,
        execution=translate.execution(),
        health=translate.health(),
        restart=RestartPolicy(recovery=allocation.failure_recovery.recovery),
        strategy=allocation.failure_recovery.strategy,
        depends_on=allocation.depends_on,
        dns_name=allocation.dns_name or allocation_name,
        node_recovery=node.failure_recovery,
    )


def _node_of(ensemble: spec.Ensemble, allocation: str) -> tuple[str, spec.EnsembleNode]:
    for name, node in ensemble.nodes.items():
        if allocation in node.allocations:
            return name, node
    raise UnknownAllocation(allocation, "nodes", "no node holds this allocation")


@attrs.define
class _Translation:
    ensemble: spec.Ensemble
    name: str
    allocation: spec.Allocation
    node: spec.EnsembleNode
    read_file: ReadFile

    def refuse(self, field: str, reason: str) -> UnsupportedField:
        return UnsupportedField(self.name, field, reason)

    def execution(self) -> ExecutionSpec:
        allocation = self.allocation
        if allocation.volumes:
            raise self.refuse("volumes", "no executor mounts volumes")
        if allocation.execution.type is not allocation.executor:
            raise self.refuse(
                "execution.type",
                f"{allocation.execution.type.value} execution for a "
                f"{allocation.executor.value} executor",
            )
        try:
            return attrs.evolve(
                self.command(),
                resources=allocation_resources(self.ensemble, self.name),
                ports=tuple(
                    PortMapping(private=port.private, public=port.public)
                    for port in self.node.ports
                    if port.allocation == self.name
                ),
                files=self.key_files(),
                provision=tuple(
                    ProvisionScript(name=script, script=self.script(("provision", index), script))
                    for index, script in enumerate(allocation.provision)
                ),
                kind=allocation.type,
            )
        except InvalidSpec as error:
            raise InvalidWorkload(self.name, "execution", str(error)) from None
        except KeyError as error:
            raise MissingSource(self.name, "resources", f"no resources template {error}") from None

    def command(self) -> ExecutionSpec:
        """The spec with what to run filled in, from the executor-specific execution."""
        match self.allocation.execution:
            case spec.DockerExecutionSpec() as docker:
                if docker.user is not None:
                    raise self.refuse("execution.user", "the docker executor runs as the image's user")
                return ExecutionSpec(
                    name=self.name,
                    executor=ExecutorKind.DOCKER,
                    image=docker.image,
                    entrypoint=docker.entrypoint or None,
                    cmd=docker.cmd,
                    environment=docker.environment,
                    working_directory=docker.working_directory,
                )
            case spec.ProcessExecutionSpec() as process:
                return ExecutionSpec(
                    name=self.name,
                    executor=ExecutorKind.PROCESS,
                    cmd=(process.command, *process.args),
                    environment=process.environment,
                    working_directory=process.working_directory,
                )
            case spec.FirecrackerExecutionSpec() as vm:
                if vm.initrd is not None:
                    raise self.refuse("execution.initrd", "the firecracker executor boots no initrd")
                for field in ("kernel_image", "root_file_system"):
                    if "://" in getattr(vm, field):
                        raise self.refuse(f"execution.{field}", "must be a path on the provider")
                boot = FirecrackerBoot(kernel=vm.kernel_image, rootfs=vm.root_file_system)
                if vm.kernel_args is not None:
                    boot = attrs.evolve(boot, boot_args=vm.kernel_args)
                return ExecutionSpec(
                    name=self.name, executor=ExecutorKind.FIRECRACKER, firecracker=boot
                )

    def script(self, at: tuple[str | int, ...], name: str) -> str:
        field = ".".join(str(part) for part in at)
        text = self.ensemble.scripts.get(name)
        if text is None:
            raise MissingSource(self.name, field, f"no script named {name!r}")
        return text if "\n" in text else self.read(field, text).decode("utf-8", errors="replace")

    def read(self, field: str, path: str) -> bytes:
        try:
            return self.read_file(path)
        except OSError as error:
            raise MissingSource(self.name, field, f"cannot read {path!r}: {error}") from None

    def key_files(self) -> tuple[FileDelivery, ...]:
        authorized: list[bytes] = []
        files: list[FileDelivery] = []
        for index, key in enumerate(self.allocation.keys):
            field = f"keys.{index}"
            if isinstance(key, str):
                path = self.ensemble.keys.get(key)
                if path is None:
                    raise MissingSource(self.name, field, f"no key named {key!r}")
                key = spec.KeyFile(type=spec.KeyType.SSH, file=path)
            content = self.read(field, key.file)
            if key.dest is not None:
                files.append(FileDelivery(path=key.dest, content=content, mode=0o600))
            elif key.type is spec.KeyType.SSH:
                authorized.append(content.rstrip(b"\n") + b"\n")
            else:
                raise self.refuse(f"{field}.dest", "a gpg key needs a destination")
        if authorized:
            path = SSH_AUTHORIZED_KEYS[self.allocation.executor]
            files.append(FileDelivery(path=path, content=b"".join(authorized), mode=0o600))
        return tuple(files)

    def health(self) -> HealthCheck | None:
        check = self.allocation.healthcheck
        if check is None:
            return None
        try:
            defaults = HealthCheck(self.probe(check))
            return attrs.evolve(
                defaults,
                interval=defaults.interval if check.interval is None else float(check.interval),
                timeout=defaults.timeout if check.timeout is None else float(check.timeout),
                retries=defaults.retries if check.retries is None else check.retries,
            )
        except InvalidHealthCheck as error:
            raise InvalidWorkload(self.name, "healthcheck", str(error)) from None

    def probe(self, check: spec.HealthCheckSpec) -> CommandProbe | HttpProbe | TcpProbe:
        response = None
        if check.response is not None and check.response.value:
            response = ExpectedResponse(check.response.value, check.response.type)
        match check.type:
            case HealthCheckKind.COMMAND:
                if check.script is not None:
                    return CommandProbe.script(self.script(("healthcheck", "script"), check.script), response)
                return CommandProbe(check.exec, response)
            case HealthCheckKind.HTTP:
                status = check.response.status if check.response is not None else None
                url = self.http_endpoint(check.endpoint or "")
                return HttpProbe(url, status=status or 200, response=response)
            case HealthCheckKind.TCP:
                if response is not None:
                    raise self.refuse("healthcheck.response", "a tcp check reads no response")
                host, _, port = (check.endpoint or "").rpartition(":")
                if not port.isdigit():
                    raise self.refuse("healthcheck.endpoint", f"{check.endpoint!r} names no port")
                return TcpProbe(f"{self.probe_host(host)}:{self.probe_port(int(port))}")

    def http_endpoint(self, endpoint: str) -> str:
        if endpoint.startswith("/"):
            published = [port for port in self.node.ports if port.allocation == self.name]
            if len(published) != 1:
                raise self.refuse(
                    "healthcheck.endpoint",
                    f"a path needs exactly one published port, the node publishes {len(published)}",
                )
            return f"http://{PROBE_HOST}:{self.probe_port(published[0].private)}{endpoint}"
        parts = urlsplit(endpoint)
        if parts.scheme != "http" or parts.hostname is None:
            raise self.refuse("healthcheck.endpoint", f"{endpoint!r}: only http:// URLs are probed")
        port = self.probe_port(parts.port or 80)
        netloc = f"{self.probe_host(parts.hostname)}:{port}"
        return urlunsplit(("http", netloc, parts.path or "/", parts.query, ""))

    def probe_host(self, host: str) -> str:
        return PROBE_HOST if host in ("", "localhost", "127.0.0.1", "0.0.0.0") else host

    def probe_port(self, private: int) -> int:
        """Where the provider reaches the workload's `private` port."""
        for port in self.node.ports:
            if port.allocation == self.name and port.private == private:
                if port.public == 0:
                    raise self.refuse(
                        "healthcheck.endpoint",
                        f"port {private} is published on any free port, unknown before start",
                    )
                return port.public
        return private


