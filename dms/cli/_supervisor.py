"""Node processes under one supervisor: started, watched, and stopped in order.

Each node is a `dms node run --json --exit-with-stdin` process in a session of its own
(a Ctrl-C at the terminal reaches only the supervisor, which stops the nodes in the
order it was given: the orchestrator first, so its deployments are shut down while
the providers still run them). Its stdin is a pipe nobody writes: when the supervisor
ends in any way, even killed, the kernel closes it and the node stops itself, so no
node outlives its supervisor. Its JSON status lines (stdout) say where it listens and
how many peers it links with; its stderr is relayed, each line marked with its name.

A node that will not stop within `STOP_TIMEOUT` after SIGTERM is killed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import attrs
import trio

from dms.cleanup import shielded_cleanup

START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
MAX_LINE = 64 * 1024
"""Bytes of one status or log line kept (the rest of a longer line is dropped)."""
ERROR_LEVELS = frozenset({"ERROR", "CRITICAL"})


class DevFailed(Exception):
    """A node did not start, or stopped on its own; the message names it, how it ended
    (its exit status, or the signal that killed it) and quotes its last error."""


@attrs.frozen
class NodeSpec:
    name: str
    options: tuple[str, ...]  # of `dms node run`
    stage: int  # lower stages are stopped first

    @property
    def argv(self) -> tuple[str, ...]:
        """`dms node run` with this interpreter (no `dms` script needed on PATH)."""
        return (sys.executable, "-m", "dms.cli", "node", "run", "--json", "--exit-with-stdin",
                *self.options)

    @property
    def command(self) -> str:
        """The same, as an operator types it."""
        return shlex.join(("dms", "node", "run", *self.options))


class NodeProcess:
    """One running node, as its status lines describe it."""

    def __init__(self, spec: NodeSpec, process: trio.Process) -> None:
        self.spec = spec
        self.process = process
        self.address: str | None = None
        self.did: str | None = None
        self.offers: Mapping[str, Any] | None = None
        self.peers = 0
        self.last_error: str | None = None
        self.stopping = False
        self.listening = trio.Event()
        self.ended = trio.Event()
        self._changed = trio.Event()

    @property
    def command(self) -> str:
        """The command that runs this node again as it runs now: at its address."""
        listen = ("--listen", self.address) if self.address is not None else ()
        return shlex.join(("dms", "node", "run", *listen, *self.spec.options))

    @property
    def name(self) -> str:
        return self.spec.name

    def take_status(self, line: str) -> None:
        try:
            status = json.loads(line)
        except json.JSONDecodeError:
            return
        if not isinstance(status, dict):
            return
        if status.get("event") == "listening":
            self.address = str(status.get("address"))
            self.did = str(status.get("did"))
            offers = status.get("offers")
            self.offers = offers if isinstance(offers, dict) else None
            self.listening.set()
        elif status.get("event") == "peers" and isinstance(status.get("connected"), int):
            self.peers = status["connected"]
        self._changed.set()
        self._changed = trio.Event()

    async def wait_peers(self, count: int) -> None:
        while self.peers < count:
            if self.ended.is_set():
                raise DevFailed(self.obituary())
            await self._changed.wait()

    def take_stderr(self, line: str) -> None:
        """Keep `line` as the node's last error if it is one (see `error_of`)."""
        error = error_of(line)
        if error is not None:
            self.last_error = error

    def obituary(self) -> str:
        code = self.process.returncode
        how = f"exited with status {code}" if code is None or code >= 0 else \
            f"was killed by {_signal_name(-code)}"
        said = self.last_error if self.last_error is not None else "no error logged"
        return f"node {self.name} {how}: {said}"


def error_of(line: str) -> str | None:
    """What a node's stderr `line` says went wrong, or None if it says nothing wrong:
    a JSON log record counts when its level is ERROR or CRITICAL (its message is
    kept); anything else a node writes there (a traceback, click's `Error: ...`)
    is not a log record, so it is kept as it is. Blank lines are not errors."""
    if not line.strip():
        return None
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return line.strip()
    if not isinstance(record, dict) or "level" not in record:
        return line.strip()
    if record.get("level") not in ERROR_LEVELS:
        return None
    return str(record.get("message", line.strip()))


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


class Supervisor:
    def __init__(self, nursery: trio.Nursery, env: Mapping[str, str],
                 relay: Callable[[str], None]) -> None:
        self.nursery = nursery
        self.env = dict(env)
        self.relay = relay
        self.nodes: list[NodeProcess] = []
        self._died: trio.MemorySendChannel[NodeProcess]
        self._died, self.deaths = trio.open_memory_channel[NodeProcess](256)

    async def start(self, spec: NodeSpec, *, timeout: float = START_TIMEOUT) -> NodeProcess:
        """Start a node and return once it listens (DevFailed if it exits first)."""
        process = await trio.lowlevel.open_process(
            list(spec.argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=self.env, start_new_session=True)
        node = NodeProcess(spec, process)
        self.nodes.append(node)
        self.nursery.start_soon(self._read_status, node)
        self.nursery.start_soon(self._relay_stderr, node)
        self.nursery.start_soon(self._reap, node)
        with trio.move_on_after(timeout):
            async with trio.open_nursery() as racing:
                async def listening() -> None:
                    await node.listening.wait()
                    racing.cancel_scope.cancel()

                async def ended() -> None:
                    await node.ended.wait()
                    racing.cancel_scope.cancel()

                racing.start_soon(listening)
                racing.start_soon(ended)
        if not node.listening.is_set():
            raise DevFailed(node.obituary() if node.ended.is_set() else
                            f"node {spec.name} did not listen within {timeout:g} s")
        return node

    async def _read_status(self, node: NodeProcess) -> None:
        assert node.process.stdout is not None
        async for line in _lines(node.process.stdout):
            node.take_status(line)

    async def _relay_stderr(self, node: NodeProcess) -> None:
        assert node.process.stderr is not None
        async for line in _lines(node.process.stderr):
            node.take_stderr(line)
            self.relay(f"[{node.name}] {line}")

    async def _reap(self, node: NodeProcess) -> None:
        await node.process.wait()
        node.ended.set()
        if not node.stopping:
            self._died.send_nowait(node)

    async def stop_all(self) -> None:
        """Stop every node, stage by stage (each stage's nodes at once)."""
        for stage in sorted({node.spec.stage for node in self.nodes}):
            async with trio.open_nursery() as stopping:
                for node in self.nodes:
                    if node.spec.stage == stage:
                        stopping.start_soon(_stop, node)


async def _stop(node: NodeProcess) -> None:
    node.stopping = True
    if node.process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            node.process.send_signal(signal.SIGTERM)
        with trio.move_on_after(STOP_TIMEOUT):
            await node.process.wait()
    if node.process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(node.process.pid, signal.SIGKILL)
        await node.process.wait()
    if node.process.stdin is not None:
        await node.process.stdin.aclose()


async def _lines(stream: trio.abc.ReceiveStream) -> AsyncIterator[str]:
    """Lines of `stream` (decoded, without the newline), each cut at MAX_LINE bytes."""
    pending = b""
    dropping = False
    while chunk := await stream.receive_some(MAX_LINE):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if not dropping:
                yield line.decode(errors="replace")
            dropping = False
        if len(pending) > MAX_LINE:
            if not dropping:
                yield pending[:MAX_LINE].decode(errors="replace")
            pending, dropping = b"", True
    if pending and not dropping:
        yield pending.decode(errors="replace")


@contextlib.asynccontextmanager
async def open_supervisor(env: Mapping[str, str],
                          relay: Callable[[str], None]) -> AsyncIterator[Supervisor]:
    """Supervise nodes for the block; leaving it (however) stops them all, in stages,
    shielded from cancellation and bounded in time."""
    async with trio.open_nursery() as nursery:
        supervisor = Supervisor(nursery, env, relay)
        try:
            yield supervisor
        finally:
            with shielded_cleanup(2 * STOP_TIMEOUT + 10):
                await supervisor.stop_all()
            nursery.cancel_scope.cancel()

