"""Per-execution control groups: memory and cpu limits the kernel enforces, and an OOM
counter that says, without guessing, that the kernel killed the workload for memory.

cgroup v2 (unified, `/sys/fs/cgroup` with the memory and cpu controllers) is preferred;
on hybrid hosts where only v1 controllers are usable (as in many VMs and CI runners)
the v1 memory and cpu hierarchies are used instead. `probe_cgroups` returns None when
neither is writable (not root, read-only mount, nested container): the process
executor then falls back to rlimits and says so in its status.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path
from typing import Protocol

import attrs

from dms.executor._status import LimitEnforcement

CPU_PERIOD_US = 100_000


@attrs.frozen
class CgroupLimits:
    memory_bytes: int | None = None
    cpu_cores: float | None = None


class Cgroup(Protocol):
    enforcement: LimitEnforcement

    @property
    def procs_files(self) -> tuple[str, ...]:
        """Files a process writes its pid into to join (done before exec)."""
        ...

    def oom_kills(self) -> int: ...

    def pids(self) -> list[int]: ...

    def remove(self) -> None:
        """Kill what is left inside and delete the group."""
        ...


class CgroupDriver(Protocol):
    enforcement: LimitEnforcement

    def create(self, name: str, limits: CgroupLimits) -> Cgroup: ...


def _write(path: Path, value: str) -> None:
    path.write_text(value)


def _read_key(path: Path, key: str) -> int:
    for line in path.read_text().splitlines():
        field, _, value = line.partition(" ")
        if field == key:
            return int(value)
    return 0


def _pids(procs: Path) -> list[int]:
    try:
        return [int(line) for line in procs.read_text().split()]
    except FileNotFoundError:
        return []


def _kill_and_rmdir(directory: Path) -> None:
    """SIGKILL what is inside, then rmdir; killed processes leave asynchronously, so
    rmdir is retried for up to a second (run this off the trio loop)."""
    for _ in range(100):
        for pid in _pids(directory / "cgroup.procs"):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        try:
            directory.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:  # EBUSY while a killed process is still exiting
            time.sleep(0.01)


@attrs.define
class CgroupV2:
    path: Path
    enforcement: LimitEnforcement = LimitEnforcement.CGROUP_V2

    @property
    def procs_files(self) -> tuple[str, ...]:
        return (str(self.path / "cgroup.procs"),)

    def oom_kills(self) -> int:
        try:
            return _read_key(self.path / "memory.events", "oom_kill")
        except FileNotFoundError:
            return 0

    def pids(self) -> list[int]:
        return _pids(self.path / "cgroup.procs")

    def remove(self) -> None:
        kill = self.path / "cgroup.kill"
        if kill.exists():
            _write(kill, "1")
        _kill_and_rmdir(self.path)


@attrs.define
class CgroupV2Driver:
    parent: Path
    enforcement: LimitEnforcement = LimitEnforcement.CGROUP_V2

    def create(self, name: str, limits: CgroupLimits) -> CgroupV2:
        path = self.parent / name
        path.mkdir()
        if limits.memory_bytes:
            _write(path / "memory.max", str(limits.memory_bytes))
            if (path / "memory.swap.max").exists():
                _write(path / "memory.swap.max", "0")
        if limits.cpu_cores:
            quota = max(1000, int(limits.cpu_cores * CPU_PERIOD_US))
            _write(path / "cpu.max", f"{quota} {CPU_PERIOD_US}")
        return CgroupV2(path)


@attrs.define
class CgroupV1:
    memory: Path
    cpu: Path
    enforcement: LimitEnforcement = LimitEnforcement.CGROUP_V1

    @property
    def procs_files(self) -> tuple[str, ...]:
        return (str(self.memory / "cgroup.procs"), str(self.cpu / "cgroup.procs"))

    def oom_kills(self) -> int:
        try:
            return _read_key(self.memory / "memory.oom_control", "oom_kill")
        except FileNotFoundError:
            return 0

    def pids(self) -> list[int]:
        return _pids(self.memory / "cgroup.procs")

    def remove(self) -> None:
        _kill_and_rmdir(self.memory)
        _kill_and_rmdir(self.cpu)


@attrs.define
class CgroupV1Driver:
    memory_parent: Path
    cpu_parent: Path
    enforcement: LimitEnforcement = LimitEnforcement.CGROUP_V1

    def create(self, name: str, limits: CgroupLimits) -> CgroupV1:
        memory, cpu = self.memory_parent / name, self.cpu_parent / name
        memory.mkdir()
        cpu.mkdir()
        if limits.memory_bytes:
            _write(memory / "memory.limit_in_bytes", str(limits.memory_bytes))
            memsw = memory / "memory.memsw.limit_in_bytes"
            if memsw.exists():  # no swapping past the limit: over it means OOM
                _write(memsw, str(limits.memory_bytes))
        if limits.cpu_cores:
            _write(cpu / "cpu.cfs_period_us", str(CPU_PERIOD_US))
            quota = max(1000, int(limits.cpu_cores * CPU_PERIOD_US))
            _write(cpu / "cpu.cfs_quota_us", str(quota))
        return CgroupV1(memory, cpu)


def _probe_v2(root: Path, group: str) -> CgroupV2Driver | None:
    controllers = root / "cgroup.controllers"
    if not controllers.exists():
        return None
    if not {"memory", "cpu"} <= set(controllers.read_text().split()):
        return None
    parent = root / group
    parent.mkdir(exist_ok=True)
    _write(root / "cgroup.subtree_control", "+memory +cpu")
    _write(parent / "cgroup.subtree_control", "+memory +cpu")
    driver = CgroupV2Driver(parent)
    driver.create(f"probe-{os.getpid()}", CgroupLimits(1 << 30, 1.0)).remove()
    return driver


def _probe_v1(root: Path, group: str) -> CgroupV1Driver | None:
    memory_root = root / "memory"
    cpu_root = next(
        (root / name for name in ("cpu", "cpu,cpuacct") if (root / name / "cpu.shares").exists()),
        None,
    )
    if not (memory_root / "memory.limit_in_bytes").exists() or cpu_root is None:
        return None
    (memory_root / group).mkdir(exist_ok=True)
    (cpu_root / group).mkdir(exist_ok=True)
    driver = CgroupV1Driver(memory_root / group, cpu_root / group)
    driver.create(f"probe-{os.getpid()}", CgroupLimits(1 << 30, 1.0)).remove()
    return driver


def probe_cgroups(root: Path = Path("/sys/fs/cgroup"), group: str = "dms") -> CgroupDriver | None:
    """A driver for the first cgroup flavour that really works here, or None."""
    if os.geteuid() != 0:
        return None
    for probe in (_probe_v2, _probe_v1):
        try:
            driver = probe(root, group)
        except OSError:
            continue
        if driver is not None:
            return driver
    return None
