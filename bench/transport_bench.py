"""Transport speed, with ratios against baselines measured in the same run.

- secure link round trips/s (256 B; handshake done, every frame sealed and opened) over
  tcp:// and ws://, each against its raw carrier's echo of the same frame (a plain
  length-prefixed TCP echo, a plain trio-websocket echo), in alternating rounds: the
  median of per-round secure/raw ratios (the ceiling is 1.0 minus four secretboxes);
- memory transport one-way throughput (frames/s, MB/s) at 256 B and 64 KiB.

Run: .venv/bin/python bench/transport_bench.py
"""

from __future__ import annotations

import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import nacl.signing
import trio
from link_ceiling import raw_tcp_echo, raw_ws_echo

from dms.net import Link, MemoryNetwork, TcpTransport, WebsocketTransport
from dms.net._session import FRAME_OVERHEAD

PAYLOAD = bytes(256)
ROUND_TRIPS = 3000
ROUNDS = 7


async def _echo_link(link: Link) -> None:
    while True:
        await link.send(await link.receive())


@asynccontextmanager
async def secure_link(scheme: str) -> AsyncIterator[Callable[[], Awaitable[float]]]:
    """A link over `scheme` to an echoing listener; yields the timed loop (s per trip)."""
    transport = {"tcp": TcpTransport, "ws": WebsocketTransport}[scheme]
    server = transport(nacl.signing.SigningKey.generate())
    async with trio.open_nursery() as nursery:
        address = await nursery.start(server.listen, f"{scheme}://127.0.0.1:0", _echo_link)
        async with transport(nacl.signing.SigningKey.generate()) as client:
            link = await client.connect(address, expect_peer=server.peer_id)
            for _ in range(100):
                await link.send(PAYLOAD)
                await link.receive()

            async def timed() -> float:
                start = time.perf_counter()
                for _ in range(ROUND_TRIPS // 3):
                    await link.send(PAYLOAD)
                    await link.receive()
                return (time.perf_counter() - start) / (ROUND_TRIPS // 3)

            yield timed
            await link.aclose()
        nursery.cancel_scope.cancel()


async def link_ratios() -> dict[str, tuple[float, float, float]]:
    """Per scheme: (median raw round trips/s, median secure round trips/s, median of
    per-round secure/raw ratios)."""
    size = len(PAYLOAD) + FRAME_OVERHEAD
    async with secure_link("tcp") as tcp, secure_link("ws") as ws, \
            raw_tcp_echo(size) as tcp_raw, raw_ws_echo(size) as ws_raw:
        loops = {"tcp": (tcp_raw, tcp), "ws": (ws_raw, ws)}
        rows: dict[str, list[tuple[float, float]]] = {"tcp": [], "ws": []}
        for n in range(ROUNDS):
            for scheme, (raw, secure) in (loops.items() if n % 2 else reversed(loops.items())):
                first, second = (raw, secure) if n % 2 else (secure, raw)
                times = {id(first): await first(), id(second): await second()}
                rows[scheme].append((times[id(raw)], times[id(secure)]))
    return {scheme: (statistics.median(1 / r for r, _ in got),
                     statistics.median(1 / s for _, s in got),
                     statistics.median(r / s for r, s in got))
            for scheme, got in rows.items()}


async def memory_throughput(size: int, frames: int) -> tuple[float, float]:
    network = MemoryNetwork()
    done = trio.Event()
    payload = bytes(size)

    async def sink(link: Link) -> None:
        for _ in range(frames):
            await link.receive()
        done.set()

    async with trio.open_nursery() as nursery:
        receiver = network.transport(nacl.signing.SigningKey.generate())
        address = await nursery.start(receiver.listen, "memory://", sink)
        async with network.transport(nacl.signing.SigningKey.generate()) as sender:
            link = await sender.connect(address)
            start = time.perf_counter()
            sent = 0
            while sent < frames:
                try:
                    link.send_nowait(payload)
                    sent += 1
                except Exception:  # LinkBusy: let the writer drain
                    await trio.sleep(0)
            await done.wait()
            elapsed = time.perf_counter() - start
        nursery.cancel_scope.cancel()
    return frames / elapsed, frames * size / elapsed / 1e6


async def main() -> None:
    for scheme, (raw, secure, ratio) in (await link_ratios()).items():
        carrier = "length-prefixed TCP" if scheme == "tcp" else "trio-websocket"
        print(f"raw {carrier} echo {raw:9.0f} round trips/s  (256 B + frame overhead)")
        print(f"secure {scheme}:// link {secure:12.0f} round trips/s  = {ratio:.2f}x raw "
              f"(median of {ROUNDS} per-round ratios)")
    for size, frames in ((256, 50_000), (64 * 1024, 3_000)):
        rate, mbps = await memory_throughput(size, frames)
        print(f"memory transport {size:>6} B  {rate:9.0f} frames/s  {mbps:8.1f} MB/s (one way)")


if __name__ == "__main__":
    trio.run(main)
