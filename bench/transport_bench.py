"""Transport speed, with ratios against baselines measured in the same run.

- raw trio-websocket echo round trips/s (256 B) vs the secure websocket link's
  round trips/s (handshake done, every frame sealed and opened);
- memory transport one-way throughput (frames/s, MB/s) at 256 B and 64 KiB.

Run: .venv/bin/python bench/transport_bench.py
"""

from __future__ import annotations

import time

import nacl.signing
import trio
from baselines import raw_websocket_echo

from dms.net import Link, MemoryNetwork, WebsocketTransport

PAYLOAD = bytes(256)
ROUND_TRIPS = 3000


async def _echo_link(link: Link) -> None:
    while True:
        await link.send(await link.receive())


async def secure_link_round_trips() -> float:
    server = WebsocketTransport(nacl.signing.SigningKey.generate())
    async with trio.open_nursery() as nursery:
        address = await nursery.start(server.listen, "ws://127.0.0.1:0", _echo_link)
        async with WebsocketTransport(nacl.signing.SigningKey.generate()) as client:
            link = await client.connect(address, expect_peer=server.peer_id)
            for _ in range(100):
                await link.send(PAYLOAD)
                await link.receive()
            start = time.perf_counter()
            for _ in range(ROUND_TRIPS):
                await link.send(PAYLOAD)
                await link.receive()
            elapsed = time.perf_counter() - start
            await link.aclose()
        nursery.cancel_scope.cancel()
    return ROUND_TRIPS / elapsed


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
    raw = await raw_websocket_echo(PAYLOAD, ROUND_TRIPS, warmup=100)
    secure = await secure_link_round_trips()
    print(f"raw trio-websocket echo   {raw:9.0f} round trips/s  (256 B)")
    print(f"secure websocket link     {secure:9.0f} round trips/s  (256 B)")
    print(f"ratio secure / raw        {secure / raw:9.2f}")
    for size, frames in ((256, 50_000), (64 * 1024, 3_000)):
        rate, mbps = await memory_throughput(size, frames)
        print(f"memory transport {size:>6} B  {rate:9.0f} frames/s  {mbps:8.1f} MB/s (one way)")


if __name__ == "__main__":
    trio.run(main)
