"""Soak: deploy/shutdown cycles on 5 providers, watching for what grows.

An orchestrator, 5 provider nodes and a user node over loopback websockets, each with
a state directory (so every deployment is journalled in SQLite as a node would). Each
cycle deploys one small ensemble (2 process allocations), waits for `running`, shuts it
down and waits for `completed`. After every `--sample` cycles it records this
process's open file descriptors and RSS, the size of every node's SQLite files
(the databases, and their write-ahead logs apart), its live child processes and the providers' reservations. It
prints the first sample (after a warm-up of `--warmup` cycles), the last, and each
figure's least-squares slope per cycle over the samples after the warm-up: flat means a
slope near zero. A completed deployment stays in the orchestrator's journal (its
record, bounded events) until `ended_kept` newer ones have ended, so the database
grows by about one record per cycle until then (`--ended-kept 20` shows it level off).

A stopped actor's revocations are kept until an hour past its grants' expiry (at most
an hour after they were issued), so a soak of minutes sees them pile up unless time is
compressed with `--grant-lifetime 30 --retention 30` (then "revocations", the kept
ones on all nodes, levels off after about two minutes: lifetime, retention and the
node's 60 s pruning interval).

Bounded caches fill during the first part of a run and then stay level, so each slope
is given twice: over every sample after the warm-up, and over the second half of the
run only (`--steady-from N`: from cycle N on), where a flat figure has a slope near 0.
Two more protocol lifetimes outlast a short soak: a publication's id is remembered 5
minutes (`--publication-lifetime S`, the node's `publication_lifetime`; the GRAFT
repair cache keeps publications no longer) and an accepted message's id until its
expiry plus the clock skew allowed (`--skew S`, the node's `AdmissionPolicy.skew`; a
message lives 30 s, `--message-ttl S`; the skew 60 s). Expired revocations and the
trust caches' entries of expired delegations go every 60 s (`--prune-interval S`, the
node's `prune_interval`). At about 0.2 s a cycle, 400 cycles last well under two
minutes: compressed (e.g. `--grant-lifetime 20 --retention 10 --publication-lifetime 10
--skew 5 --message-ttl 15 --prune-interval 5`), all of them level off in the first half.

`--network` gives the providers the ensemble network (root, /dev/net/tun and iproute2)
and deploys a pair over it: each allocation in a namespace of its own, the packets
between them only inside those namespaces and over the nodes' links. It samples the
providers' namespaces (`ip netns list`, by their prefixes), the TUN links in them, their
/etc/netns directories and the networks the providers say they hold ("hosted").

`--tracemalloc` snapshots the Python heap at a quarter and at three quarters of the run
and prints the 15 allocation sites (by traceback) that grew most in between, and samples
the Python heap it traces ("heap"): a heap slope far below the RSS slope points at the
allocator (fragmentation), not at a structure that grows.

    .venv/bin/python bench/soak_bench.py [--cycles 200] [--sample 10] [--json]
        [--grant-lifetime S] [--retention S] [--ended-kept N] [--steady-from N]
        [--tracemalloc] [--publication-lifetime S] [--skew S] [--message-ttl S]
        [--prune-interval S] [--network]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import trio
from deploy_bench import (  # bench/ is on sys.path when run as a script
    Market,
    ensemble,
    live_children,
    wait_for,
)

from dms.actor import DEFAULT_POLICY
from dms.deployment import NEW, SHUTDOWN, STATUS, DeploymentSettings
from dms.network import missing_capability
from dms.network._netns import NETNS_ETC, namespace_names
from dms.node import open_node
from dms.node._node import PUBLICATION_LIFETIME, publication_memory
from dms.provider import Capacity, ProviderConfig, millicores
from dms.provider._network import namespace_prefix
from dms.workload import ExecutorKind
from ucan import SigningKey, delegate

GiB = 2**30
PROVIDERS = 5
PAIR = ensemble(2, "0.5", name="soak")
SETTINGS = DeploymentSettings(bid_round=0.3, poll_interval=0.5)


@attrs.frozen
class Lifetimes:
    """The node settings a soak may compress (None: the node's)."""

    publication: float | None = None
    skew: float | None = None

    def options(self) -> dict[str, Any]:
        policy = (DEFAULT_POLICY if self.skew is None
                  else attrs.evolve(DEFAULT_POLICY, skew=self.skew))
        publication = PUBLICATION_LIFETIME if self.publication is None else self.publication
        return {"publication_lifetime": publication,
                "policy": policy}


@contextlib.asynccontextmanager
async def open_soak_market(root: Path, settings: DeploymentSettings = SETTINGS,
                           lifetimes: Lifetimes = Lifetimes(), network: bool = False
                           ) -> AsyncIterator[Market]:
    """deploy_bench's market, with 5 providers and a state directory per node (with
    `network`, the providers host the ensemble network)."""
    org = SigningKey.generate()
    capacity = Capacity(millicores=millicores(2, round_up=False), ram=8 * GiB, disk=100 * GiB)
    options = lifetimes.options()
    async with contextlib.AsyncExitStack() as stack:
        orchestrator = await stack.enter_async_context(open_node(
            listen="ws://127.0.0.1:0", anchors=[org.did], deployments=settings,
            state_dir=root / "orchestrator", **options))
        assert orchestrator.address is not None
        providers = []
        for n in range(PROVIDERS):
            config = ProviderConfig(root / f"work{n}", (ExecutorKind.PROCESS,),
                                    capacity=capacity, network=network)
            providers.append(await stack.enter_async_context(open_node(
                listen="ws://127.0.0.1:0", bootstrap=[orchestrator.address],
                anchors=[org.did], provider=config, state_dir=root / f"provider{n}",
                **options)))
        user = await stack.enter_async_context(open_node(
            bootstrap=[orchestrator.address], anchors=[org.did], **options))
        orchestrator.add_proofs(delegate(org, orchestrator.did, "/dms/deployment",
                                         expiration=None))
        for node in providers:
            node.add_proofs(delegate(org, node.did, "/dms/deployment", expiration=None))
        user.add_proofs(delegate(org, user.did, "/dms/node/deployment", expiration=None))
        with trio.fail_after(20):
            await orchestrator.mesh.wait_connected(PROVIDERS + 1)
            for node in (*providers, user):
                await node.mesh.wait_connected(1)
        await trio.sleep(0.5)
        yield Market(org, orchestrator, providers, user)


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def sqlite_bytes(root: Path, suffix: str = "") -> int:
    return sum(f.stat().st_size for f in root.glob(f"*/node.sqlite3{suffix}"))


def network_sample(market: Market) -> dict[str, float]:
    """What the providers' ensemble networks hold on this host, asked of the kernel
    (namespaces with a provider's prefix, the TUN links in them, /etc/netns entries)
    and of the providers ("hosted")."""
    prefixes = tuple(namespace_prefix(node.did) for node in market.providers)
    namespaces = [name for name in namespace_names() if name.startswith(prefixes)]
    tuns = 0
    for name in namespaces:
        listed = subprocess.run(["ip", "-n", name, "-o", "link", "show", "type", "tun"],
                                capture_output=True, text=True, timeout=30)
        tuns += len(listed.stdout.splitlines())
    etc = ([path for path in NETNS_ETC.iterdir() if path.name.startswith(prefixes)]
           if NETNS_ETC.exists() else [])
    hosted = sum(node.provider.networks.hosting() for node in market.providers
                 if node.provider is not None and node.provider.networks is not None)
    return {"namespaces": len(namespaces), "tuns": tuns, "netns_etc": len(etc),
            "hosted": hosted}


def sample(market: Market, root: Path, cycle: int, network: bool = False
           ) -> dict[str, float]:
    return {**(network_sample(market) if network else {}),"cycle": cycle, "fds": len(os.listdir("/proc/self/fd")), "rss": rss_bytes(),
            "sqlite": sqlite_bytes(root), "wal": sqlite_bytes(root, "-wal"), "children": live_children(),
            "reservations": sum(len(n.provider.book.reservations())
                                for n in market.providers if n.provider),
            "revocations": sum(len(n.trust.revocations.kept_revocations())
                               for n in market.nodes),
            "heap": tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else 0}


def slope(points: list[dict[str, float]], key: str) -> float:
    """Least-squares change of `key` per cycle."""
    if len(points) < 2:
        return 0.0
    xs = [p["cycle"] for p in points]
    fit = statistics.linear_regression(xs, [p[key] for p in points])
    return fit.slope


UNANNOUNCED = [0]
"""Shutdowns whose event stream said `final` before it held the `completed` event (a
race of the orchestrator's under load: its record is final a moment before the event
is written); the status said completed, so the cycle counts."""


async def shut_down(market: Market, deployment: str) -> None:
    """deploy_bench's, but a stream that ends before its phase event asks the status."""
    await market.call(SHUTDOWN, {"id": deployment})
    events = await wait_for(market, deployment, "completed", "failed")
    phase = events[-1]["payload"].get("phase") if events else None
    if phase == "completed":
        return
    status = await market.call(STATUS, {"id": deployment})
    if phase is None and status.get("phase") == "completed":
        UNANNOUNCED[0] += 1
        return
    raise SystemExit(f"deployment {deployment} ended {phase or status.get('phase')}: "
                     f"{status.get('failure')}")


RUNNING: list[dict[str, float]] = []
"""With --network, what the networks held while each cycle's pair ran."""


async def cycle(market: Market, network: bool = False) -> float:
    """One deploy/shutdown; with `network`, the deployment must have its network."""
    began = time.perf_counter()
    reply = await market.call(NEW, {"ensemble": PAIR})
    events = await wait_for(market, reply["id"], "running", "failed", "completed")
    last = events[-1]["payload"]
    if last.get("phase") != "running":
        raise SystemExit(f"deployment {reply['id']} did not run: {last}")
    if network:
        status = await market.call(STATUS, {"id": reply["id"]})
        if not str(status.get("network") or "").startswith("10."):
            raise SystemExit(f"deployment {reply['id']} runs without its network: "
                             f"{status.get('network')!r}")
        RUNNING.append(network_sample(market))
    await shut_down(market, reply["id"])
    return time.perf_counter() - began


async def soak(args: argparse.Namespace) -> dict[str, Any]:
    samples: list[dict[str, float]] = []
    took: list[float] = []
    snapshots: list[tracemalloc.Snapshot] = []
    marks = (args.cycles // 4, args.cycles * 3 // 4)
    if args.tracemalloc:
        tracemalloc.start(TRACE_FRAMES)
    with tempfile.TemporaryDirectory(prefix="soak-bench-") as tmp:
        root = Path(tmp)
        settings = SETTINGS if args.ended_kept is None else attrs.evolve(
            SETTINGS, ended_kept=args.ended_kept)
        lifetimes = Lifetimes(args.publication_lifetime, args.skew)
        async with open_soak_market(root, settings, lifetimes, args.network) as market:
            for node in market.nodes:  # time compressed: see --grant-lifetime
                if args.grant_lifetime is not None:
                    node.system.grant_lifetime = args.grant_lifetime
                if args.retention is not None:
                    node.revocations.grace = args.retention
                    node.system.revocation_retention = args.retention
                if args.prune_interval is not None:
                    node.prune_interval = args.prune_interval
                if args.message_ttl is not None:
                    node.system.message_ttl = args.message_ttl
            for n in range(1, args.cycles + 1):
                took.append(await cycle(market, args.network))
                if n == args.warmup or (n > args.warmup and n % args.sample == 0):
                    samples.append(sample(market, root, n, args.network))
                if args.tracemalloc and n in marks:
                    snapshots.append(tracemalloc.take_snapshot())
            await trio.sleep(1.0)  # the last processes are reaped
            samples.append(sample(market, root, args.cycles + 1, args.network))
    keys = KEYS + (NETWORK_KEYS if args.network else ())
    steady_from = args.cycles // 2 if args.steady_from is None else args.steady_from
    steady = [p for p in samples if p["cycle"] >= steady_from]
    growth = heap_growth(snapshots) if len(snapshots) == 2 else None
    if args.tracemalloc:
        tracemalloc.stop()
    return {"steady_from": steady_from,
            "steady_slope_per_cycle": {k: slope(steady, k) for k in keys},
            "heap_growth": growth, "heap_marks": marks,
            "cycles": args.cycles, "providers": PROVIDERS, "warmup": args.warmup,
            "ended_kept": args.ended_kept or SETTINGS.ended_kept,
            "grant_lifetime": args.grant_lifetime, "retention": args.retention,
            "publication_lifetime": args.publication_lifetime, "skew": args.skew,
            "message_ttl": args.message_ttl, "prune_interval": args.prune_interval,
            "network": args.network,
            "while_running": {k: (min(p[k] for p in RUNNING), max(p[k] for p in RUNNING))
                              for k in NETWORK_KEYS} if RUNNING else None,
            "first": samples[0], "last": samples[-1], "unannounced": UNANNOUNCED[0],
            "slope_per_cycle": {k: slope(samples, k) for k in keys},
            "cycle_s_median": statistics.median(took), "cycle_s_max": max(took)}


KEYS = ("fds", "rss", "heap", "sqlite", "wal", "children", "reservations", "revocations")
NETWORK_KEYS = ("namespaces", "tuns", "netns_etc", "hosted")
UNITS = {"rss": " B", "heap": " B", "sqlite": " B", "wal": " B"}

TRACE_FRAMES = 12
GROWTH_SITES = 15


def heap_growth(snapshots: list[tracemalloc.Snapshot]) -> list[dict[str, Any]]:
    """The allocation sites (whole tracebacks, this module and tracemalloc left out)
    whose live bytes grew most between two snapshots."""
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__),
              tracemalloc.Filter(False, __file__)]
    before, after = (s.filter_traces(ignore) for s in snapshots)
    diffs = [d for d in after.compare_to(before, "traceback") if d.size_diff > 0]
    return [{"bytes": d.size_diff, "blocks": d.count_diff, "total_bytes": d.size,
             "traceback": [f"{f.filename}:{f.lineno}" for f in d.traceback][-TRACE_FRAMES:]}
            for d in diffs[:GROWTH_SITES]]


def short(frame: str) -> str:
    for marker in ("/site-packages/", "/lib/python3"):
        if marker in frame:
            return frame.split(marker, 1)[1]
    root = str(Path(__file__).resolve().parent.parent) + "/"
    return frame.removeprefix(root)


def report(figures: dict[str, Any]) -> None:
    first, last, slopes = figures["first"], figures["last"], figures["slope_per_cycle"]
    print(f"{figures['cycles']} deploy/shutdown cycles on {figures['providers']} providers "
          f"(first sample after {figures['warmup']} warm-up cycles); cycle median "
          f"{figures['cycle_s_median']:.2f} s, max {figures['cycle_s_max']:.2f} s")
    if figures["unannounced"]:
        print(f"{figures['unannounced']} shutdowns' event streams ended before their "
              f"completed event (the status said completed)")
    print(f"the orchestrator keeps the newest {figures['ended_kept']} ended deployments")
    if figures["grant_lifetime"] is not None or figures["retention"] is not None:
        print(f"time compressed: grants to actors last {figures['grant_lifetime']} s, "
              f"revocations are kept {figures['retention']} s past them (None: the node's)")
    compressed = {k: figures[k] for k in ("publication_lifetime", "skew", "message_ttl",
                                          "prune_interval")}
    if any(v is not None for v in compressed.values()):
        print("time compressed (s; None: the node's): " + ", ".join(
            f"{k.replace('_', ' ')} {v}" for k, v in compressed.items()))
    if figures["network"]:
        ranges = ", ".join(f"{k} {lo:g}..{hi:g}"
                           for k, (lo, hi) in figures["while_running"].items())
        print(f"the providers host the ensemble network; every deployment ran on it, "
              f"holding (min..max over the cycles, while it ran): {ranges}")
    steady = figures["steady_slope_per_cycle"]
    print(f"slopes: over all samples after the warm-up, and from cycle "
          f"{figures['steady_from']} on (bounded caches full)")
    print(f"{'figure':<14}{'first':>14}{'last':>14}{'slope/cycle':>14}{'2nd half':>14}")
    for key in slopes:
        unit = UNITS.get(key, "")
        print(f"{key:<14}{first[key]:>14,.0f}{last[key]:>14,.0f}"
              f"{slopes[key]:>14,.1f}{steady[key]:>14,.1f}{unit}")
    if figures["heap_growth"] is not None:
        start, end = figures["heap_marks"]
        print(f"python heap growth from cycle {start} to {end} (per cycle), by traceback:")
        for site in figures["heap_growth"]:
            frames = [short(f) for f in site["traceback"]]
            print(f"{site['bytes'] / (end - start):>10,.0f} B {site['blocks']:>+8,} blocks "
                  f"(live {site['total_bytes']:,} B)  {frames[-1]}")
            for frame in reversed(frames[-6:-1]):
                print(f"{'':>30}<- {frame}")


def main() -> None:
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--cycles", type=int, default=200,
                        help="deploy/shutdown cycles, warmup included (default 200)")
    parser.add_argument("--warmup", type=int, default=10,
                        help="cycles before the first sample (default 10)")
    parser.add_argument("--sample", type=int, default=10,
                        help="cycles between samples (default 10)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--grant-lifetime", type=float, default=None, metavar="S",
                        help="grants to actors last S seconds (the node's: an hour), so "
                             "that a short soak sees stopped actors' revocations forgotten")
    parser.add_argument("--ended-kept", type=int, default=None, metavar="N",
                        help="ended deployments the orchestrator keeps on record (the "
                             f"node's: {SETTINGS.ended_kept}); past it sqlite stays flat")
    parser.add_argument("--retention", type=int, default=None, metavar="S",
                        help="kept revocations stay S seconds past what they revoke "
                             "(the node's: an hour)")
    parser.add_argument("--steady-from", type=int, default=None, metavar="N",
                        help="the second slope is over samples from cycle N on "
                             "(default: half the cycles)")
    parser.add_argument("--tracemalloc", action="store_true",
                        help="print the 15 heap allocation sites that grew most between "
                             "a quarter and three quarters of the run (slows it down)")
    parser.add_argument("--publication-lifetime", type=float, default=None, metavar="S",
                        help="publication ids are remembered S seconds (the node's: "
                             f"{PUBLICATION_LIFETIME:g}; at least 10)")
    parser.add_argument("--skew", type=float, default=None, metavar="S",
                        help="clock skew allowed, and so how long past its expiry an "
                             f"accepted message's id is kept (the node's: "
                             f"{DEFAULT_POLICY.skew:g}; at least 5)")
    parser.add_argument("--prune-interval", type=float, default=None, metavar="S",
                        help="nodes forget expired revocations and delegations every S "
                             "seconds (the node's: 60; at least 1)")
    parser.add_argument("--message-ttl", type=float, default=None, metavar="S",
                        help="messages sent expire after S seconds (the node's: 30; at "
                             "least 5): with --skew, the replay window")
    parser.add_argument("--network", action="store_true",
                        help="the providers host the ensemble network and the pair is "
                             "deployed over it (root, /dev/net/tun, iproute2)")
    args = parser.parse_args()
    if args.network and (missing := missing_capability()) is not None:
        sys.exit(f"soak_bench: --network {missing}")
    try:
        Lifetimes(args.publication_lifetime, args.skew).options()
        if args.publication_lifetime is not None:
            publication_memory(args.publication_lifetime)
    except ValueError as error:
        parser.error(str(error))
    if args.prune_interval is not None and not args.prune_interval >= 1:
        parser.error(f"--prune-interval must be at least 1 s, got {args.prune_interval}")
    if args.message_ttl is not None and not args.message_ttl >= 5:
        parser.error(f"--message-ttl must be at least 5 s, got {args.message_ttl}")
    if args.warmup < 0 or args.sample < 1:
        parser.error(f"--warmup must be at least 0 and --sample at least 1, got "
                     f"{args.warmup} and {args.sample}")
    if args.cycles <= args.warmup:
        parser.error(f"--cycles must be more than --warmup ({args.warmup}), got {args.cycles}")
    figures = trio.run(soak, args)
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        report(figures)


if __name__ == "__main__":
    main()
