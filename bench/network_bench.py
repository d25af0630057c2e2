"""The local pump's TCP throughput against a veth pair between the same two namespaces.

Two namespaces hold one allocation each (`ensemble_network`), joined twice: through
their TUNs and this process's pump, and by a veth pair (the kernel-only baseline).
A Python TCP sender in one namespace streams to a receiver in the other for
ROUND_SECONDS over each path in turn; each ratio is the median of per-round ratios
(pump / veth measured back to back), so a noisy shared machine moves both alike.
Also: the pump's CPU per MB moved (this process's CPU time over the pump rounds:
the pump is all this process does then) and UDP round-trip time over each path.

Variants (the issue's spike): one packet per wakeup; draining the TUN per wakeup;
draining with TUN offload (virtio header + TSO: ~64 KiB packets at MTU 1400). And the
path deployments take: two providers' pumps joined by two real `Mesh`es over a
node link on loopback, tcp:// (the default) and websocket (`Mesh.send_tunnel` / `Mesh.tunnel`: the node's handshake,
session crypto and framing), with and without offload; the CPU figure then includes
both meshes (the whole node's work), as it all runs in this process. The meshes'
links negotiate their session suite as nodes do (AEGIS-256 where the CPU has hardware
AES); one variant forces XSalsa20-Poly1305 (as a node without hardware AES would) for
comparison.

`--suites [PAIRS]` compares the two suites on the tcp:// mesh with TSO instead: PAIRS
(default 5) alternating runs of each (XSalsa20 first, then AEGIS-256), each run its own
ROUNDS rounds against veth; it prints each suite's median tunnel/veth ratio and CPU
ms/MB, and the medians of the per-pair AEGIS/XSalsa ratios. The ceiling is veth (1.0x):
the kernel-only path between the same two namespaces, measured in the same rounds.

Needs root, /dev/net/tun and iproute2. Run: sudo .venv/bin/python bench/network_bench.py
[label substrings: only the variants whose label holds one, e.g. "(tcp), TSO" "offload (TSO)"]
[--suites [PAIRS]]. All traffic stays inside the two namespaces the bench creates and
removes.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import nacl.signing
import trio
import trio.testing

import dms.net._suites
from dms.net import Mesh, TcpTransport, WebsocketTransport
from dms.net._handshake import SessionKeys
from dms.net._session import SecureSession
from dms.net._suites import AEGIS256, XSALSA20_POLY1305
from dms.network import (
    Pump,
    ensemble_network,
    namespace_names,
    plan_addresses,
    records_for,
)
from dms.network._netns import delete_namespace, run_ip

ROUNDS = int(os.environ.get("NETWORK_BENCH_ROUNDS", "5"))
ROUND_SECONDS = float(os.environ.get("NETWORK_BENCH_SECONDS", "1.0"))
VETH_A, VETH_B = "172.31.255.1", "172.31.255.2"
PORT = 5201

RECEIVER = """
import socket, threading
def drain(c):
    total = 0
    while (chunk := c.recv(262144)):
        total += len(chunk)
    c.sendall(str(total).encode()); c.close()
def echo():
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("0.0.0.0", PORT))
    while True:
        data, peer = u.recvfrom(64); u.sendto(data, peer)
threading.Thread(target=echo, daemon=True).start()
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", PORT)); s.listen(8); print("ready", flush=True)
while True:
    c, _ = s.accept(); threading.Thread(target=drain, args=(c,), daemon=True).start()
""".replace("PORT", str(PORT))

SENDER = """
import json, socket, sys, time
host, seconds = sys.argv[1], float(sys.argv[2])
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(1); u.connect((host, PORT))
rtts = []
for _ in range(50):
    t = time.perf_counter(); u.send(b"p"); u.recv(64); rtts.append(time.perf_counter() - t)
rtts.sort()
c = socket.create_connection((host, PORT), timeout=10)
block = b"x" * 262144
start = time.perf_counter()
while time.perf_counter() - start < seconds:
    c.sendall(block)
c.shutdown(socket.SHUT_WR)
total = int(c.recv(100)); elapsed = time.perf_counter() - start
print(json.dumps({"bps": total * 8 / elapsed, "bytes": total, "rtt": rtts[len(rtts) // 2]}))
""".replace("PORT", str(PORT))


IPERF3 = shutil.which("iperf3")


async def send(namespace: str, host: str) -> dict[str, float]:
    """One round over one path: the Python sender's figures (RTT, and throughput
    unless iperf3 is installed, whose single-stream figure then replaces it)."""
    with trio.fail_after(ROUND_SECONDS * 3 + 20):
        return await _send(namespace, host)


async def _send(namespace: str, host: str) -> dict[str, float]:
    done = await trio.run_process(
        ["ip", "netns", "exec", namespace, sys.executable, "-c", SENDER, host,
         "0.05" if IPERF3 else str(ROUND_SECONDS)],
        capture_stdout=True)
    result: dict[str, float] = json.loads(done.stdout)
    if IPERF3:
        done = await trio.run_process(
            ["ip", "netns", "exec", namespace, IPERF3, "-c", host, "-p", str(PORT + 1), "-J",
             "-t", str(max(1, round(ROUND_SECONDS)))], capture_stdout=True)
        received = json.loads(done.stdout)["end"]["sum_received"]
        result["bps"], result["bytes"] = received["bits_per_second"], received["bytes"]
    return result


async def variant(label: str, prefix: str, offload: bool, batch: int,
                  two_providers: str | None = None) -> dict[str, float]:
    """One pump configuration against veth. With `two_providers`, a and b are hosted
    by two networks whose pumps exchange frames sealed and opened by the node's link
    session (XSalsa20-Poly1305 per frame): "memory" hands them over in process,
    "tcp" writes them length-prefixed to a loopback TCP connection (the link's
    syscalls and copies included)."""
    plan = plan_addresses("bench-" + prefix, ["a", "b"], {})
    a_ns, b_ns = prefix + "a", prefix + "b"
    records = records_for(plan)
    async with contextlib.AsyncExitStack() as stack:
        if not two_providers:
            net = await stack.enter_async_context(
                ensemble_network(plan, records, offload=offload, batch=batch))
            await net.add("a", a_ns)
            await net.add("b", b_ns)
        else:
            to_b, from_a = trio.open_memory_channel[bytes](1024)
            to_a, from_b = trio.open_memory_channel[bytes](1024)
            route: dict[str, Callable[[str, bytes], None]] = {
                "a": lambda peer, frame: to_b.send_nowait(frame),
                "b": lambda peer, frame: to_a.send_nowait(frame)}
            net_a = await stack.enter_async_context(ensemble_network(
                plan, records, offload=offload, batch=batch,
                send=lambda peer, frame: route["a"](peer, frame)))
            net_b = await stack.enter_async_context(ensemble_network(
                plan, records, offload=offload, batch=batch,
                send=lambda peer, frame: route["b"](peer, frame)))
            await net_a.add("a", a_ns)
            await net_b.add("b", b_ns)
            net_a.pump.grant({"B": [plan.address_of("b")]})
            net_b.pump.grant({"A": [plan.address_of("a")]})
            carriers = await stack.enter_async_context(trio.open_nursery())
            if two_providers in ("mesh", "mesh-tcp", "mesh-tcp-xsalsa20"):
                if two_providers == "mesh-tcp-xsalsa20":
                    stack.enter_context(_without_hardware_aes())
                suite = await _join_by_meshes(
                    stack, carriers, route, net_a.pump, net_b.pump,
                    scheme="ws" if two_providers == "mesh" else "tcp")
                label = f"{label} [{suite}]"
            elif two_providers == "tcp":
                listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
                a_end = await trio.testing.open_stream_to_socket_listener(listener)
                b_end = await listener.accept()
                await listener.aclose()
                for frames, near, far, pump, peer in ((from_a, a_end, b_end, net_b.pump, "A"),
                                                       (from_b, b_end, a_end, net_a.pump, "B")):
                    tx, rx = _sessions(peer)
                    carriers.start_soon(_write_frames, frames, near, tx)
                    carriers.start_soon(_read_frames, far, rx, pump, peer)
            else:
                carriers.start_soon(_carry, from_a, net_b.pump, "A")
                carriers.start_soon(_carry, from_b, net_a.pump, "B")
            stack.callback(carriers.cancel_scope.cancel)
        veth = prefix[:8] + "v"
        run_ip("link", "add", veth + "a", "netns", a_ns, "type", "veth",
               "peer", "name", veth + "b", "netns", b_ns)
        run_ip("addr", "add", VETH_A + "/30", "dev", veth + "a", namespace=a_ns)
        run_ip("link", "set", veth + "a", "up", namespace=a_ns)
        run_ip("addr", "add", VETH_B + "/30", "dev", veth + "b", namespace=b_ns)
        run_ip("link", "set", veth + "b", "up", namespace=b_ns)
        async with trio.open_nursery() as nursery:
            await nursery.start(_receiver, b_ns, RECEIVER_COMMAND)
            if IPERF3:
                await nursery.start(_receiver, b_ns, [IPERF3, "-s", "-p", str(PORT + 1), "--forceflush"])
            tunnel = str(plan.address_of("b"))
            pumps = [net_a.pump, net_b.pump] if two_providers else [net.pump]
            ratios, rates, cpu_per_mb, rtt_extra, frames_per_mb = [], [], [], [], []
            for _ in range(ROUNDS):
                base = await send(a_ns, VETH_B)
                sent_before = sum(pump.frames_sent for pump in pumps)
                cpu = time.process_time()
                measured = await send(a_ns, tunnel)
                cpu = time.process_time() - cpu
                sent = sum(pump.frames_sent for pump in pumps) - sent_before
                frames_per_mb.append(sent / (measured["bytes"] / 1e6))
                ratios.append(measured["bps"] / base["bps"])
                rates.append(measured["bps"])
                cpu_per_mb.append(cpu * 1000 / (measured["bytes"] / 1e6))
                rtt_extra.append((measured["rtt"] - base["rtt"]) * 1000)
            nursery.cancel_scope.cancel()
    result = {"ratio": statistics.median(ratios), "gbps": statistics.median(rates) / 1e9,
              "cpu_ms_per_mb": statistics.median(cpu_per_mb),
              "rtt_overhead_ms": statistics.median(rtt_extra),
              "veth_gbps": base["bps"] / 1e9,
              "frames_per_mb": statistics.median(frames_per_mb)}
    print(f"{label:30s} {result['gbps']:6.2f} Gbit/s  {result['ratio']:5.3f}x veth  "
          f"{result['cpu_ms_per_mb']:5.2f} ms CPU/MB  RTT +{result['rtt_overhead_ms']:.3f} ms  "
          + (f"{result['frames_per_mb']:4.1f} frames/MB  " if two_providers else "") +
          f"(veth {result['veth_gbps']:.1f} Gbit/s)",
          flush=True)
    return result


RECEIVER_COMMAND = [sys.executable, "-u", "-c", RECEIVER]

VARIANTS: list[tuple[str, bool, int, str | None]] = [
    ("one packet per wakeup", False, 1, None),
    ("drain per wakeup (batch 64)", False, 64, None),
    ("drain + TUN offload (TSO)", True, 64, None),
    ("2 providers, sealed frames", False, 64, "memory"),
    ("2 providers, sealed, offload", True, 64, "memory"),
    ("2 providers, TCP link, offload", True, 64, "tcp"),
    ("2 providers, node mesh (tcp)", False, 64, "mesh-tcp"),
    ("2 providers, node mesh (tcp), TSO", True, 64, "mesh-tcp"),
    ("2 providers, node mesh (tcp), TSO, XSalsa20 forced", True, 64, "mesh-tcp-xsalsa20"),
    ("2 providers, node mesh (ws)", False, 64, "mesh"),
    ("2 providers, node mesh (ws), TSO", True, 64, "mesh"),
]
ONLY = sys.argv[1:]
"""Substrings of the labels to run (all when none): `network_bench.py "(tcp), TSO"`."""


async def _join_by_meshes(stack: contextlib.AsyncExitStack, nursery: trio.Nursery,
                          route: dict[str, Callable[[str, bytes], None]],
                          pump_a: Pump, pump_b: Pump, scheme: str) -> str:
    """Two meshes on a node link (`scheme`: tcp or ws) on loopback: each pump's frames
    go out with `send_tunnel` and come in through the other mesh's `tunnel` (as from A
    or B). Returns the session suite the link negotiated."""
    key_a, key_b = nacl.signing.SigningKey.generate(), nacl.signing.SigningKey.generate()
    carrier = TcpTransport if scheme == "tcp" else WebsocketTransport
    mesh_b = Mesh(key_b, carrier(key_b), listen=f"{scheme}://127.0.0.1:0")
    await nursery.start(mesh_b.run)
    assert mesh_b.listen_address is not None
    mesh_a = Mesh(key_a, carrier(key_a), bootstrap=[mesh_b.listen_address])
    await nursery.start(mesh_a.run)
    with trio.fail_after(10):
        await mesh_a.wait_connected(1)
    route["a"] = lambda peer, frame: mesh_a.send_tunnel(mesh_b.peer_id, frame)
    route["b"] = lambda peer, frame: mesh_b.send_tunnel(mesh_a.peer_id, frame)
    mesh_b.tunnel = lambda peer, frame: pump_b.deliver("A", frame)
    mesh_a.tunnel = lambda peer, frame: pump_a.deliver("B", frame)
    stack.push_async_callback(mesh_a.aclose)
    stack.push_async_callback(mesh_b.aclose)
    return mesh_a._links[mesh_b.peer_id].suite


@contextlib.contextmanager
def _without_hardware_aes() -> Iterator[None]:
    """Both nodes in this process offer XSalsa20-Poly1305 alone, as nodes on a CPU
    without hardware AES do: the link negotiates it through the real handshake."""
    saved = dms.net._suites.hardware_aes
    dms.net._suites.hardware_aes = lambda: False
    try:
        yield
    finally:
        dms.net._suites.hardware_aes = saved


def _sessions(peer: str) -> tuple[SecureSession, SecureSession]:
    key = os.urandom(32)
    keys = SessionKeys(key, key, peer, None, b"")
    return SecureSession(keys), SecureSession(keys)


async def _write_frames(frames: trio.MemoryReceiveChannel[bytes], stream: trio.SocketStream,
                        session: SecureSession) -> None:
    async for frame in frames:
        sealed = session.seal(frame)
        await stream.send_all(struct.pack("!I", len(sealed)) + sealed)


async def _read_frames(stream: trio.SocketStream, session: SecureSession, pump: Pump,
                       peer: str) -> None:
    buffer = bytearray()
    while data := await stream.receive_some(1 << 20):
        buffer += data
        while len(buffer) >= 4:
            (length,) = struct.unpack_from("!I", buffer)
            if len(buffer) < 4 + length:
                break
            pump.deliver(peer, session.open(bytes(buffer[4:4 + length])))
            del buffer[:4 + length]


async def _carry(frames: trio.MemoryReceiveChannel[bytes], pump: Pump, peer: str) -> None:
    sender, receiver = _sessions(peer)
    async for frame in frames:
        pump.deliver(peer, receiver.open(sender.seal(frame)))


async def _receiver(namespace: str, command: list[str],
                    task_status: trio.TaskStatus[None]) -> None:
    """Run `command` in `namespace` until cancelled; started once it prints."""
    process = await trio.lowlevel.open_process(["ip", "netns", "exec", namespace, *command],
                                               stdout=subprocess.PIPE)
    assert process.stdout is not None
    await process.stdout.receive_some(16)  # "ready", or iperf3's banner
    task_status.started()
    try:
        await process.wait()
    finally:
        process.kill()


async def compare_suites(prefix: str, pairs: int) -> None:
    """The tcp:// mesh with TSO under each suite, in alternating runs (XSalsa20 first):
    each suite's median ratio to veth (the ceiling) and CPU per MB, and the medians of
    the per-pair AEGIS/XSalsa ratios."""
    runs: dict[str, list[dict[str, float]]] = {XSALSA20_POLY1305: [], AEGIS256: []}
    for number in range(pairs):
        for suite, mode in ((XSALSA20_POLY1305, "mesh-tcp-xsalsa20"), (AEGIS256, "mesh-tcp")):
            runs[suite].append(await variant(
                f"pair {number + 1}, tcp mesh, TSO", prefix,
                offload=True, batch=64, two_providers=mode))
    print(f"\n{pairs} alternating pairs, each run {ROUNDS} rounds; ceiling: veth = 1.0x")
    for suite, results in runs.items():
        print(f"  {suite:17s} tunnel/veth {statistics.median(r['ratio'] for r in results):5.3f}x"
              f"  CPU {statistics.median(r['cpu_ms_per_mb'] for r in results):5.2f} ms/MB"
              f"  {statistics.median(r['gbps'] for r in results):5.2f} Gbit/s")
    for key, name in (("ratio", "throughput (tunnel/veth)"), ("cpu_ms_per_mb", "CPU per MB")):
        per_pair = [a[key] / x[key] for a, x in zip(runs[AEGIS256], runs[XSALSA20_POLY1305],
                                                    strict=True)]
        print(f"  AEGIS-256 / XSalsa20 {name}: median {statistics.median(per_pair):.2f}x "
              f"(pairs: {', '.join(f'{r:.2f}' for r in per_pair)})")


async def main() -> int:
    if os.geteuid() != 0 or not os.path.exists("/dev/net/tun"):
        print("network_bench: needs root and /dev/net/tun", file=sys.stderr)
        return 2
    prefix = f"dmsb-{secrets.token_hex(3)}-"
    try:
        print(f"throughput by {'iperf3' if IPERF3 else 'a Python sender'}, single stream; "
              f"{ROUNDS} rounds of {ROUND_SECONDS:.1f} s per path; ratios are medians of "
              "per-round pump/veth", flush=True)
        if ONLY[:1] == ["--suites"]:
            await compare_suites(prefix, int(ONLY[1]) if len(ONLY) > 1 else 5)
            return 0
        for label, offload, batch, two_providers in VARIANTS:
            if not ONLY or any(word in label for word in ONLY):
                await variant(label, prefix, offload=offload, batch=batch,
                              two_providers=two_providers)
    finally:
        for name in namespace_names():
            if name.startswith(prefix):
                delete_namespace(name)
    return 0


if __name__ == "__main__":
    sys.exit(trio.run(main))
