"""Overlay scale on the memory transport: the mesh before (the code this branch started
from, or any checkout given with --baseline) and after, for 10 to 500 nodes.

Each run is a process of its own (so that its RSS is its own) under trio's MockClock
(autojump: simulated time, so the wall time is the CPU time and nothing waits on the
clock). It starts N meshes, each bootstrapping to a random earlier one, runs 30
simulated seconds of start-up, then 5 publishers publish 10 warm-up publications and
then 20 measured ones, 50 ms apart, all nodes subscribed, and waits 10 simulated
seconds. Figures:

- start-up CPU: process CPU from the first mesh to the end of the 30 s (handshakes, peer
  exchange, pings, periodic upkeep);
- RSS per node: the process's RSS growth over the start-up, divided by N;
- degree: links per node (before: every link; after: overlay neighbours), mean and max;
- frames per publication: sealed frames sent by all nodes during the measured window,
  per publication, everything included (the window has one exchange round: PEERS, PING,
  PONG and the anti-entropy IHAVE on every link), and of those the publication's own
  (PUBLISH, IHAVE, GRAFT, PRUNE); the ceiling is N - 1 (a spanning tree: every node
  gets it once, and nothing else is sent);
- CPU per publication: process CPU over the measured window (10 s simulated included:
  the periodic announcements and upkeep of every node), per publication;
- delivery: the share of (node, publication) pairs delivered, the publisher excluded;
  the ceiling is 100 %.

Sizes both variants run are measured in alternating rounds (baseline first in even
rounds, the new code first in odd ones) and the "after/before" figures are the median of
the per-round ratios. The baseline is skipped past --baseline-max nodes: its full mesh
grows with the square of N (100 nodes take it about a minute of CPU).

Run: python bench/overlay_bench.py [--sizes 10,50,100,200] [--rounds 3]
     [--baseline-max 100] [--baseline DIR] [--after DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STARTUP = 30.0
WARMUP, MEASURED, PUBLISHERS = 10, 20, 5


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure(count: int, seed: int) -> dict[str, float]:
    """One run, in this process, with whichever `dms` is importable."""
    import nacl.signing
    import trio
    import trio.testing

    from dms.net import Backoff, MemoryNetwork, Mesh
    from dms.net._link import Link

    rng = random.Random(seed)
    result: dict[str, float] = {}
    kinds: Counter[int] = Counter()
    queue = Link.send_nowait

    def counted(self: Link, frame: bytes, *, relayed: bool = False) -> None:
        queue(self, frame, relayed=relayed)
        kinds[frame[0]] += 1  # queued (a full buffer raises): what the link will send

    Link.send_nowait = counted  # type: ignore[method-assign]

    async def main() -> None:
        network = MemoryNetwork(seed=seed)
        meshes: list[Mesh] = []
        async with trio.open_nursery() as nursery:
            rss0, cpu0 = _rss_bytes(), time.process_time()
            for _ in range(count):
                key = nacl.signing.SigningKey(rng.randbytes(32))
                bootstrap = [rng.choice(meshes).listen_address] if meshes else []
                mesh = Mesh(key, network.transport(key), listen="memory://",
                            bootstrap=bootstrap, backoff=Backoff(initial=0.2, maximum=10.0))
                await nursery.start(mesh.run)
                mesh.subscribe("/t")
                meshes.append(mesh)
            await trio.sleep(STARTUP)
            result["startup_cpu_s"] = time.process_time() - cpu0
            result["rss_per_node_kib"] = (_rss_bytes() - rss0) / count / 1024
            degrees = [len(getattr(m, "overlay_peers", m.connected_peers)()) for m in meshes]
            result["degree_mean"] = statistics.mean(degrees)
            result["degree_max"] = max(degrees)
            publishers = rng.sample(meshes, min(PUBLISHERS, count))
            for n in range(WARMUP):
                await publishers[n % len(publishers)].publish("/t", b"warm-up %d" % n)
                await trio.sleep(0.05)
            await trio.sleep(10)
            for mesh in meshes:
                _drain(mesh)
            frames0 = sum(m.metrics["link.frames_out"] for m in meshes)
            kinds.clear()
            cpu1 = time.process_time()
            sent: list[tuple[Mesh, bytes]] = []
            for n in range(MEASURED):
                publisher = publishers[n % len(publishers)]
                payload = b"measured %d" % n
                await publisher.publish("/t", payload)
                sent.append((publisher, payload))
                await trio.sleep(0.05)
            await trio.sleep(10)
            result["cpu_per_publication_ms"] = (time.process_time() - cpu1) / MEASURED * 1000
            frames = sum(m.metrics["link.frames_out"] for m in meshes) - frames0
            result["frames_per_publication"] = frames / MEASURED
            result["pubsub_frames_per_publication"] = sum(
                kinds[kind] for kind in PUBSUB_KINDS) / MEASURED
            got = {m.peer_id: _drain(m) for m in meshes}
            wanted = delivered = 0
            for mesh in meshes:
                for publisher, payload in sent:
                    if publisher is not mesh:
                        wanted += 1
                        delivered += payload in got[mesh.peer_id]
            result["delivery"] = delivered / wanted
            nursery.cancel_scope.cancel()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    return result


def _drain(mesh: object) -> set[bytes]:
    import trio

    got = set()
    while True:
        try:
            got.add(mesh.incoming.receive_nowait().payload)  # type: ignore[attr-defined]
        except trio.WouldBlock:
            return got


def run_variant(code: Path, count: int, seed: int) -> dict[str, float]:
    """`measure` in a fresh process importing `dms` and `ucan` from `code`."""
    env = dict(os.environ, PYTHONPATH=str(code))
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(count), str(seed), str(code)],
        env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{code} at {count} nodes failed:\n{out.stderr[-2000:]}")
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def baseline_tree(where: Path) -> Path:
    """The code this branch started from (its merge base with main), unpacked."""
    base = subprocess.run(["git", "-C", str(REPO), "merge-base", "HEAD", "main"],
                          capture_output=True, text=True, check=True).stdout.strip()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", base, "dms", "ucan"],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(where)], input=archive, check=True)
    return where


FIELDS = ("startup_cpu_s", "rss_per_node_kib", "degree_mean", "degree_max",
          "frames_per_publication", "pubsub_frames_per_publication",
          "cpu_per_publication_ms", "delivery")
PUBSUB_KINDS = (0x02, 0x07, 0x08, 0x09)
"""PUBLISH, IHAVE, GRAFT, PRUNE: the frames a publication itself costs."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,50,100,200")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline-max", type=int, default=100)
    parser.add_argument("--baseline", type=Path, default=None)
    parser.add_argument("--after", type=Path, default=REPO,
                        help="the code measured as 'after' (default: this checkout)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as scratch:
        before = args.baseline or baseline_tree(Path(scratch))
        report = []
        for count in sizes:
            runs: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
            with_baseline = count <= args.baseline_max
            for round_number in range(args.rounds):
                order = ["before", "after"] if round_number % 2 == 0 else ["after", "before"]
                for variant in order:
                    if variant == "before" and not with_baseline:
                        continue
                    code = before if variant == "before" else args.after
                    runs[variant].append(run_variant(code, count, seed=round_number))
            row: dict[str, object] = {"nodes": count}
            for variant in ("before", "after"):
                if runs[variant]:
                    row[variant] = {f: statistics.median(r[f] for r in runs[variant])
                                    for f in FIELDS}
            if with_baseline:
                row["after/before"] = {
                    f: statistics.median(a[f] / b[f] if b[f] else float("nan")
                                         for a, b in zip(runs["after"], runs["before"], strict=True))
                    for f in FIELDS}
            row["frames_ceiling"] = count - 1
            report.append(row)
            _print_row(row, sys.stderr if args.json else sys.stdout)
    if args.json:
        print(json.dumps(report, indent=2))


def _print_row(row: dict[str, object], out: object) -> None:
    def cells(values: object) -> str:
        if not isinstance(values, dict):
            return "-"
        return (f"start {values['startup_cpu_s']:7.2f} s  rss/node {values['rss_per_node_kib']:7.1f} KiB  "
                f"degree {values['degree_mean']:5.1f}/{values['degree_max']:3.0f}  "
                f"frames/pub {values['frames_per_publication']:8.1f} "
                f"(pubsub {values['pubsub_frames_per_publication']:8.1f})  "
                f"cpu/pub {values['cpu_per_publication_ms']:7.2f} ms  "
                f"delivery {values['delivery']:7.2%}")
    print(f"{row['nodes']} nodes (frames ceiling {row['frames_ceiling']}):", file=out)  # type: ignore[arg-type]
    for key in ("before", "after"):
        if key in row:
            print(f"  {key:>12}: {cells(row[key])}", file=out)  # type: ignore[arg-type]
    ratios = row.get("after/before")
    if isinstance(ratios, dict):
        print("  after/before: " + "  ".join(f"{field} {ratios[field]:.3f}x" for field in FIELDS),
              file=out)  # type: ignore[arg-type]
    out.flush()  # type: ignore[attr-defined]


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        sys.path.insert(0, sys.argv[4])
        print(json.dumps(measure(int(sys.argv[2]), int(sys.argv[3]))))
    else:
        main()
