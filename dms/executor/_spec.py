"""What an executor is asked to run: one allocation's workload, as plain frozen data.

Field names follow the NuNet ensemble v1 allocation (`executor`, `execution.image`,
`execution.cmd`, `entrypoint`, `environment` as `KEY=VALUE`, `working_directory`,
`resources`, `provision`, `keys`); `dms.workload.plan` translates an ensemble
allocation into an `ExecutionSpec`. Validation here is structural only; an
executor raises `InvalidSpec` naming the field it cannot honour.
"""

from __future__ import annotations

import attrs

from dms.ensemble._requirements import Resources
from dms.executor._errors import InvalidSpec
from dms.workload import ExecutorKind, WorkloadKind


def _parse_environment(entries: tuple[str, ...]) -> tuple[str, ...]:
    for index, entry in enumerate(entries):
        if "=" not in entry or entry.startswith("="):
            raise InvalidSpec(f"environment[{index}]: {entry!r} is not KEY=VALUE")
    return entries


@attrs.frozen
class PortMapping:
    """Container/guest port `private` published on 127.0.0.1:`public` (0 = any free port)."""

    private: int
    public: int = 0
    protocol: str = "tcp"

    def __attrs_post_init__(self) -> None:
        for field in ("private", "public"):
            value = getattr(self, field)
            if not 0 <= value <= 65535 or (field == "private" and value == 0):
                raise InvalidSpec(f"ports.{field}: {value} is out of range")
        if self.protocol not in ("tcp", "udp"):
            raise InvalidSpec(f"ports.protocol: {self.protocol!r} is not tcp or udp")


@attrs.frozen
class FileDelivery:
    """A file put into the workload before it starts (ensemble `keys`, config files).

    `path` is absolute inside a container; for the process executor it must be relative
    (resolved under the working directory)."""

    path: str
    content: bytes
    mode: int = 0o644


@attrs.frozen
class ProvisionScript:
    """A shell script run inside the workload's filesystem before it starts. Scripts run
    in order; a non-zero exit aborts the allocation with the script's output."""

    name: str
    script: str
    interpreter: tuple[str, ...] = ("/bin/sh", "-e")


@attrs.frozen
class FirecrackerBoot:
    """What a microVM boots: a kernel image, a root drive and kernel arguments on the host."""

    kernel: str
    rootfs: str
    boot_args: str = "console=ttyS0 reboot=k panic=1 pci=off"
    tap_device: str | None = None
    guest_mac: str | None = None


@attrs.frozen
class ExecutionSpec:
    """One allocation's workload. `name` is the allocation name (unique on the node)."""

    name: str
    executor: ExecutorKind
    cmd: tuple[str, ...] = ()
    image: str | None = None
    entrypoint: tuple[str, ...] | None = None
    environment: tuple[str, ...] = attrs.field(default=(), converter=_parse_environment)
    working_directory: str | None = None
    resources: Resources = Resources()
    ports: tuple[PortMapping, ...] = ()
    files: tuple[FileDelivery, ...] = ()
    provision: tuple[ProvisionScript, ...] = ()
    kind: WorkloadKind = WorkloadKind.SERVICE
    cpu_time_limit: float | None = None  # seconds of CPU a task may burn (RLIMIT_CPU)
    firecracker: FirecrackerBoot | None = None
    network_namespace: str | None = None
    """The named network namespace (`ip netns`) the workload runs in, with its
    private ensemble address; None: the host's. The process executor runs the workload
    in it; the docker executor has its container's own namespace set up under this
    name (`ContainerNetwork.attach`) before the workload starts; firecracker ignores it."""

    def __attrs_post_init__(self) -> None:
        if not self.name or "/" in self.name:
            raise InvalidSpec(f"name: {self.name!r} must be non-empty and contain no '/'")

    @property
    def env(self) -> dict[str, str]:
        """`environment` as a mapping (the later of two equal keys wins)."""
        return dict(entry.split("=", 1) for entry in self.environment)

    @property
    def argv(self) -> tuple[str, ...]:
        """The full command line: entrypoint followed by cmd."""
        return (self.entrypoint or ()) + self.cmd
