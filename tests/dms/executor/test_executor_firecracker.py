import json
import os
import sys
from pathlib import Path

import pytest
import trio

from dms.ensemble._requirements import Resources
from dms.executor import (
    ExecUnsupported,
    ExecutionSpec,
    ExecutionState,
    ExecutorKind,
    FirecrackerApiError,
    FirecrackerBoot,
    FirecrackerUnavailable,
    InvalidSpec,
    LimitEnforcement,
)
from dms.executor._firecracker import FirecrackerExecutor, missing_requirements
from dms.executor._firecracker_api import FirecrackerApi

FAKE = Path(__file__).with_name("fake_firecracker.py")
MiB = 1 << 20


@pytest.fixture
def fake_binary(tmp_path: Path) -> Path:
    binary = tmp_path / "firecracker"
    binary.write_text(f'#!/bin/sh\nexec {sys.executable} {FAKE} "$@"\n')
    binary.chmod(0o755)
    return binary


@pytest.fixture
def boot_files(tmp_path: Path) -> FirecrackerBoot:
    (tmp_path / "vmlinux").write_bytes(b"kernel")
    (tmp_path / "rootfs.ext4").write_bytes(b"rootfs")
    return FirecrackerBoot(
        kernel=str(tmp_path / "vmlinux"), rootfs=str(tmp_path / "rootfs.ext4"), tap_device="tap0"
    )


def vm_spec(boot: FirecrackerBoot, record: Path, **kw: object) -> ExecutionSpec:
    return ExecutionSpec(
        name="vm",
        executor=ExecutorKind.FIRECRACKER,
        firecracker=boot,
        environment=(f"FAKE_FC_RECORD={record}",),
        **kw,  # type: ignore[arg-type]
    )


def recorded(record: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in record.read_text().splitlines()]


async def test_missing_binary_is_named(tmp_path: Path, boot_files: FirecrackerBoot) -> None:
    async with FirecrackerExecutor(tmp_path, binary="/nonexistent/firecracker") as executor:
        with pytest.raises(
            FirecrackerUnavailable, match="binary '/nonexistent/firecracker' not found"
        ):
            await executor.start(vm_spec(boot_files, tmp_path / "r"))


async def test_missing_kvm_is_named(
    tmp_path: Path, fake_binary: Path, boot_files: FirecrackerBoot
) -> None:
    async with FirecrackerExecutor(
        tmp_path, binary=str(fake_binary), kvm="/nonexistent/kvm"
    ) as executor:
        with pytest.raises(FirecrackerUnavailable, match="/nonexistent/kvm missing") as raised:
            await executor.start(vm_spec(boot_files, tmp_path / "r"))
    assert "binary" not in str(raised.value)


async def test_files_are_refused_rather_than_ignored(
    tmp_path: Path, boot_files: FirecrackerBoot
) -> None:
    from dms.executor import FileDelivery

    async with FirecrackerExecutor(tmp_path) as executor:
        with pytest.raises(InvalidSpec, match="files/provision"):
            await executor.start(
                vm_spec(boot_files, tmp_path / "r", files=(FileDelivery("/a", b""),))
            )


async def test_executor_configures_boots_and_shuts_down_through_the_api(
    tmp_path: Path, fake_binary: Path, boot_files: FirecrackerBoot
) -> None:
    kvm = tmp_path / "kvm"  # the fake VMM does not touch it; it only has to be there
    kvm.touch()
    record = tmp_path / "requests.jsonl"
    spec = vm_spec(boot_files, record, resources=Resources(cpu=1.5, ram=256 * MiB))
    async with FirecrackerExecutor(
        tmp_path / "vms", binary=str(fake_binary), kvm=str(kvm)
    ) as executor:
        execution = await executor.start(spec)
        assert execution.status().enforcement is LimitEnforcement.FIRECRACKER
        assert (await execution.api.instance_info())["state"] == "Running"
        with pytest.raises(ExecUnsupported):
            await execution.exec(("true",), timeout=1)
        exit = await execution.stop(grace=5)
        logs = await execution.logs()
    assert exit.exit_code == 0  # the guest shut down on Ctrl-Alt-Del, nothing was killed
    assert exit.stopped and execution.status().state is ExecutionState.STOPPED
    assert "guest shutting down" in logs.stdout
    assert recorded(record) == [
        {"path": "/machine-config", "body": {"vcpu_count": 2, "mem_size_mib": 256}},
        {
            "path": "/boot-source",
            "body": {"kernel_image_path": boot_files.kernel, "boot_args": boot_files.boot_args},
        },
        {
            "path": "/drives/rootfs",
            "body": {
                "drive_id": "rootfs",
                "path_on_host": boot_files.rootfs,
                "is_root_device": True,
                "is_read_only": False,
            },
        },
        {"path": "/network-interfaces/eth0", "body": {"iface_id": "eth0", "host_dev_name": "tap0"}},
        {"path": "/actions", "body": {"action_type": "InstanceStart"}},
        {"path": "/actions", "body": {"action_type": "SendCtrlAltDel"}},
    ]


async def test_api_error_carries_the_fault_message(tmp_path: Path) -> None:
    socket = tmp_path / "api.sock"
    env = os.environ | {"FAKE_FC_RECORD": str(tmp_path / "r")}
    async with trio.open_nursery() as nursery:
        process = await nursery.start(
            lambda task_status: trio.run_process(
                [sys.executable, str(FAKE), "--api-sock", str(socket)],
                env=env,
                stdout=None,
                task_status=task_status,
                check=False,
            )
        )
        while not socket.exists():
            await trio.sleep(0.01)
        api = FirecrackerApi(str(socket))
        with pytest.raises(
            FirecrackerApiError, match="PUT /boot-source -> 400: Kernel file cannot"
        ):
            await api.put_boot_source("/missing/vmlinux", "console=ttyS0")
        process.terminate()


def test_real_firecracker_boots_a_guest(tmp_path: Path) -> None:
    missing = missing_requirements("firecracker", "/dev/kvm")
    if missing:
        pytest.skip("; ".join(missing))
    kernel, rootfs = os.environ.get("DMS_FC_KERNEL"), os.environ.get("DMS_FC_ROOTFS")
    if not (kernel and rootfs):
        pytest.skip("DMS_FC_KERNEL and DMS_FC_ROOTFS not set (see spec/executors.md)")

    async def boot() -> None:
        spec = ExecutionSpec(
            name="guest",
            executor=ExecutorKind.FIRECRACKER,
            firecracker=FirecrackerBoot(kernel=kernel, rootfs=rootfs),
        )
        async with FirecrackerExecutor(tmp_path) as executor:
            execution = await executor.start(spec)
            info = await execution.api.instance_info()
            assert info["state"] == "Running"
            await execution.stop(grace=10)

    trio.run(boot)
