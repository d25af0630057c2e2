"""The docker executor: containers through the docker SDK, blocking calls off the loop.

Containers carry the labels `dms.allocation=<name>` and `dms.node=<node id>` so a
restarted provider finds its own (`DockerExecutor.reconcile`, `leftovers`) and adopts
those it still wants by container id (`adopt`); `detach` leaves them running. Limits are docker's
(`mem_limit` with no extra swap, `nano_cpus`); ports are published on 127.0.0.1 only.

Files are copied into the created container before it starts. Provision scripts run
in a throwaway container of the same image that is then committed: the workload
starts from that image only when every script succeeded, so it never sees a
half-provisioned filesystem.

On the ensemble network (`spec.network_namespace` set, and a `ContainerNetwork` given)
the container is made with docker's network `none` and a gate: its entrypoint waits
for `/.dms/net/ready` before it execs the workload's own command. The executor starts
the container, hands its pid to `ContainerNetwork.attach` (which names the container's
namespace and makes the TUN, address, routes and resolver there), and only then
writes `ready`: the workload never runs without its address. /etc/resolv.conf is
bound from the same host directory. When the container ends, `detach` closes the TUN
(an open one keeps the namespace alive) and deletes the namespace.
"""

from __future__ import annotations

import contextlib
import functools
import io
import math
import secrets
import tarfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar

import attrs
import docker
import docker.errors
import docker.types
import requests.exceptions
import trio
from docker.models.containers import Container

from dms.cleanup import shielded_cleanup
from dms.executor._errors import (
    EngineUnavailable,
    ExecutorNotOpen,
    ImageUnavailable,
    InvalidSpec,
    NotAdoptable,
    ProvisionFailed,
)
from dms.executor._spec import ExecutionSpec, FileDelivery
from dms.executor._status import (
    ExecResult,
    ExecutionState,
    ExecutionStatus,
    ExitStatus,
    LimitEnforcement,
    Logs,
    ResourceStats,
)
from dms.store import ExecutionIdentity
from dms.workload import ExecutorKind

T = TypeVar("T")
ALLOCATION_LABEL = "dms.allocation"
NODE_LABEL = "dms.node"


# Waits that last as long as a container or an exec runs get their own unbounded limiter:
# on trio's default one (40 tokens) the 41st container, and every other to_thread call in
# the process, would hang behind them.
_LONG_WAITS = trio.CapacityLimiter(math.inf)
# Bounded like the process executor's logs (the daemon's default json-file never rotates).
_ROTATED_LOGS = docker.types.LogConfig(
    type=docker.types.LogConfig.types.JSON, config={"max-size": "1m", "max-file": "3"}
)
# Cleanup on leaving the executor is bounded so a wedged engine cannot hang the node.
_CLOSE_DEADLINE = 20.0
_KILL_EXEC_DEADLINE = 5.0  # to kill a health check command that overran
ENGINE_RETRY = 1.0
"""Seconds between attempts to reach an engine that stopped answering while a
container it runs is watched."""


def engine_unreachable(error: BaseException) -> bool:
    """The engine did not answer (stopped, restarting): this says nothing about how the
    container is, so it must not be taken for its end."""
    if isinstance(error, requests.exceptions.RequestException):
        return True
    return (isinstance(error, docker.errors.APIError)
            and not isinstance(error, docker.errors.NotFound) and error.is_server_error())

GATE_DIR = "/.dms/net"
"""Where a networked container sees the host directory `ContainerNetwork.files` made."""
GATE_SECONDS = 60
"""How long the gate waits for the network before the container exits 125."""
_GATE = (
    f"i=0; while [ ! -e {GATE_DIR}/ready ]; do i=$((i+1)); "
    f"if [ $i -gt {GATE_SECONDS * 20} ]; then "
    "echo 'dms: the ensemble network was never set up' >&2; exit 125; fi; "
    'sleep 0.05; done; exec "$@"'
)


class ContainerNetwork(Protocol):
    """What the provider's ensemble networks do for a container (`HostedNetworks`)."""

    def files(self, namespace: str) -> Path:
        """The host directory (made now, holding `resolv.conf`) bound into the
        container at GATE_DIR; `ready` is written there once `attach` succeeded."""
        ...

    async def attach(self, namespace: str, pid: int) -> None:
        """Give the namespace of process `pid` (the container's) its network, named
        `namespace`; raises when it cannot (the container is then removed)."""
        ...

    async def detach(self, namespace: str) -> None:
        """The container ended: close its TUN, delete the namespace; idempotent."""
        ...


async def _blocking(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await trio.to_thread.run_sync(functools.partial(call, *args, **kwargs))


async def _waiting(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """A blocking call that lasts as long as a process runs; abandoned on cancel."""
    return await trio.to_thread.run_sync(
        functools.partial(call, *args, **kwargs), abandon_on_cancel=True, limiter=_LONG_WAITS
    )


def _namespace_pid(host_pid: int) -> int | None:
    """The pid inside its container of host process `host_pid`, when the engine is local."""
    try:
        with open(f"/proc/{host_pid}/status") as status:
            for line in status:
                if line.startswith("NSpid:"):
                    return int(line.split()[-1])
    except (OSError, ValueError):
        return None
    return None


def _tar_of(files: tuple[FileDelivery, ...], base: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for delivery in files:
            path = PurePosixPath(base) / delivery.path  # an absolute path wins
            info = tarfile.TarInfo(str(path).lstrip("/"))
            info.size = len(delivery.content)
            info.mode = delivery.mode
            archive.addfile(info, io.BytesIO(delivery.content))
    return buffer.getvalue()


def _timestamp(value: str) -> float:
    """Docker's RFC 3339 nanosecond timestamps, to seconds since the epoch."""
    if not value or value.startswith("0001-"):
        return 0.0
    head, _, fraction = value.rstrip("Z").partition(".")
    return datetime.fromisoformat(head + "+00:00").timestamp() + float(f"0.{fraction or 0}")


@attrs.frozen
class ContainerRecord:
    """A container labelled as this node's, found by `reconcile`."""

    allocation: str
    container_id: str
    state: str


class DockerExecution:
    def __init__(self, spec: ExecutionSpec, container: Container, image_to_remove: str | None,
                 network: ContainerNetwork | None = None):
        self.spec = spec
        self.network = network  # set: the container is on the ensemble network
        self.container = container
        self._image_to_remove = image_to_remove
        self._started_at = time.time()
        self._stop_requested = False
        self._detached = False
        self._watching = trio.CancelScope()
        self._exit: ExitStatus | None = None
        self._done = trio.Event()
        self._ports: tuple[tuple[int, int], ...] = ()
        self.unobservable = ""
        """Why the engine cannot be asked about the container now; empty when it can."""

    def detach(self) -> None:
        """Leave the container running: `stop` and `remove` no longer touch it."""
        if not self._done.is_set():
            self._detached = True
            self._watching.cancel()

    @property
    def name(self) -> str:
        return self.spec.name

    async def _refresh_ports(self) -> None:
        await _blocking(self.container.reload)
        published = self.container.attrs["NetworkSettings"]["Ports"] or {}
        self._ports = tuple(
            (int(key.split("/")[0]), int(bindings[0]["HostPort"]))
            for key, bindings in published.items()
            if bindings
        )

    async def _watch(self) -> None:
        """Waits for the container to end; started in the executor's nursery. While the
        engine does not answer the container is `unobservable`, not ended: it is asked
        again every `ENGINE_RETRY` seconds, and watched on once the engine is back
        (with live restore the container ran on meanwhile)."""
        state: dict[str, Any] = {"ExitCode": 137, "OOMKilled": False}  # gone
        with self._watching, contextlib.suppress(docker.errors.NotFound):
            state = await self._ended_state()
        if self._detached:
            return
        with trio.CancelScope(shield=True):
            await self._leave_network()
        self._finish(state)

    async def _ended_state(self) -> dict[str, Any]:
        while True:
            try:
                await _blocking(self.container.reload)  # the engine answers (again)
                self.unobservable = ""
                await _waiting(self.container.wait)
                await _blocking(self.container.reload)
                return dict(self.container.attrs["State"])
            except Exception as error:
                if not engine_unreachable(error):
                    raise
                self.unobservable = f"docker engine not answering: {type(error).__name__}"
            await trio.sleep(ENGINE_RETRY)

    async def _leave_network(self) -> None:
        """Close the TUN that keeps the ended container's namespace alive, and delete
        it; once (a failure is the provider's to log: the exit is reported anyway)."""
        network, self.network = self.network, None
        if network is not None and self.spec.network_namespace is not None:
            await network.detach(self.spec.network_namespace)

    @property
    def pid(self) -> int:
        """The container's first process on the host (0 when it is not running)."""
        return int(self.container.attrs.get("State", {}).get("Pid") or 0)

    def _finish(self, state: dict[str, Any]) -> None:
        code = int(state.get("ExitCode", 0))
        oom = bool(state.get("OOMKilled"))
        started = _timestamp(state.get("StartedAt", ""))
        finished = _timestamp(state.get("FinishedAt", ""))
        signal_number = code - 128 if code > 128 and (self._stop_requested or oom) else None
        self._exit = ExitStatus(
            exit_code=None if signal_number else code,
            signal=signal_number,
            oom=oom,
            oom_evidence="docker State.OOMKilled" if oom else "",
            stopped=self._stop_requested and not oom,
            duration=max(0.0, finished - started) if started and finished else 0.0,
        )
        self._done.set()

    async def wait(self) -> ExitStatus:
        await self._done.wait()
        assert self._exit is not None
        return self._exit

    async def stop(self, grace: float = 10.0) -> ExitStatus:
        if self._detached:
            return ExitStatus(exit_code=None)
        if not self._done.is_set():
            self._stop_requested = True
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                await _blocking(self.container.stop, timeout=max(0, round(grace)))
        return await self.wait()

    def status(self) -> ExecutionStatus:
        return ExecutionStatus(
            name=self.name,
            state=self._exit.state if self._exit else ExecutionState.RUNNING,
            enforcement=LimitEnforcement.DOCKER,
            ident=self.container.id or "",
            started_at=self._started_at,
            exit=self._exit,
            ports=self._ports,
            unobservable=self.unobservable,
        )

    async def logs(self, tail: int = 100) -> Logs:
        async def stream(stdout: bool) -> str:
            raw = await _blocking(self.container.logs, stdout=stdout, stderr=not stdout, tail=tail)
            return bytes(raw).decode("utf-8", errors="replace")

        return Logs(stdout=await stream(True), stderr=await stream(False))

    async def stats(self) -> ResourceStats:
        raw = await _blocking(self.container.stats, stream=False)
        return ResourceStats(
            cpu_seconds=raw.get("cpu_stats", {}).get("cpu_usage", {}).get("total_usage", 0) / 1e9,
            memory_bytes=int(raw.get("memory_stats", {}).get("usage", 0)),
            pids=int(raw.get("pids_stats", {}).get("current", 0)),
        )

    async def exec(self, argv: tuple[str, ...], timeout: float) -> ExecResult:
        """Runs `argv` in the container; past `timeout` the process is killed, TooSlowError."""
        api = self.container.client.api
        exec_id = (await _blocking(api.exec_create, self.container.id, list(argv)))["Id"]
        try:
            with trio.fail_after(timeout):
                output = await _waiting(api.exec_start, exec_id)
        except trio.TooSlowError:
            with shielded_cleanup(_KILL_EXEC_DEADLINE):
                await self._kill_exec(exec_id)
            raise
        code = (await _blocking(api.exec_inspect, exec_id)).get("ExitCode")
        return ExecResult(int(code or 0), bytes(output).decode("utf-8", errors="replace"))

    async def _kill_exec(self, exec_id: str) -> None:
        """Docker cannot kill an exec: kill its pid from inside the container instead.

        A timeout can fire before docker has started the exec (no pid yet): wait for it
        to start, or to end by itself, within the caller's cleanup deadline."""
        api = self.container.client.api
        with contextlib.suppress(docker.errors.APIError):
            while True:
                inspected = await _blocking(api.exec_inspect, exec_id)
                if inspected.get("Running") and inspected.get("Pid"):
                    pid = _namespace_pid(int(inspected["Pid"]))
                    if pid:
                        await _blocking(self.container.exec_run, ["kill", "-9", str(pid)])
                    return
                if inspected.get("ExitCode") is not None:
                    return  # it ended on its own
                await trio.sleep(0.02)

    async def remove(self) -> None:
        if self._detached:
            return
        await self.stop(grace=0)
        with trio.CancelScope(shield=True):
            await self._leave_network()
        with contextlib.suppress(docker.errors.NotFound):
            await _blocking(self.container.remove, force=True)
        if self._image_to_remove:
            with contextlib.suppress(docker.errors.ImageNotFound, docker.errors.APIError):
                await _blocking(self.container.client.images.remove, self._image_to_remove)
            self._image_to_remove = None


class DockerExecutor:
    """Runs `ExecutionSpec`s with `executor=docker` as containers labelled for `node_id`."""

    def __init__(
        self,
        node_id: str,
        *,
        client_factory: Callable[[], docker.DockerClient] = docker.from_env,
        close_grace: float = 5.0,
        network: ContainerNetwork | None = None,
    ) -> None:
        """`network`: the provider's ensemble networks, for specs that name a
        `network_namespace` (None: such a spec is refused)."""
        self.node_id = node_id
        self.network = network
        self._client_factory = client_factory
        self._close_grace = close_grace
        self._client: docker.DockerClient | None = None
        self._nursery: trio.Nursery | None = None
        self._stack = contextlib.AsyncExitStack()
        self._executions: list[DockerExecution] = []

    async def __aenter__(self) -> Self:
        try:
            client = await _blocking(self._client_factory)
            await _blocking(client.ping)
        except docker.errors.DockerException as error:
            raise EngineUnavailable(f"docker engine not reachable: {error}") from error
        self._client = client
        self._nursery = await self._stack.enter_async_context(trio.open_nursery())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with shielded_cleanup(_CLOSE_DEADLINE + self._close_grace):
            async with trio.open_nursery() as removers:
                for execution in self._executions:
                    removers.start_soon(self._stop_and_remove, execution)
        self._nursery = None
        await self._stack.__aexit__(exc_type, exc, tb)
        if self._client is not None:
            self._client.close()

    async def _stop_and_remove(self, execution: DockerExecution) -> None:
        await execution.stop(self._close_grace)
        await execution.remove()

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None or self._nursery is None:
            raise ExecutorNotOpen("use `async with DockerExecutor(...)` before start()")
        return self._client

    def labels(self, spec: ExecutionSpec) -> dict[str, str]:
        return {ALLOCATION_LABEL: spec.name, NODE_LABEL: self.node_id}

    async def reconcile(self) -> list[ContainerRecord]:
        """Containers this node started (any state), e.g. after a provider restart."""
        found = await _blocking(
            self.client.containers.list, all=True, filters={"label": f"{NODE_LABEL}={self.node_id}"}
        )
        return [
            ContainerRecord(c.labels.get(ALLOCATION_LABEL, ""), c.id or "", c.status) for c in found
        ]

    # -- across a restart ----------------------------------------------------------------

    def identity_of(self, execution: object) -> ExecutionIdentity | None:
        if not isinstance(execution, DockerExecution) or not execution.container.id:
            return None
        return ExecutionIdentity(ident=execution.container.id, details={"name": execution.name})

    def detach(self) -> None:
        """Leave every running container running when this executor closes."""
        for execution in self._executions:
            execution.detach()

    async def adopt(self, identity: ExecutionIdentity, spec: ExecutionSpec) -> DockerExecution:
        """Watch and control again a running container of this node (by its id);
        NotAdoptable if it is gone, not running, or not labelled as this node's."""
        client = self.client
        assert self._nursery is not None
        try:
            container = await _blocking(client.containers.get, identity.ident)
        except docker.errors.NotFound:
            raise NotAdoptable(spec.name, f"container {identity.ident} is gone") from None
        if container.labels.get(NODE_LABEL) != self.node_id:
            raise NotAdoptable(spec.name, f"container {identity.ident} is not this node's")
        if container.status != "running":
            raise NotAdoptable(spec.name, f"container {identity.ident} is {container.status}")
        execution = DockerExecution(spec, container, None)
        await execution._refresh_ports()
        self._executions.append(execution)
        self._nursery.start_soon(execution._watch)
        return execution

    async def leftovers(self) -> tuple[ExecutionIdentity, ...]:
        """This node's containers (any state) that this executor does not run."""
        running = {execution.container.id for execution in self._executions}
        return tuple(ExecutionIdentity(ident=found.container_id,
                                       details={"name": found.allocation})
                     for found in await self.reconcile()
                     if found.container_id and found.container_id not in running)

    async def discard(self, identity: ExecutionIdentity) -> None:
        """Remove a container of this node (force: it is stopped first)."""
        with contextlib.suppress(docker.errors.NotFound):
            container = await _blocking(self.client.containers.get, identity.ident)
            if container.labels.get(NODE_LABEL) == self.node_id:
                await _blocking(container.remove, force=True)

    async def start(self, spec: ExecutionSpec) -> DockerExecution:
        client = self.client
        assert self._nursery is not None
        if spec.executor is not ExecutorKind.DOCKER:
            raise InvalidSpec(f"executor: {spec.executor.value!r} given to the docker executor")
        if not spec.image:
            raise InvalidSpec(f"image: allocation {spec.name!r} names no image")
        if spec.network_namespace is not None and self.network is None:
            raise InvalidSpec(f"network_namespace: allocation {spec.name!r} asks for the "
                              "ensemble network and this docker executor has none")
        await self._ensure_image(spec.image)
        image, provisioned, entrypoint = spec.image, None, spec.entrypoint
        command = list(spec.cmd) or None
        if spec.provision:
            base = (await _blocking(client.images.get, spec.image)).attrs["Config"]
            image = provisioned = await self._provision(spec)
            if entrypoint is None:  # not the provisioning one the committed image inherited
                entrypoint = tuple(base.get("Entrypoint") or ("",))
                # an explicit entrypoint clears the image's CMD: restore it
                command = command or list(base.get("Cmd") or []) or None
        ports = {
            f"{port.private}/{port.protocol}": ("127.0.0.1", port.public or None)
            for port in spec.ports
        }
        networked: dict[str, Any] = {}
        namespace, network = spec.network_namespace, self.network
        if namespace is not None and network is not None:
            entrypoint, command = await self._gated(image, entrypoint, command, spec.name)
            files = await _blocking(network.files, namespace)
            ports = {}  # published by the provider, into the namespace (no docker bridge)
            networked = {
                "network_mode": "none",
                "volumes": {str(files): {"bind": GATE_DIR, "mode": "ro"},
                            str(files / "resolv.conf"): {"bind": "/etc/resolv.conf",
                                                         "mode": "ro"}},
            }
        created: Container | None = None
        attached = False
        try:
            container = await _blocking(
                client.containers.create,
                image,
                command=command,
                entrypoint=list(entrypoint) if entrypoint is not None else None,
                environment=spec.env,
                working_dir=spec.working_directory,
                labels=self.labels(spec),
                mem_limit=spec.resources.ram or None,
                memswap_limit=spec.resources.ram or None,
                nano_cpus=int(spec.resources.cpu * 1e9) or None,
                ports=ports,
                log_config=_ROTATED_LOGS,
                # docker's init as PID 1: the workload gets SIGTERM even when it is a
                # process that ignores it as PID 1 (busybox httpd, most shells), so a
                # graceful stop takes milliseconds, not the grace period; zombies reaped
                init=True,
                name=f"dms-{spec.name}-{secrets.token_hex(4)}",
                detach=True,
                **networked,
            )
            created = container
            if spec.files:
                tar = _tar_of(spec.files, spec.working_directory or "/")
                await _blocking(container.put_archive, "/", tar)
            execution = DockerExecution(spec, container, provisioned)
            await _blocking(container.start)
            await execution._refresh_ports()
            if namespace is not None and network is not None:
                if not execution.pid:
                    raise InvalidSpec(f"allocation {spec.name!r}: its container ended "
                                      "before the ensemble network could be set up")
                attached = True
                await network.attach(namespace, execution.pid)
                await _blocking((network.files(namespace) / "ready").write_text, "")
                execution.network = network
        except BaseException as error:
            with trio.CancelScope(shield=True):
                if attached and namespace is not None and network is not None:
                    await network.detach(namespace)
                await self._discard(created, provisioned)
            if isinstance(error, docker.errors.APIError):
                message = f"allocation {spec.name!r}: docker refused it: {error}"
                raise InvalidSpec(message) from error
            raise
        self._executions.append(execution)
        self._nursery.start_soon(execution._watch)
        return execution

    async def _gated(self, image: str, entrypoint: tuple[str, ...] | None,
                     command: list[str] | None, name: str,
                     ) -> tuple[tuple[str, ...], list[str]]:
        """The entrypoint and command that wait for the network, then exec what the
        container would have run (the image's entrypoint and cmd where the spec names
        none, as docker combines them). Needs /bin/sh in the image."""
        config = (await _blocking(self.client.images.get, image)).attrs["Config"] or {}
        if entrypoint is None:
            entrypoint = tuple(config.get("Entrypoint") or ())
            command = command or list(config.get("Cmd") or [])
        argv = [*entrypoint, *(command or [])]
        if not argv:
            raise InvalidSpec(f"cmd: allocation {name!r} names no command and its image none")
        return ("/bin/sh", "-c", _GATE, "dms-gate"), argv

    async def _discard(self, container: Container | None, image: str | None) -> None:
        """Removes what a failed or cancelled start() left: its container and provisioned image."""
        if container is not None:
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                await _blocking(container.remove, force=True)
        if image is not None:
            with contextlib.suppress(docker.errors.ImageNotFound, docker.errors.APIError):
                await _blocking(self.client.images.remove, image)

    async def _ensure_image(self, image: str) -> None:
        try:
            await _blocking(self.client.images.get, image)
        except docker.errors.ImageNotFound:
            try:
                await _blocking(self.client.images.pull, image)
            except docker.errors.APIError as error:
                raise ImageUnavailable(
                    f"image: {image!r} not present and pull failed: {error}"
                ) from error

    async def _provision(self, spec: ExecutionSpec) -> str:
        """Run the scripts in a throwaway container and commit it; returns the new image."""
        assert spec.image is not None
        steps = [
            f"{' '.join(script.interpreter)} /.dms/provision/{index:02d} "
            f"> /.dms/provision/{index:02d}.log 2>&1 "
            f"|| {{ echo $? > /.dms/provision/{index:02d}.rc; exit {100 + index}; }}"
            for index, script in enumerate(spec.provision)
        ]
        scripts = tuple(
            FileDelivery(f"/.dms/provision/{index:02d}", script.script.encode(), 0o755)
            for index, script in enumerate(spec.provision)
        )
        container = await _blocking(
            self.client.containers.create,
            spec.image,
            entrypoint=["/bin/sh", "-c", "; ".join(steps)],
            command=[],
            environment=spec.env,
            working_dir=spec.working_directory,
            labels=self.labels(spec) | {"dms.provisioning": "true"},
            detach=True,
        )
        try:
            await _blocking(container.put_archive, "/", _tar_of(spec.files + scripts, "/"))
            await _blocking(container.start)
            code = int((await _waiting(container.wait))["StatusCode"])
            if code != 0:
                index = code - 100 if 100 <= code < 100 + len(spec.provision) else 0
                output = await self._read_file(container, f"/.dms/provision/{index:02d}.log")
                rc = await self._read_file(container, f"/.dms/provision/{index:02d}.rc")
                script = spec.provision[index].name
                raise ProvisionFailed(spec.name, script, int(rc or code), output)
            repository = f"dms-provisioned/{spec.name.lower()}"
            tag = secrets.token_hex(4)
            await _blocking(container.commit, repository=repository, tag=tag)
            return f"{repository}:{tag}"
        finally:
            with trio.CancelScope(shield=True), contextlib.suppress(docker.errors.NotFound):
                await _blocking(container.remove, force=True)

    async def _read_file(self, container: Container, path: str) -> str:
        try:
            chunks, _ = await _blocking(container.get_archive, path)
        except docker.errors.NotFound:
            return ""
        with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as archive:
            member = archive.extractfile(archive.getmembers()[0])
            return member.read().decode("utf-8", errors="replace") if member else ""
