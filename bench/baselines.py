"""Baselines the benches measure against in the same run (not a bench itself: `make
bench` runs only `*_bench.py`). Imported by the bench scripts, run from `bench/`."""

from __future__ import annotations

import time

import trio
import trio_websocket


async def raw_websocket_echo(payload: bytes | str, count: int, *, warmup: int = 0) -> float:
    """Round trips/s of `payload` through a plain trio-websocket echo server on loopback,
    timed after `warmup` untimed round trips."""

    async def echo(request: trio_websocket.WebSocketRequest) -> None:
        ws = await request.accept()
        try:
            while True:
                await ws.send_message(await ws.get_message())
        except trio_websocket.ConnectionClosed:
            pass

    async with trio.open_nursery() as nursery:
        server = await nursery.start(trio_websocket.serve_websocket, echo, "127.0.0.1", 0, None)
        async with trio_websocket.open_websocket(
            "127.0.0.1", server.port, "/", use_ssl=False
        ) as ws:
            for _ in range(warmup):
                await ws.send_message(payload)
                await ws.get_message()
            start = time.perf_counter()
            for _ in range(count):
                await ws.send_message(payload)
                await ws.get_message()
            elapsed = time.perf_counter() - start
        nursery.cancel_scope.cancel()
    return count / elapsed
