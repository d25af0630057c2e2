"""Probes against real loopback servers the tests break on purpose (real clock)."""

import functools
import math
import socket
import struct
import sys
from pathlib import Path

import pytest
import trio

from dms.executor import ExecutionSpec, ExecutorKind, ProcessExecutor
from dms.supervise import (
    AllocationSupervisor,
    Backoff,
    CommandProbe,
    EventKind,
    ExpectedResponse,
    HealthCheck,
    HttpProbe,
    RestartPolicy,
    StatusEvent,
    TcpProbe,
    run_probe,
)
from dms.workload import ResponseMatch
from tests.dms.supervise.supervise_fake_executor import FakeExecutor


class ToggleServer:
    """A tiny HTTP server whose answer the test switches between healthy and not."""

    def __init__(self) -> None:
        self.status = 200
        self.body = b"ok"
        self.hang = False

    async def handle(self, stream: trio.SocketStream) -> None:
        async with stream:
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = await stream.receive_some(4096)
                if not chunk:
                    return
                request += chunk
            if self.hang:
                await trio.sleep_forever()
            head = f"HTTP/1.1 {self.status} X\r\nContent-Length: {len(self.body)}\r\n\r\n"
            await stream.send_all(head.encode() + self.body)


async def serve(nursery: trio.Nursery, server: ToggleServer) -> int:
    listeners = await nursery.start(
        functools.partial(trio.serve_tcp, host="127.0.0.1"), server.handle, 0
    )
    return int(listeners[0].socket.getsockname()[1])


async def test_http_probe_follows_status_body_and_timeout() -> None:
    fake = FakeExecutor()
    server = ToggleServer()
    async with trio.open_nursery() as nursery:
        port = await serve(nursery, server)
        check = HealthCheck(
            HttpProbe(f"http://127.0.0.1:{port}/health", response=ExpectedResponse("ok")), timeout=0.3
        )
        execution = await fake.start(
            ExecutionSpec(name="x", executor=ExecutorKind.PROCESS, cmd=("x",))
        )
        assert (await run_probe(check, execution)).ok
        server.status = 503
        assert (await run_probe(check, execution)).detail == "HTTP 503, expected 200"
        server.status, server.body = 200, b"degraded"
        assert "body does not contain 'ok'" in (await run_probe(check, execution)).detail
        server.hang = True
        result = await run_probe(check, execution)
        assert not result.ok and result.detail == "timed out after 0.3s"
        nursery.cancel_scope.cancel()


async def test_tcp_probe_fails_once_the_port_closes() -> None:
    fake = FakeExecutor()
    execution = await fake.start(ExecutionSpec(name="x", executor=ExecutorKind.PROCESS, cmd=("x",)))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    check = HealthCheck(TcpProbe(f"127.0.0.1:{port}"), timeout=1)
    assert (await run_probe(check, execution)).ok
    listener.close()
    result = await run_probe(check, execution)
    assert not result.ok and "Error" in result.detail


async def test_command_probe_runs_in_the_process_workload(tmp_path: Path) -> None:
    async with ProcessExecutor(tmp_path) as executor:
        execution = await executor.start(
            ExecutionSpec(name="svc", executor=ExecutorKind.PROCESS, cmd=("sleep", "30"))
        )
        ready = HealthCheck(
            CommandProbe(("sh", "-c", "test -f ready && echo fine"), response=ExpectedResponse("fine"))
        )
        assert not (await run_probe(ready, execution)).ok
        (execution.work / "ready").touch()
        assert (await run_probe(ready, execution)).ok
        await execution.stop(grace=1)


async def test_process_allocation_turning_unhealthy_is_restarted(tmp_path: Path) -> None:
    """End to end: a real http.server process, its health file removed on purpose."""
    with socket.socket() as probe_port:
        probe_port.bind(("127.0.0.1", 0))
        port = probe_port.getsockname()[1]
    spec = ExecutionSpec(
        name="web",
        executor=ExecutorKind.PROCESS,
        cmd=(
            "sh",
            "-c",
            f"echo ok > health && exec {sys.executable} -m http.server -b 127.0.0.1 {port}",
        ),
    )
    # a start period: a loaded machine may take a while before the server listens, and
    # failures before then must not count (what is pinned is the later turn to unhealthy)
    check = HealthCheck(
        HttpProbe(f"http://127.0.0.1:{port}/health"), interval=0.1, timeout=1, retries=2,
        start_period=30,
    )
    send, receive = trio.open_memory_channel[StatusEvent](math.inf)
    policy = RestartPolicy(backoff=Backoff(initial=0.05))
    async with ProcessExecutor(tmp_path) as executor, trio.open_nursery() as nursery:
        supervisor = AllocationSupervisor(
            executor, spec, send, health=check, policy=policy, stop_grace=1
        )
        with trio.fail_after(20):
            await nursery.start(supervisor.run)
            first = supervisor.execution
            assert first is not None and supervisor.status().health is not None
            (first.work / "health").unlink()  # type: ignore[attr-defined]
            async for event in receive:
                if event.kind is EventKind.HEALTHY and supervisor.execution is not first:
                    break
        nursery.cancel_scope.cancel()
    assert first.status().exit is not None and first.status().exit.stopped
    assert supervisor.status().restarts == 1


@pytest.mark.parametrize(
    ("expected", "healthy", "unhealthy"),
    [
        (ExpectedResponse("ok", ResponseMatch.STRING), "printf ' ok\\n\\n'", "echo okay"),
        (ExpectedResponse("ok", ResponseMatch.CONTAINS), "echo all ok here", "echo o k"),
        (ExpectedResponse(r"^load=[0-3]\b", ResponseMatch.REGEX), "echo load=2", "echo load=7"),
    ],
)
async def test_command_response_match_types_judge_real_output(
    tmp_path: Path, expected: ExpectedResponse, healthy: str, unhealthy: str
) -> None:
    async with ProcessExecutor(tmp_path) as executor:
        execution = await executor.start(
            ExecutionSpec(name="svc", executor=ExecutorKind.PROCESS, cmd=("sleep", "30"))
        )
        good = await run_probe(HealthCheck(CommandProbe(("sh", "-c", healthy), expected)), execution)
        bad = await run_probe(HealthCheck(CommandProbe(("sh", "-c", unhealthy), expected)), execution)
        await execution.stop(grace=1)
    assert good.ok, good.detail
    assert not bad.ok and expected.mismatch() in bad.detail


async def test_http_body_string_match_ignores_surrounding_whitespace_only() -> None:
    fake = FakeExecutor()
    server = ToggleServer()
    async with trio.open_nursery() as nursery:
        port = await serve(nursery, server)
        check = HealthCheck(
            HttpProbe(f"http://127.0.0.1:{port}/", response=ExpectedResponse("ok", ResponseMatch.STRING))
        )
        execution = await fake.start(ExecutionSpec(name="x", executor=ExecutorKind.PROCESS, cmd=("x",)))
        server.body = b"\r\n ok \n"
        assert (await run_probe(check, execution)).ok
        server.body = b"ok, mostly"
        result = await run_probe(check, execution)
        assert not result.ok and result.detail == "HTTP 200 body is not 'ok'"
        nursery.cancel_scope.cancel()


async def test_http_body_regex_match() -> None:
    fake = FakeExecutor()
    server = ToggleServer()
    async with trio.open_nursery() as nursery:
        port = await serve(nursery, server)
        expected = ExpectedResponse(r'"status":\s*"(up|degraded)"', ResponseMatch.REGEX)
        check = HealthCheck(HttpProbe(f"http://127.0.0.1:{port}/", response=expected))
        execution = await fake.start(ExecutionSpec(name="x", executor=ExecutorKind.PROCESS, cmd=("x",)))
        server.body = b'{"status": "up"}'
        assert (await run_probe(check, execution)).ok
        server.body = b'{"status": "down"}'
        assert not (await run_probe(check, execution)).ok
        nursery.cancel_scope.cancel()


async def test_script_probe_runs_like_a_command_in_the_workload(tmp_path: Path) -> None:
    script = CommandProbe.script(
        "set -e\ntest -f ready\ncat ready\n", ExpectedResponse("warm", ResponseMatch.STRING)
    )
    async with ProcessExecutor(tmp_path) as executor:
        execution = await executor.start(
            ExecutionSpec(name="svc", executor=ExecutorKind.PROCESS, cmd=("sleep", "30"))
        )
        check = HealthCheck(script)
        missing = await run_probe(check, execution)
        (execution.work / "ready").write_text("cold\n")
        cold = await run_probe(check, execution)
        (execution.work / "ready").write_text("warm\n")
        warm = await run_probe(check, execution)
        await execution.stop(grace=1)
    assert not missing.ok and missing.detail.startswith("exit code 1")
    assert not cold.ok and "is not 'warm'" in cold.detail
    assert warm.ok


async def test_an_http_target_that_resets_the_connection_is_unhealthy_not_an_error() -> None:
    async def reset(stream: trio.SocketStream) -> None:
        await trio.sleep(0.05)  # let the request arrive, then close it unread: a reset
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await stream.aclose()

    fake = FakeExecutor()
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(functools.partial(trio.serve_tcp, reset, 0,
                                                          host="127.0.0.1"))
        port = int(listeners[0].socket.getsockname()[1])
        execution = await fake.start(
            ExecutionSpec(name="x", executor=ExecutorKind.PROCESS, cmd=("x",)))
        for _ in range(3):
            result = await run_probe(HealthCheck(HttpProbe(f"http://127.0.0.1:{port}/")),
                                     execution)
            assert not result.ok
        nursery.cancel_scope.cancel()
