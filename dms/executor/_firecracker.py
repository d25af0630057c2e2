"""The firecracker executor: one microVM per allocation, driven through its API socket.

The VMM runs as a process execution (own process group, rotated logs: the guest
console is its stdout), so stop, logs and "no orphan" come from the process executor.
Limits are the microVM's: vcpus = ceil(cpu cores), memory = ram in MiB (default 128).
`start` refuses early, naming what is missing, when the binary or /dev/kvm is absent.
Files and provision scripts are not delivered into a guest (that needs rootfs
editing): such specs are refused with InvalidSpec rather than silently ignored.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
from pathlib import Path
from types import TracebackType
from typing import Self

import attrs
import trio

from dms.executor._errors import (
    ExecUnsupported,
    FirecrackerApiError,
    FirecrackerUnavailable,
    InvalidSpec,
)
from dms.executor._firecracker_api import FirecrackerApi
from dms.executor._process import ProcessExecution, ProcessExecutor
from dms.executor._spec import ExecutionSpec
from dms.executor._status import (
    ExecResult,
    ExecutionStatus,
    ExitStatus,
    LimitEnforcement,
    Logs,
    ResourceStats,
)
from dms.workload import ExecutorKind

MiB = 1 << 20
_SOCKET_WAIT = 5.0


def missing_requirements(binary: str, kvm: str) -> list[str]:
    """What keeps firecracker from running here ([] when it can)."""
    missing = []
    if shutil.which(binary) is None:
        missing.append(f"firecracker binary {binary!r} not found (see spec/executors.md)")
    if not os.path.exists(kvm):
        missing.append(f"{kvm} missing (KVM not available)")
    elif not os.access(kvm, os.R_OK | os.W_OK):
        missing.append(f"{kvm} not readable and writable by this user")
    return missing


class FirecrackerExecution:
    def __init__(self, spec: ExecutionSpec, vmm: ProcessExecution, api: FirecrackerApi) -> None:
        self.spec = spec
        self.vmm = vmm
        self.api = api

    @property
    def name(self) -> str:
        return self.spec.name

    async def wait(self) -> ExitStatus:
        return await self.vmm.wait()

    async def stop(self, grace: float = 10.0) -> ExitStatus:
        """Ask the guest to shut down (Ctrl-Alt-Del), then kill the VMM after `grace`."""
        if self.vmm.status().exit is None:
            self.vmm.note_stop_requested()  # a guest obeying Ctrl-Alt-Del was still stopped
            # a VMM already gone or not answering is killed below all the same
            with contextlib.suppress(OSError, FirecrackerApiError, trio.TooSlowError):
                await self.api.send_ctrl_alt_del()
            with trio.move_on_after(grace):
                return await self.vmm.wait()
        return await self.vmm.stop(grace=0)

    def status(self) -> ExecutionStatus:
        return attrs.evolve(self.vmm.status(), enforcement=LimitEnforcement.FIRECRACKER)

    async def logs(self, tail: int = 100) -> Logs:
        return await self.vmm.logs(tail)

    async def stats(self) -> ResourceStats:
        return await self.vmm.stats()

    async def exec(self, argv: tuple[str, ...], timeout: float) -> ExecResult:
        raise ExecUnsupported(
            f"allocation {self.name!r}: commands cannot be run inside a firecracker guest; "
            "use an http or tcp health check"
        )

    async def remove(self) -> None:
        await self.stop(grace=0)
        await self.vmm.remove()


class FirecrackerExecutor:
    def __init__(self, root: Path, *, binary: str = "firecracker", kvm: str = "/dev/kvm") -> None:
        self.binary = binary
        self.kvm = kvm
        self._processes = ProcessExecutor(root, cgroups=False)

    async def __aenter__(self) -> Self:
        await self._processes.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._processes.__aexit__(exc_type, exc, tb)

    async def start(self, spec: ExecutionSpec) -> FirecrackerExecution:
        if spec.executor is not ExecutorKind.FIRECRACKER:
            raise InvalidSpec(
                f"executor: {spec.executor.value!r} given to the firecracker executor"
            )
        if spec.firecracker is None:
            raise InvalidSpec(f"firecracker: allocation {spec.name!r} names no kernel and rootfs")
        if spec.files or spec.provision:
            raise InvalidSpec(
                f"files/provision: allocation {spec.name!r}: delivery into a firecracker guest "
                "is not supported; bake them into the rootfs"
            )
        missing = missing_requirements(self.binary, self.kvm)
        if missing:
            raise FirecrackerUnavailable("; ".join(missing))
        boot = spec.firecracker
        for field in ("kernel", "rootfs"):
            if not os.path.exists(getattr(boot, field)):
                raise InvalidSpec(f"firecracker.{field}: {getattr(boot, field)!r} does not exist")
        socket = self._processes.root / f"{spec.name}.api.sock"
        socket.unlink(missing_ok=True)
        vmm_spec = attrs.evolve(
            spec,
            executor=ExecutorKind.PROCESS,
            cmd=(self.binary, "--api-sock", str(socket)),
            entrypoint=None,
            resources=attrs.evolve(spec.resources, ram=0),  # the guest's, not the VMM's rlimit
        )
        vmm = await self._processes.start(vmm_spec)
        api = FirecrackerApi(str(socket))
        execution = FirecrackerExecution(spec, vmm, api)
        try:
            await _wait_for_socket(socket, vmm)
            await configure_and_boot(api, spec)
        except BaseException:
            with trio.CancelScope(shield=True):
                await vmm.remove()
            raise
        return execution


async def configure_and_boot(api: FirecrackerApi, spec: ExecutionSpec) -> None:
    """The API calls that turn an empty VMM into a running guest, in firecracker's order."""
    assert spec.firecracker is not None
    boot = spec.firecracker
    vcpus = max(1, math.ceil(spec.resources.cpu))
    mem_mib = max(128, spec.resources.ram // MiB) if spec.resources.ram else 128
    await api.put_machine_config(vcpus, mem_mib)
    await api.put_boot_source(boot.kernel, boot.boot_args)
    await api.put_root_drive(boot.rootfs)
    if boot.tap_device:
        await api.put_network_interface("eth0", boot.tap_device, boot.guest_mac)
    await api.start_instance()


async def _wait_for_socket(socket: Path, vmm: ProcessExecution) -> None:
    with trio.move_on_after(_SOCKET_WAIT):
        while not socket.exists():
            if vmm.status().exit is not None:
                logs = await vmm.logs(20)
                raise FirecrackerUnavailable(
                    f"firecracker exited before its API came up: {logs.text}"
                )
            await trio.sleep(0.01)
        return
    raise FirecrackerUnavailable(
        f"firecracker API socket {socket} did not appear in {_SOCKET_WAIT}s"
    )
