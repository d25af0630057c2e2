"""Authenticated request/reply over tcp:// and ws:// against what the cryptography allows.

A round trip's ceiling is 1 / (raw carrier echo + 2 sign + 2 verify + 4 seal-or-open): the
carrier's own round trip of a frame of the same size (a plain length-prefixed TCP echo,
a plain trio-websocket echo), plus the request's and the reply's signature made and
checked, plus four seals/opens (each message sealed by its sender, opened by its
receiver) in the cipher suite the links negotiate on this machine (AEGIS-256 with
hardware AES, else XSalsa20-Poly1305: dms/net/_suites.py). Every term is measured in the same run, in rounds that alternate all of
them with the two request/reply loops on nodes kept open across rounds; each ratio is
the median of its rounds' ratios. Not a bench by itself (`make bench` runs
`*_bench.py`): `messaging_bench.py ceiling` runs it, and `messaging_bench.py ceiling
--against TREE` runs it alternately on this checkout and on another one (a subprocess
each, one round at a time) and reports both, with the Python function calls one round
trip costs in each (cProfile's count over both nodes, which share this process).
"""

from __future__ import annotations

import cProfile
import json
import os
import pstats
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import nacl.bindings
import trio
import trio_websocket

from dms.actor import AdmissionPolicy, RateLimit
from dms.net._session import _CIPHERS, COUNTER_BYTES
from dms.net._suites import choose, supported_suites
from dms.node import Node, open_node

UNLIMITED = AdmissionPolicy(rate_limit=RateLimit(rate=1e9, burst=1e9),
                            link_budget=RateLimit(rate=1e9, burst=1e9))
PAYLOAD = "x" * 256
ROUNDS = 7
ROUND_TRIPS = 400
CRYPTO_COUNT = 2000
Timed = Callable[[], Awaitable[float]]  # seconds per round trip
CPU_SPENT: dict[int, float] = {}
"""The CPU seconds per round trip of each timed loop's last run, by `id` of its timer:
this process's thread only (both ends of every loop live in it), so what the machine's
other jobs take does not count, as it does in the wall-clock figures."""

LINK_SUITE = choose(supported_suites(), supported_suites())
"""The suite two nodes on this machine negotiate: the ceiling's seals are in it."""


async def _timed(step: Callable[[], Awaitable[object]], count: int, owner: object) -> float:
    start, cpu = time.perf_counter(), time.thread_time()
    for _ in range(count):
        await step()
    CPU_SPENT[id(owner)] = (time.thread_time() - cpu) / count
    return (time.perf_counter() - start) / count


@asynccontextmanager
async def raw_tcp_echo(size: int) -> AsyncIterator[Timed]:
    """A length-prefixed TCP echo on loopback (TCP_NODELAY, like `TcpCarrier`)."""

    async def echo(stream: trio.SocketStream) -> None:
        buffer = bytearray()
        while data := await stream.receive_some(65536):
            buffer += data
            while len(buffer) >= 4 and len(buffer) >= 4 + int.from_bytes(buffer[:4], "big"):
                end = 4 + int.from_bytes(buffer[:4], "big")
                await stream.send_all(bytes(buffer[:end]))
                del buffer[:end]

    frame = size.to_bytes(4, "big") + bytes(size)
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(trio.serve_tcp, echo, 0)
        port = listeners[0].socket.getsockname()[1]
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        stream.setsockopt(trio.socket.IPPROTO_TCP, trio.socket.TCP_NODELAY, 1)

        async def round_trip() -> None:
            await stream.send_all(frame)
            got = 0
            while got < len(frame):
                got += len(await stream.receive_some(65536))

        async def timed() -> float:
            return await _timed(round_trip, ROUND_TRIPS, timed)

        yield timed
        await stream.aclose()
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def raw_ws_echo(size: int) -> AsyncIterator[Timed]:
    async def echo(request: trio_websocket.WebSocketRequest) -> None:
        ws = await request.accept()
        try:
            while True:
                await ws.send_message(await ws.get_message())
        except trio_websocket.ConnectionClosed:
            pass

    message = bytes(size)
    async with trio.open_nursery() as nursery:
        server = await nursery.start(trio_websocket.serve_websocket, echo, "127.0.0.1", 0, None)
        async with trio_websocket.open_websocket("127.0.0.1", server.port, "/",
                                                 use_ssl=False) as ws:
            async def round_trip() -> None:
                await ws.send_message(message)
                await ws.get_message()

            async def timed() -> float:
                return await _timed(round_trip, ROUND_TRIPS, timed)

            yield timed
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def request_reply(scheme: str) -> AsyncIterator[tuple[Timed, Node]]:
    """Two nodes over `scheme`, the client holding a grant; yields the timed loop."""
    async with open_node(listen=f"{scheme}://127.0.0.1:0", policy=UNLIMITED) as server:
        @server.root.behavior("/bench/echo")
        async def echo(message):  # type: ignore[no-untyped-def]
            return message.args

        async with open_node(bootstrap=[server.address]) as client:
            client.add_proofs(server.grant(client.did, "/bench"))
            await client.mesh.wait_connected()

            async def round_trip() -> None:
                await client.root.invoke(server.root.handle, "/bench/echo", {"p": PAYLOAD})

            for _ in range(50):  # warm caches and the link
                await round_trip()

            async def timed() -> float:
                return await _timed(round_trip, ROUND_TRIPS, timed)

            yield timed, client


def crypto_terms(size: int) -> tuple[float, float, float]:
    """Seconds per Ed25519 sign, per verify, per seal-or-open of `size` bytes, each a
    bare libsodium call (what the node's own signing, checking and sealing come down
    to); the seal and open are the negotiated suite's own (`LINK_SUITE`)."""
    public, secret = nacl.bindings.crypto_sign_seed_keypair(bytes(32))
    message = bytes(size)
    signed = nacl.bindings.crypto_sign(message, secret)
    seal_with, open_with = _CIPHERS[LINK_SUITE]
    key, header = bytes(32), bytes(COUNTER_BYTES)
    sealed = seal_with(message, header, key)

    def per(action: Callable[[], object]) -> float:
        start, cpu = time.perf_counter(), time.thread_time()
        for _ in range(CRYPTO_COUNT):
            action()
        CPU_SPENT[id(action)] = (time.thread_time() - cpu) / CRYPTO_COUNT
        return (time.perf_counter() - start) / CRYPTO_COUNT

    actions = [lambda: nacl.bindings.crypto_sign(message, secret),
               lambda: nacl.bindings.crypto_sign_open(signed, public),
               lambda: seal_with(message, header, key),
               lambda: open_with(sealed, header, key)]
    sign, check, seal, unseal = (per(action) for action in actions)
    cpu_sign, cpu_check, cpu_seal, cpu_unseal = (CPU_SPENT.pop(id(a)) for a in actions)
    CPU_SPENT[id(crypto_terms)] = 2 * cpu_sign + 2 * cpu_check + 2 * (cpu_seal + cpu_unseal)
    return sign, check, (seal + unseal) / 2


def frame_size(node: Node) -> int:
    """The mean sealed frame the node sent so far: what the echo and the crypto carry."""
    metrics = node.mesh.metrics
    return max(1, metrics["link.bytes_out"] // max(1, metrics["link.frames_out"]))


async def measure(rounds: int = ROUNDS) -> dict[str, float]:
    """Median rates and median per-round ratios to each scheme's ceiling."""
    async with request_reply("tcp") as (tcp_rr, client), request_reply("ws") as (ws_rr, _):
        size = frame_size(client)
        async with raw_tcp_echo(size) as tcp_echo, raw_ws_echo(size) as ws_echo:
            rows: dict[str, list[float]] = {k: [] for k in (
                "tcp_echo", "ws_echo", "crypto", "tcp_rr", "ws_rr", "tcp_ratio", "ws_ratio",
                "tcp_cpu_ratio", "ws_cpu_ratio")}
            for n in range(rounds):
                order = [tcp_echo, ws_echo, tcp_rr, ws_rr]
                if n % 2:
                    order.reverse()  # neither side always goes first
                times = {id(f): await f() for f in order}
                sign, check, box = crypto_terms(size)
                crypto = 2 * sign + 2 * check + 4 * box
                t_tcp_echo, t_ws_echo = times[id(tcp_echo)], times[id(ws_echo)]
                t_tcp_rr, t_ws_rr = times[id(tcp_rr)], times[id(ws_rr)]
                rows["tcp_echo"].append(1 / t_tcp_echo)
                rows["ws_echo"].append(1 / t_ws_echo)
                rows["crypto"].append(crypto)
                rows["tcp_rr"].append(1 / t_tcp_rr)
                rows["ws_rr"].append(1 / t_ws_rr)
                rows["tcp_ratio"].append((t_tcp_echo + crypto) / t_tcp_rr)
                rows["ws_ratio"].append((t_ws_echo + crypto) / t_ws_rr)
                cpu = {f: CPU_SPENT[id(f)] for f in order}
                crypto_cpu = CPU_SPENT[id(crypto_terms)]  # 2 sign + 2 verify + 4 seal/open
                rows["tcp_cpu_ratio"].append((cpu[tcp_echo] + crypto_cpu) / cpu[tcp_rr])
                rows["ws_cpu_ratio"].append((cpu[ws_echo] + crypto_cpu) / cpu[ws_rr])
    result = {k: statistics.median(v) for k, v in rows.items()}
    result["frame_bytes"] = size
    return result


def report(result: dict[str, float]) -> str:
    crypto_us = result["crypto"] * 1e6
    lines = [
        f"request/reply vs its ceiling, {ROUNDS} alternating rounds of {ROUND_TRIPS} "
        f"round trips, mean frame {result['frame_bytes']:.0f} B (medians):",
        f"  2 sign + 2 verify + 4 {LINK_SUITE:<16} {crypto_us:8.1f} us per round trip",
    ]
    for scheme, carrier in (("tcp", "length-prefixed TCP"), ("ws", "trio-websocket")):
        echo = result[f"{scheme}_echo"]
        ceiling = 1 / (1 / echo + result["crypto"])
        lines += [
            f"  raw {carrier + ' echo':32} {echo:8,.0f} round trips/s",
            f"  ceiling over {scheme}://                  {ceiling:8,.0f} round trips/s",
            f"  authenticated request/reply, {scheme}://  {result[f'{scheme}_rr']:8,.0f} "
            f"round trips/s = {result[f'{scheme}_ratio']:.2f} of the ceiling "
            f"(median of per-round ratios; target {'0.6' if scheme == 'tcp' else '0.5'})",
            f"    in CPU time of this process (steadier on a shared machine): "
            f"{result[f'{scheme}_cpu_ratio']:.2f} of the ceiling",
        ]
    return "\n".join(lines)


CALL_ROUND_TRIPS = 400


async def calls_per_round_trip(scheme: str = "tcp") -> float:
    """Python function calls (cProfile's count, built-ins included) per warm round trip
    over `scheme`, both nodes and the carrier counted: the lever on the Python side."""
    async with request_reply(scheme) as (timed, _):
        profiler = cProfile.Profile()
        profiler.enable()
        await timed()
        profiler.disable()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    return sum(row[1] for row in stats.values()) / ROUND_TRIPS


def run_tree(tree: str, rounds: int = 1) -> dict[str, float]:
    """`measure` (and the calls per round trip) in a subprocess importing `dms` and
    `ucan` from checkout `tree`: its own ceiling, measured in its own run."""
    env = {**os.environ, "PYTHONPATH": os.path.abspath(tree)}
    done = subprocess.run([sys.executable, os.path.abspath(__file__), "--json", str(rounds)],
                          env=env, cwd=os.path.abspath(tree), check=True,
                          capture_output=True, text=True)
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def against(other: str, rounds: int = ROUNDS) -> str:
    """This checkout against `other`, alternating which runs first, one round of
    `measure` (three of its rounds, their medians) each per round; medians of each one's per-round ratios to its ceiling and
    of the per-round gains (this / other)."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    rows: dict[str, list[dict[str, float]]] = {"this": [], "other": []}
    for n in range(rounds):
        order = [("this", here), ("other", other)]
        if n % 2:
            order.reverse()
        for name, tree in order:
            rows[name].append(run_tree(tree, rounds=3))
        print(f"  round {n + 1}: " + ", ".join(
            f"{name} tcp {rows[name][-1]['tcp_ratio']:.2f} (cpu {rows[name][-1]['tcp_cpu_ratio']:.2f})"
            f" ws {rows[name][-1]['ws_ratio']:.2f} (cpu {rows[name][-1]['ws_cpu_ratio']:.2f})"
            for name in ("other", "this")), flush=True)

    def median(name: str, key: str) -> float:
        return statistics.median(row[key] for row in rows[name])

    def gain(key: str) -> float:
        return statistics.median(a[key] / b[key] for a, b in zip(rows["this"], rows["other"],
                                                                 strict=True))

    lines = [f"request/reply of this checkout ({here}) against {other}, {rounds} "
             f"alternating rounds (medians of per-round figures):"]
    for scheme in ("tcp", "ws"):
        lines.append(
            f"  {scheme}://  of the ceiling: {median('other', scheme + '_ratio'):.2f} -> "
            f"{median('this', scheme + '_ratio'):.2f};  round trips/s "
            f"{median('other', scheme + '_rr'):,.0f} -> {median('this', scheme + '_rr'):,.0f} "
            f"({gain(scheme + '_rr'):.2f}x, median of per-round ratios); in CPU time "
            f"{median('other', scheme + '_cpu_ratio'):.2f} -> "
            f"{median('this', scheme + '_cpu_ratio'):.2f} of the ceiling")
    lines.append(f"  Python calls per tcp round trip: {median('other', 'calls'):.0f} -> "
                 f"{median('this', 'calls'):.0f}")
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--json"]:
        figures = trio.run(measure, int(sys.argv[2]) if sys.argv[2:] else ROUNDS)
        figures["calls"] = trio.run(calls_per_round_trip, "tcp")
        print(json.dumps(figures))
    else:
        print(report(trio.run(measure)))
