"""Fault tools for the reliability tests: a provider node that can be killed and
brought back with its key and state directory, an orchestrator node in a process of its
own (SIGKILLed, started again from its state directory), and what a test counts as
leftovers (reservations, hosted deployments, processes found in /proc by their work
dir)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import trio

from dms.actor import Handle
from dms.executor import Adoptable
from dms.net import LinkConditions, MemoryNetwork
from dms.network import NETNS_ETC, namespace_names
from dms.node import Node, open_node
from dms.provider import ProviderConfig, namespace_prefix
from dms.workload import ExecutorKind
from tests.dms.deployment.conftest import Market, machine
from ucan import SigningKey, delegate

ORCHESTRATOR_PROCESS = Path(__file__).parent.parent / "dms" / "deployment" / "orchestrator_process.py"


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


def network_leftovers(peer: str) -> dict[str, list[str]]:
    """What provider `peer`'s ensemble networks hold on this host, asked of the kernel
    rather than of the provider: its namespaces (named with its prefix), the TUN links
    inside them, and its /etc/netns directories (the resolver file that points an
    allocation's names at its ensemble's DNS records). Empty lists when it is clean."""
    prefix = namespace_prefix(peer)
    namespaces = [name for name in namespace_names() if name.startswith(prefix)]
    tuns = []
    for name in namespaces:
        listed = subprocess.run(["ip", "-n", name, "-o", "link", "show", "type", "tun"],
                                capture_output=True, text=True, timeout=30)
        tuns += [f"{name}/{line.split(':')[1].strip()}" for line in listed.stdout.splitlines()]
    etc = sorted(path.name for path in NETNS_ETC.glob(f"{prefix}*")) if NETNS_ETC.exists() else []
    return {"namespaces": namespaces, "tuns": tuns, "resolver_files": etc}


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
    network: bool = False  # host the ensemble network
    key: SigningKey = attrs.field(factory=SigningKey.generate)
    node: Node | None = None
    _scope: trio.CancelScope | None = None
    _ended: trio.Event = attrs.field(factory=trio.Event)
    _keep_workloads: bool = True

    @property
    def work(self) -> Path:
        return self.root / "work"

    @property
    def did(self) -> str:
        return self.key.did

    def config(self, *, keep_workloads: bool) -> ProviderConfig:
        return ProviderConfig(self.work, self.executors, capacity=machine(cpu=self.cpu),
                              price=self.price, keep_workloads=keep_workloads,
                              network=self.network)

    async def start(self, nursery: trio.Nursery, *, keep_workloads: bool = True) -> Node:
        self._ended = trio.Event()
        self._keep_workloads = keep_workloads
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
        service = self.node.provider if self.node is not None else None
        if self._keep_workloads and service is not None:
            # A SIGKILL stops nothing. Cancelled, an execution's watch would kill its
            # process if it saw the cancellation before the provider detached it.
            for executor in service.executors.values():
                if isinstance(executor, Adoptable):
                    executor.detach()
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


@attrs.define
class RemoteMarket:
    """Providers and a user in this process over loopback websockets, and an
    orchestrator node that runs in a process of its own (`orchestrator`), so it can be
    SIGKILLed and started again with the same key, address and state directory."""

    org: SigningKey
    seed: bytes
    root: Path
    providers: list[Node]
    user: Node
    listen: str

    @property
    def did(self) -> str:
        return SigningKey.from_seed(self.seed).did

    @property
    def handle(self) -> Handle:
        return Handle(self.did, self.did, self.did, "root")

    @contextlib.asynccontextmanager
    async def orchestrator(self, *options: str) -> AsyncIterator[subprocess.Popen[str]]:
        """The orchestrator process (`orchestrator_process.py`, `options` after its
        fixed arguments), killed on leaving if it still runs; yields once it listens."""
        grant = self.root / "grant.ucan"
        if not grant.exists():
            grant.write_bytes(delegate(self.org, self.did, "/dms/deployment",
                                       expiration=None).envelope)
        bootstrap = self.providers[0].address
        assert bootstrap is not None
        process = subprocess.Popen(
            [sys.executable, str(ORCHESTRATOR_PROCESS), self.seed.hex(),
             str(self.root / "orchestrator"), self.org.did, str(grant), self.listen,
             bootstrap, *options], stdout=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
        try:
            address = await self.read_line(process)
            assert address.startswith("ws://"), address
            yield process
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()

    @staticmethod
    async def read_line(process: subprocess.Popen[str]) -> str:
        assert process.stdout is not None
        return (await trio.to_thread.run_sync(process.stdout.readline)).strip()

    async def wait_connected(self) -> None:
        """Until the user and every provider see the orchestrator."""
        while not all(self.did in node.mesh.connected_peers()
                      for node in (self.user, *self.providers)):
            await trio.sleep(0.1)
        await trio.sleep(0.5)  # subscriptions settle

    async def deploy(self, ensemble: str) -> str:
        reply = await self.user.root.invoke(self.handle, "/dms/node/deployment/new",
                                            {"ensemble": ensemble})
        return str(reply["id"])

    async def status(self, deployment: str) -> dict[str, Any]:
        return await status_of(self.user, self.handle, deployment)

    async def status_once_back(self, deployment: str) -> dict[str, Any]:
        """The status, asked again while the user's link to a restarted orchestrator is
        coming back."""
        while True:
            try:
                return await self.status(deployment)
            except Exception:  # noqa: BLE001 - the link is coming back
                await trio.sleep(0.3)


async def status_of(user: Node, orchestrator: Handle, deployment: str) -> dict[str, Any]:
    """`deployment`'s status, as `user` asks `orchestrator` (its root actor) for it."""
    reply = await user.root.invoke(orchestrator, "/dms/node/deployment/status",
                                   {"id": deployment})
    assert isinstance(reply, dict)
    return reply


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.asynccontextmanager
async def open_remote_market(root: Path, providers: int = 2) -> AsyncIterator[RemoteMarket]:
    """Providers offering `machine()` with their work under `root/p<n>`, and a user node
    that dials the orchestrator's (not yet running) address."""
    org = SigningKey.generate()
    async with contextlib.AsyncExitStack() as stack:
        nodes = []
        for n in range(providers):
            config = ProviderConfig(root / f"p{n}", (ExecutorKind.PROCESS,),
                                    capacity=machine())
            bootstrap = [nodes[0].address] if nodes and nodes[0].address else []
            node = await stack.enter_async_context(open_node(
                listen="ws://127.0.0.1:0", anchors=[org.did], provider=config,
                bootstrap=bootstrap))  # the orchestrator meets the others by exchange
            node.add_proofs(delegate(org, node.did, "/dms/deployment", expiration=None))
            nodes.append(node)
        listen = f"ws://127.0.0.1:{free_port()}"
        user = await stack.enter_async_context(open_node(anchors=[org.did],
                                                         bootstrap=[listen]))
        user.add_proofs(delegate(org, user.did, "/dms/node/deployment", expiration=None))
        yield RemoteMarket(org, os.urandom(32), root, nodes, user, listen)


BRIDGE_ADDRESS = "172.31.254.1/24"
"""The private engine's bridge: no route leads there from anywhere, nothing is sent."""


@attrs.define
class PrivateDockerd:
    """A docker engine of the test's own (its own data root, exec root, pid file and
    unix socket under `root`, its own bridge, no iptables; `--live-restore`, so
    containers outlive the engine's stop as they would a dockerd restart on a host),
    which a test may stop and start again without touching the machine's shared engine.

    Never `--bridge=none`: a dockerd started so deletes the host's `docker0`, the
    shared engine's bridge."""

    root: Path
    image: str
    process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"unix://{self.root}/sock"

    @property
    def bridge(self) -> str:
        return "dmsd" + self.root.name[-6:]  # interface names are 15 bytes at most

    def _make_bridge(self) -> None:
        if Path(f"/sys/class/net/{self.bridge}").exists():
            return
        for command in (["ip", "link", "add", self.bridge, "type", "bridge"],
                        ["ip", "addr", "add", BRIDGE_ADDRESS, "dev", self.bridge],
                        ["ip", "link", "set", self.bridge, "up"]):
            subprocess.run(command, check=True, capture_output=True, timeout=30)

    def _docker(self, *args: str, **options: Any) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(["docker", "-H", self.host, *args], capture_output=True,
                              timeout=60, **options)

    def start(self) -> None:
        self._make_bridge()
        log = open(self.root / "dockerd.log", "ab")  # noqa: SIM115 - the daemon's, for good
        self.process = subprocess.Popen(
            ["dockerd", "--data-root", str(self.root / "data"),
             "--exec-root", str(self.root / "exec"), "--pidfile", str(self.root / "pid"),
             "-H", self.host, f"--bridge={self.bridge}", "--iptables=false", "--ip6tables=false",
             "--live-restore", "--storage-driver=vfs"], stdout=log, stderr=log)
        log.close()
        for _ in range(120):
            if self._docker("info").returncode == 0:
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.25)
        raise RuntimeError(f"private dockerd did not start: see {self.root}/dockerd.log")

    def stop(self) -> None:
        """SIGTERM and wait: with live restore its containers keep running."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=60)

    def load_image(self) -> None:
        saved = subprocess.run(["docker", "save", self.image], capture_output=True,
                               check=True, timeout=60).stdout
        self._docker("load", input=saved, check=True)

    def pid_of(self, container: str) -> int:
        out = self._docker("inspect", "-f", "{{.State.Pid}}", container, check=True)
        return int(out.stdout.decode().strip())

    def containers(self, label: str) -> list[str]:
        listed = self._docker("ps", "-aq", "--filter", f"label={label}", check=True)
        return listed.stdout.decode().split()

    def remove_everything(self) -> None:
        """Remove every container, stop the engine, unmount its data root."""
        if self.process is None or self.process.poll() is not None:
            self.start()
        found = self._docker("ps", "-aq").stdout.decode().split()
        if found:
            self._docker("rm", "-f", *found)
        self.stop()
        data = self.root / "data"
        while subprocess.run(["umount", str(data)], capture_output=True).returncode == 0:
            pass  # dockerd bind-mounts its data root over itself
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True, timeout=30)


def dockerd_installed() -> bool:
    return shutil.which("dockerd") is not None and shutil.which("docker") is not None
