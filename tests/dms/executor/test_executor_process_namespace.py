"""The process executor runs a workload inside the network namespace its spec names
(the ensemble network's), as the workload's own pid, with that namespace's resolver
file; a program it cannot find is refused at start as on the host."""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from dms.executor import ExecutionSpec, ExecutorKind, InvalidSpec, ProcessExecutor, WorkloadKind
from dms.network import create_namespace, delete_namespace
from tests.capabilities import needs_network

pytestmark = needs_network


@pytest.fixture
def namespace() -> Iterator[str]:
    name = f"dmst-x{secrets.token_hex(3)}"
    create_namespace(name, "nameserver 127.0.0.77\n")
    try:
        yield name
    finally:
        delete_namespace(name)


async def test_a_workload_runs_in_its_namespace_as_its_own_pid(tmp_path: Path,
                                                               namespace: str) -> None:
    script = ("import os, time; print(os.readlink('/proc/self/ns/net'), os.getpid(), "
              "open('/etc/resolv.conf').read().split()[1], flush=True); time.sleep(30)")
    spec = ExecutionSpec(name="inside", executor=ExecutorKind.PROCESS,
                         cmd=(sys.executable, "-c", script), network_namespace=namespace)
    async with ProcessExecutor(tmp_path) as executor:
        execution = await executor.start(spec)
        try:
            with trio.fail_after(20):
                while not (out := (await execution.logs()).stdout):
                    await trio.sleep(0.02)
            ns, pid, nameserver = out.split()
            expected = os.stat(f"/run/netns/{namespace}")
            assert ns == f"net:[{expected.st_ino}]"
            assert ns != os.readlink("/proc/self/ns/net")
            assert int(pid) == execution.pid  # `ip netns exec` execs in place
            assert nameserver == "127.0.0.77"
        finally:
            await execution.stop(grace=1)


async def test_a_missing_program_in_a_namespace_is_refused_at_start(tmp_path: Path,
                                                                    namespace: str) -> None:
    spec = ExecutionSpec(name="nothing", executor=ExecutorKind.PROCESS,
                         cmd=("/no/such/program",), network_namespace=namespace,
                         kind=WorkloadKind.TASK)
    async with ProcessExecutor(tmp_path) as executor:
        with pytest.raises(InvalidSpec, match="cmd: cannot run '/no/such/program'"):
            await executor.start(spec)
