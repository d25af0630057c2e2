"""The ensemble file, as typed data: NuNet ensemble v1 names, dms units.

These frozen attrs classes are what `load_ensemble` returns. Sizes are bytes, cpu is
cores, durations seconds, rtt milliseconds, bandwidth bits per second (see `units`).
Each field's metadata carries the documentation (`doc`) that `spec/ensemble.md` and the
JSON Schema repeat, and the older NuNet spellings it also accepts (`aliases`).

The classes are shapes only; whether names resolve, ports collide or dependencies
cycle is `validate`'s job, so a model can be built by hand in tests.
"""

from __future__ import annotations

import enum
from typing import Any, NewType

import attrs

from dms.workload import (
    AllocationRecovery,
    ExecutorKind,
    HealthCheckKind,
    Recovery,
    ResponseMatch,
    SupervisorStrategy,
    WorkloadKind,
)

ByteSize = NewType("ByteSize", int)
Cores = NewType("Cores", float)
Seconds = NewType("Seconds", float)
Milliseconds = NewType("Milliseconds", float)
BitsPerSecond = NewType("BitsPerSecond", int)


def field(doc: str, *, default: Any = attrs.NOTHING, aliases: tuple[str, ...] = ()) -> Any:
    """An attrs field with its reference documentation and accepted older spellings."""
    return attrs.field(default=default, metadata={"doc": doc, "aliases": aliases})


class EscalationStrategy(enum.Enum):
    REDEPLOY = "redeploy"
    TEARDOWN = "teardown"


class KeyType(enum.Enum):
    SSH = "ssh"
    GPG = "gpg"


@attrs.frozen
class Cpu:
    cores: Cores = field("cores, 0.001 to 1000000; `500m` is half a core")
    architecture: str | None = field("required architecture, e.g. x86_64, arm64", default=None)
    clock_speed: float | None = field("minimum clock speed in Hz", default=None, aliases=("clockspeed",))
    model: str | None = field("cpu model (informational)", default=None)
    vendor: str | None = field("cpu vendor (informational)", default=None)
    threads: int | None = field("hardware threads (informational)", default=None)
    cache_size: int | None = field("cache size in bytes (informational)", default=None, aliases=("cachesize",))


@attrs.frozen
class Ram:
    size: ByteSize = field("memory, at least 1Mi; bare numbers are GiB")
    clock_speed: int | None = field("clock speed in Hz (informational)", default=None, aliases=("clockspeed",))
    type: str | None = field("memory type, e.g. DDR5 (informational)", default=None)


@attrs.frozen
class Disk:
    size: ByteSize = field("disk space, at least 1Mi; bare numbers are GiB")
    type: str | None = field("disk type, e.g. ssd (informational)", default=None)
    model: str | None = field("disk model (informational)", default=None)
    vendor: str | None = field("disk vendor (informational)", default=None)
    interface: str | None = field("disk interface, e.g. NVMe (informational)", default=None)
    read_speed: int | None = field("read speed in bytes/s (informational)", default=None, aliases=("readspeed",))
    write_speed: int | None = field("write speed in bytes/s (informational)", default=None, aliases=("writespeed",))


@attrs.frozen
class GpuSpec:
    vendor: str | None = field("GPU vendor, e.g. nvidia", default=None)
    model: str | None = field("GPU model, e.g. A100", default=None)
    memory: ByteSize | None = field("minimum GPU memory, at least 1Mi; bare numbers are GiB", default=None, aliases=("vram",))


@attrs.frozen
class ResourceSpec:
    cpu: Cpu = field("cpu: a number of cores, `500m`, or a mapping with `cores`")
    ram: Ram = field("memory: a size (`512Mi`) or a mapping with `size`")
    disk: Disk | None = field("disk: a size (`10G`) or a mapping with `size`", default=None)
    gpus: tuple[GpuSpec, ...] = field("GPUs, one entry per device", default=())
    name: str | None = field("the template's own name (NuNet writes it; must match the key)", default=None)


@attrs.frozen
class DockerExecutionSpec:
    image: str = field("container image, e.g. nginx:1.27")
    type: ExecutorKind = field("executor this execution is for (defaults to the allocation's)", default=ExecutorKind.DOCKER)
    entrypoint: tuple[str, ...] = field("overrides the image entrypoint", default=())
    cmd: tuple[str, ...] = field("command (arguments to the entrypoint)", default=(), aliases=("args",))
    environment: tuple[str, ...] = field("`KEY=VALUE` entries", default=())
    working_directory: str | None = field("working directory in the container", default=None)
    user: str | None = field("user to run as", default=None)


@attrs.frozen
class FirecrackerExecutionSpec:
    kernel_image: str = field("kernel image (vmlinux) path or URL")
    root_file_system: str = field("root file system image path or URL")
    type: ExecutorKind = field("executor this execution is for", default=ExecutorKind.FIRECRACKER)
    kernel_args: str | None = field("kernel command line", default=None)
    initrd: str | None = field("initial ramdisk path or URL", default=None)


@attrs.frozen
class ProcessExecutionSpec:
    command: str = field("program to run")
    type: ExecutorKind = field("executor this execution is for", default=ExecutorKind.PROCESS)
    args: tuple[str, ...] = field("program arguments", default=())
    environment: tuple[str, ...] = field("`KEY=VALUE` entries", default=())
    working_directory: str | None = field("working directory", default=None)


AllocationExecution = DockerExecutionSpec | FirecrackerExecutionSpec | ProcessExecutionSpec

EXECUTION_CLASSES: dict[ExecutorKind, type[AllocationExecution]] = {
    ExecutorKind.DOCKER: DockerExecutionSpec,
    ExecutorKind.FIRECRACKER: FirecrackerExecutionSpec,
    ExecutorKind.PROCESS: ProcessExecutionSpec,
}


@attrs.frozen
class HealthResponse:
    value: str = field("expected output (command) or body (http)", default="")
    type: ResponseMatch = field("string: output equals `value`, surrounding whitespace stripped; contains; regex: re.search, at most 256 characters", default=ResponseMatch.STRING)
    status: int | None = field("expected HTTP status code (http only)", default=None)


@attrs.frozen
class HealthCheckSpec:
    type: HealthCheckKind = field("command, http or tcp")
    exec: tuple[str, ...] = field("command to run inside the workload (command)", default=())
    script: str | None = field("name of a script in `scripts` run by /bin/sh instead of exec (command)", default=None)
    endpoint: str | None = field("URL (http) or host:port / port (tcp)", default=None)
    response: HealthResponse | None = field("expected response (command, http)", default=None)
    interval: Seconds | None = field("time between checks; bare numbers are seconds (default 10s)", default=None)
    timeout: Seconds | None = field("time one check may take (default 5s)", default=None)
    retries: int | None = field("consecutive failures before the allocation is unhealthy (default 3)", default=None)


@attrs.frozen
class KeyFile:
    type: KeyType = field("ssh or gpg")
    file: str = field("key file path")
    dest: str | None = field("where to put it in the workload (required for gpg)", default=None)


@attrs.frozen
class Volume:
    name: str | None = field("volume name; an allocation volume named like a top-level one inherits it", default=None)
    type: str | None = field("volume type, e.g. local, glusterfs", default=None)
    mountpoint: str | None = field("mount path inside the workload", default=None, aliases=("mount_destination",))
    read_only: bool = field("mount read-only", default=False)
    size: ByteSize | None = field("volume size; bare numbers are GiB", default=None)
    servers: tuple[str, ...] = field("storage servers (glusterfs)", default=())
    client_private_key: str | None = field("client TLS key path (glusterfs)", default=None)
    client_pem: str | None = field("client TLS certificate path (glusterfs)", default=None)
    client_ca: str | None = field("CA certificate path (glusterfs)", default=None)


@attrs.frozen
class Allocation:
    executor: ExecutorKind = field("docker, firecracker or process")
    execution: AllocationExecution = field("what to run; its fields depend on the executor")
    resources: ResourceSpec | str = field("resources, inline or the name of a `resources` template")
    type: WorkloadKind = field("service (long running) or task (runs to completion)", default=WorkloadKind.SERVICE)
    dns_name: str | None = field("name under `.internal` (defaults to the allocation name)", default=None, aliases=("dnsname",))
    keys: tuple[str | KeyFile, ...] = field("names from `keys`, or inline key files", default=())
    provision: tuple[str, ...] = field("names from `scripts`, run in order before start", default=())
    healthcheck: HealthCheckSpec | None = field("how to tell the allocation is healthy", default=None, aliases=("health_check",))
    volumes: tuple[Volume, ...] = field("volumes to mount (`name:mountpoint` or a mapping)", default=(), aliases=("volume",))
    failure_recovery: AllocationRecovery = field("what to do when it fails", default=AllocationRecovery.STAY_DOWN)
    depends_on: tuple[str, ...] = field("allocations (on any node) that must be ready before this one starts", default=())


@attrs.frozen
class Port:
    private: int = field("port inside the allocation, 1-65535")
    allocation: str = field("allocation on this node that listens on `private`")
    public: int = field("port on the provider, 1025-65535, or 0 for any free port", default=0)


@attrs.frozen
class Place:
    """A location entry; only the fields given are compared."""

    continent: str | None = field("continent name or code (Europe, EU, ...)", default=None, aliases=("region",))
    country: str | None = field("ISO 3166 two-letter country code", default=None)
    city: str | None = field("city name (needs country)", default=None)
    asn: int | None = field("autonomous system number", default=None)
    isp: str | None = field("internet service provider", default=None)


@attrs.frozen
class LocationSpec:
    accept: tuple[Place, ...] = field("the provider must be in one of these (when given)", default=())
    reject: tuple[Place, ...] = field("the provider must be in none of these", default=())


@attrs.frozen
class EnsembleNode:
    allocations: tuple[str, ...] = field("allocations that share one provider")
    ports: tuple[Port, ...] = field("ports published on the provider", default=())
    location: LocationSpec | None = field("where the provider may be", default=None)
    peer: str | None = field("pin the node to this provider (its peer id / did:key)", default=None)
    redundancy: int = field("standby copies on other providers", default=0)
    failure_recovery: Recovery = field("what to do when the provider fails", default=Recovery.STAY_DOWN)


@attrs.frozen
class EdgeConstraint:
    edges: tuple[str, str] = field("the two nodes, [source, target]")
    rtt: Milliseconds | None = field("maximum round-trip time; bare numbers are ms; 0 = any", default=None)
    bw: BitsPerSecond | None = field("minimum bandwidth; bare numbers are bits/s; 0 = any", default=None)
    symmetric: bool = field("the constraint holds in both directions", default=False, aliases=("symetric",))


@attrs.frozen
class Supervisor:
    strategy: SupervisorStrategy = field("OneForOne, AllForOne or RestForOne", default=SupervisorStrategy.ONE_FOR_ONE)
    allocations: tuple[str, ...] = field("allocations supervised at this level", default=())
    children: tuple[Supervisor, ...] = field("nested supervisors", default=())


@attrs.frozen
class Subnet:
    join: bool = field("join the deployment's private network", default=False)


@attrs.frozen
class Ensemble:
    allocations: dict[str, Allocation] = field("named allocations (workloads)")
    version: str = field("format version: V1", default="V1")
    nodes: dict[str, EnsembleNode] = field("named nodes: groups of allocations placed on one provider", default=attrs.Factory(dict))
    edge_constraints: tuple[EdgeConstraint, ...] = field("network constraints between nodes", default=(), aliases=("edges",))
    resources: dict[str, ResourceSpec] = field("named resource templates", default=attrs.Factory(dict))
    scripts: dict[str, str] = field("named scripts: a path, or inline text when it has a newline", default=attrs.Factory(dict))
    keys: dict[str, str] = field("named public keys: file paths", default=attrs.Factory(dict))
    volumes: dict[str, Volume] = field("named volumes allocations may mount", default=attrs.Factory(dict))
    supervisor: Supervisor | None = field("supervision tree over allocations", default=None)
    subnet: Subnet | None = field("private network options", default=None)
    exclude_peers: tuple[str, ...] = field("providers never to use", default=())
    escalation_strategy: EscalationStrategy | None = field("when recovery fails: redeploy or teardown", default=None)
    metadata: dict[str, Any] = field("free-form data kept with the deployment", default=attrs.Factory(dict))

    def resources_of(self, allocation: str) -> ResourceSpec:
        """The allocation's resources with a template name resolved. KeyError when the
        allocation or template does not exist (a validated ensemble has both)."""
        spec = self.allocations[allocation].resources
        return self.resources[spec] if isinstance(spec, str) else spec
