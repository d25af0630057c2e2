"""Fault tools for the reliability tests: a provider node that can be killed and
brought back with its key and state directory, and what a test counts as leftovers
(reservations, hosted deployments, processes found in /proc by their work dir)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import attrs
import trio

from dms.net import LinkConditions, MemoryNetwork
from dms.node import Node, open_node
from dms.provider import ProviderConfig
from dms.workload import ExecutorKind
from tests.dms.deployment.conftest import Market, machine
from ucan import SigningKey, delegate


def processes_in(work: Path) -> list[int]:
    """Live processes whose working directory is under `work`: what a provider left
    running, found by the kernel rather than by the provider's own bookkeeping."""
    root = str(work.resolve())
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except OSError:  # gone meanwhile, or a kernel thread
            continue
        if cwd == root or cwd.startswith(root + os.sep):
            found.append(int(entry))
    return found


def leftovers(node: Node, work: Path) -> dict[str, Any]:
    """Everything a provider still holds: empty values only when it is clean."""
    service = node.provider
    assert service is not None
    return {"reservations": service.book.reservations(), "hosted": dict(service._hosted),
            "processes": processes_in(work)}


def containers_of(node_did: str) -> list[str]:
    """Containers (running or not) labelled as `node_did`'s: what its docker executor
    made, found by the engine rather than by the provider's bookkeeping."""
    listed = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=dms.node={node_did}"],
                            capture_output=True, text=True, check=True, timeout=30)
    return listed.stdout.split()


def clean(node: Node, work: Path) -> bool:
    return not any(leftovers(node, work).values())


async def wait_clean(node: Node, work: Path, timeout: float = 10) -> None:
    with trio.move_on_after(timeout):
        while not clean(node, work):
            await trio.sleep(0.1)
    assert clean(node, work), leftovers(node, work)


@attrs.define
class Victim:
    """A provider node run in its own cancel scope: `kill` cancels every task of the
    node at once (nothing it had not written is kept; with `keep_workloads` its
    processes stay, as after a SIGKILL), `revive` opens it again with the same key and
    state directory, so its restart reconciliation runs."""

    market: Market
    root: Path
    price: float = 0.0
    cpu: float = 4
    name: str = "victim"
    executors: tuple[ExecutorKind, ...] = (ExecutorKind.PROCESS,)
    key: SigningKey = attrs.field(factory=SigningKey.generate)
    node: Node | None = None
    _scope: trio.CancelScope | None = None
    _ended: trio.Event = attrs.field(factory=trio.Event)

    @property
    def work(self) -> Path:
        return self.root / "work"

    @property
    def did(self) -> str:
        return self.key.did

    def config(self, *, keep_workloads: bool) -> ProviderConfig:
        return ProviderConfig(self.work, self.executors, capacity=machine(cpu=self.cpu),
                              price=self.price, keep_workloads=keep_workloads)

    async def start(self, nursery: trio.Nursery, *, keep_workloads: bool = True) -> Node:
        self._ended = trio.Event()
        node: Node = await nursery.start(self._run, keep_workloads)
        self.node = node
        return node

    async def _run(self, keep_workloads: bool,
                   task_status: trio.TaskStatus[Node] = trio.TASK_STATUS_IGNORED) -> None:
        market = self.market
        try:
            with trio.CancelScope() as self._scope:
                async with open_node(self.key, listen=f"memory://{self.name}",
                                     network=market.network, anchors=[market.org.did],
                                     bootstrap=["memory://orchestrator"],
                                     state_dir=self.root / "state",
                                     provider=self.config(keep_workloads=keep_workloads)) as node:
                    node.add_proofs(delegate(market.org, node.did, "/dms/deployment",
                                             expiration=None))
                    with trio.fail_after(10):
                        await node.mesh.wait_connected(1)
                    task_status.started(node)
                    await trio.sleep_forever()
        finally:
            self._ended.set()

    async def kill(self) -> None:
        assert self._scope is not None
        self._scope.cancel()
        await self._ended.wait()
        self.node = None


@attrs.define
class Partition:
    """Cut the network between two nodes and heal it. While cut, every data frame
    either of them sends the other is lost, on the links they have and on those they
    open meanwhile (handshakes still complete: a cut that TCP would see as silence,
    not as a refused connection). Healing restores `conditions` on both."""

    network: MemoryNetwork
    a: Node
    b: Node
    conditions: LinkConditions = LinkConditions()
    cut_at: float | None = None

    def _set_lost(self, lost: bool) -> None:
        for one, other in ((self.a, self.b), (self.b, self.a)):
            link = one.mesh._links.get(other.did)
            if link is not None:
                link._lose_frame = (lambda: True) if lost else None

    def cut(self) -> None:
        self.network.set_conditions(self.a.did, self.b.did,
                                    attrs.evolve(self.conditions, loss=1.0))
        self._set_lost(True)
        self.cut_at = trio.current_time()

    def heal(self) -> None:
        self.network.set_conditions(self.a.did, self.b.did, self.conditions)
        self._set_lost(False)
        self.cut_at = None
