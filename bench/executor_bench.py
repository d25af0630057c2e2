"""Executor overhead: start-to-healthy time against the bare launch of the same workload.

1. process: `python -m http.server` until GET answers, via ProcessExecutor + a
   supervised http health check, vs subprocess.Popen + the same polling loop.
2. docker: busybox httpd until GET answers, via DockerExecutor + supervision, vs
   `docker run -d -p 127.0.0.1::8080` + the same polling loop (skipped without engine).
3. health-check cost: 100 supervised allocations (fake executor, tcp probe on a local
   port) at 1 s interval: CPU seconds of this process per wall second.

Ratios are medians over a few runs measured in this run; target below 1.5x.
"""

from __future__ import annotations

import math
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dms.executor import ExecutionSpec, ExecutorKind, PortMapping, ProcessExecutor  # noqa: E402
from dms.supervise import (  # noqa: E402
    AllocationSupervisor,
    EventKind,
    HealthCheck,
    HttpProbe,
    StatusEvent,
    TcpProbe,
    http_get,
)

RUNS = 5
IMAGE = "dms-test/busybox:latest"
POLL = 0.02


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def poll_until_up(url: str) -> None:
    while True:
        try:
            status, _ = await http_get(url)
            if status == 200:
                return
        except OSError:
            pass
        await trio.sleep(POLL)


async def bare_process(port: int) -> float:
    began = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "http.server", "-b", "127.0.0.1", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    await poll_until_up(f"http://127.0.0.1:{port}/")
    took = time.perf_counter() - began
    process.kill()
    process.wait()
    return took


async def supervised(executor: object, spec: ExecutionSpec, url: str) -> float:
    send, receive = trio.open_memory_channel[StatusEvent](math.inf)
    check = HealthCheck(HttpProbe(url), start_interval=POLL, start_period=30, interval=1)
    supervisor = AllocationSupervisor(executor, spec, send, health=check, stop_grace=1)  # type: ignore[arg-type]
    began = time.perf_counter()
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        took = time.perf_counter() - began
        assert supervisor.status().phase is EventKind.HEALTHY
        nursery.cancel_scope.cancel()
    return took


async def process_overhead() -> tuple[float, float]:
    bare, ours = [], []
    with tempfile.TemporaryDirectory() as root:
        async with ProcessExecutor(Path(root)) as executor:
            for _ in range(RUNS):
                port = free_port()
                bare.append(await bare_process(port))
                port = free_port()
                spec = ExecutionSpec(
                    name="web",
                    executor=ExecutorKind.PROCESS,
                    cmd=(sys.executable, "-m", "http.server", "-b", "127.0.0.1", str(port)),
                )
                ours.append(await supervised(executor, spec, f"http://127.0.0.1:{port}/"))
    return statistics.median(bare), statistics.median(ours)


SERVE = "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www"


async def bare_docker() -> float:
    began = time.perf_counter()
    done = await trio.run_process(
        ["docker", "run", "-d", "--rm", "-p", "127.0.0.1::8080", IMAGE, "sh", "-c", SERVE],
        capture_stdout=True,
    )
    container = done.stdout.decode().strip()
    mapped = await trio.run_process(["docker", "port", container, "8080"], capture_stdout=True)
    port = mapped.stdout.decode().split(":")[-1].strip()
    await poll_until_up(f"http://127.0.0.1:{port}/")
    took = time.perf_counter() - began
    await trio.run_process(["docker", "rm", "-f", container], capture_stdout=True)
    return took


async def docker_overhead() -> tuple[float, float] | str:
    from dms.executor import EngineUnavailable
    from dms.executor._docker import DockerExecutor

    try:
        executor = DockerExecutor("bench", close_grace=0)
        await executor.__aenter__()
    except EngineUnavailable as error:
        return str(error)
    bare, ours = [], []
    try:
        for _ in range(RUNS):
            bare.append(await bare_docker())
            port = free_port()
            spec = ExecutionSpec(
                name="web",
                executor=ExecutorKind.DOCKER,
                image=IMAGE,
                cmd=("sh", "-c", SERVE),
                ports=(PortMapping(8080, port),),
            )
            ours.append(await supervised(executor, spec, f"http://127.0.0.1:{port}/"))
    finally:
        await executor.__aexit__(None, None, None)
    return statistics.median(bare), statistics.median(ours)


async def health_check_cpu_share(allocations: int = 100, seconds: float = 10.0) -> float:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.dms.supervise.supervise_fake_executor import FakeExecutor

    fake = FakeExecutor()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    port = listener.getsockname()[1]
    send, receive = trio.open_memory_channel[StatusEvent](math.inf)
    # a short start period so 100 supervisors come up fast; then one probe a second each
    check = HealthCheck(TcpProbe(f"127.0.0.1:{port}"), interval=1.0, start_period=5,
                        start_interval=0.05)

    async def accept_and_close() -> None:
        sock = trio.socket.from_stdlib_socket(listener)
        while True:
            conn, _ = await sock.accept()
            conn.close()

    async def discard() -> None:
        async for _ in receive:
            pass

    async with trio.open_nursery() as nursery:
        nursery.start_soon(accept_and_close)
        nursery.start_soon(discard)
        for index in range(allocations):
            spec = ExecutionSpec(name=f"a{index}", executor=ExecutorKind.PROCESS, cmd=("x",))
            supervisor = AllocationSupervisor(fake, spec, send.clone(), health=check)
            await nursery.start(supervisor.run)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await trio.sleep(seconds)
        share = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
        nursery.cancel_scope.cancel()
    return share


async def main() -> None:
    bare, ours = await process_overhead()
    print(
        f"process start-to-healthy: bare {bare * 1000:.0f} ms, dms {ours * 1000:.0f} ms, "
        f"ratio {ours / bare:.2f}x"
    )
    result = await docker_overhead()
    if isinstance(result, str):
        print(f"docker start-to-healthy: skipped ({result})")
    else:
        bare, ours = result
        print(
            f"docker start-to-healthy: bare {bare * 1000:.0f} ms, dms {ours * 1000:.0f} ms, "
            f"ratio {ours / bare:.2f}x"
        )
    share = await health_check_cpu_share()
    print(f"health checks, 100 allocations at 1 s (tcp): {share * 100:.1f}% of one core")


if __name__ == "__main__":
    trio.run(main)
