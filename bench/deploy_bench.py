"""Deployment speed: request to running, split by phase, against the bare executor.

1. One ensemble of 10 process allocations (`sleep 60`, one per node, each too big to
   share a provider) on 10 provider nodes over loopback websockets, from
   `/dms/node/deployment/new` to `running`, split by what the orchestrator was doing
   (from the deployment's own `phase` and `unplaceable` events), against starting the
   same 10 workloads at once directly on `ProcessExecutor`, in alternating rounds;
   ratios are medians of per-round ratios. Targets: everything but the bid window
   under 0.5 s; the bid window closing early, as soon as every node has candidates.
2. 50 small deployments at once on the same 10 providers: deployments/s from the
   first `new` to the last `running`, against the ceiling 1 / (CPU of one deployment
   alone, measured in the same round: every node shares this process), in rounds that
   alternate one alone with 50 at once; then exact accounting once they are all shut
   down (every provider's `free == offered`, no reservation, no child process).
3. Placement throughput: `placement.solve` of a 100-node, 200-edge ensemble over
   1,000 bids (placement_bench.py's seeded tight instances): time to the first
   placement, and how long the search goes on under the deployment's own budget.

Every node runs in this one process, so under load (part 2) the latencies add up the
CPU of all twelve nodes. `--profile` runs the parts under cProfile and says where the
time went.

    .venv/bin/python bench/deploy_bench.py [--rounds 5] [--concurrent 50] [--parts 123]
                                           [--json] [--profile]
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import trio
from placement_bench import Instance  # bench/ is on sys.path when run as a script

from dms import RequestTimeout, Undeliverable
from dms.deployment import EVENTS, LIST, NEW, SHUTDOWN, STATUS, DeploymentSettings
from dms.ensemble import load_ensemble
from dms.executor import ProcessExecutor
from dms.node import Node, open_node
from dms.orchestrator.placement import SearchBudget, Unplaceable, solve
from dms.provider import Capacity, ProviderConfig, millicores
from dms.workload import ExecutorKind
from dms.workload.plan import plan_workload
from ucan import SigningKey, delegate

GiB = 2**30
PROVIDERS = 10
TARGET_BEYOND_BIDS = 0.5  # seconds: everything except the bid window
PHASES = ("bidding", "solving", "committing", "allocating")
BEFORE_RUNNING = {"pending", *PHASES}
DROPS = ("net.mesh.dropped_incoming_full", "net.link.dropped_busy")  # inbox, send buffer


def ensemble(allocations: int, cpu: str, name: str = "w") -> str:
    """`allocations` services running `sleep 60`, each on a node of its own."""
    lines = ["version: V1", "allocations:"]
    for i in range(allocations):
        lines += [f"  {name}{i}:", "    type: service", "    executor: process",
                  f"    resources: {{cpu: {cpu}, ram: 16Mi, disk: 1Mi}}",
                  "    execution: {command: sleep, args: ['60']}"]
    lines.append("nodes:")
    lines += [f"  n{i}: {{allocations: [{name}{i}]}}" for i in range(allocations)]
    return "\n".join(lines) + "\n"


TEN = ensemble(PROVIDERS, "1.5")  # 1.5 cores each on 2-core providers: one per provider
SMALL = ensemble(1, "0.05", name="s")


@attrs.define
class Market:
    org: SigningKey
    orchestrator: Node
    providers: list[Node]
    user: Node

    @property
    def nodes(self) -> list[Node]:
        return [self.orchestrator, *self.providers, self.user]

    async def call(self, command: str, args: dict[str, Any]) -> Any:
        return await self.user.root.invoke(self.orchestrator.root.handle, command, args,
                                           timeout=30)


@contextlib.asynccontextmanager
async def open_market(work: Path, settings: DeploymentSettings) -> AsyncIterator[Market]:
    """An organisation every node anchors; it grants the orchestrator node and each
    provider `/dms/deployment`, and the user `/dms/node/deployment`."""
    org = SigningKey.generate()
    capacity = Capacity(millicores=millicores(2, round_up=False), ram=8 * GiB, disk=100 * GiB)
    async with contextlib.AsyncExitStack() as stack:
        orchestrator = await stack.enter_async_context(open_node(
            listen="ws://127.0.0.1:0", anchors=[org.did], deployments=settings))
        assert orchestrator.address is not None
        providers = []
        for n in range(PROVIDERS):
            config = ProviderConfig(work / f"provider{n}", (ExecutorKind.PROCESS,),
                                    capacity=capacity)
            providers.append(await stack.enter_async_context(open_node(
                listen="ws://127.0.0.1:0", bootstrap=[orchestrator.address],
                anchors=[org.did], provider=config)))
        user = await stack.enter_async_context(open_node(
            bootstrap=[orchestrator.address], anchors=[org.did]))
        orchestrator.add_proofs(delegate(org, orchestrator.did, "/dms/deployment",
                                         expiration=None))
        for node in providers:
            node.add_proofs(delegate(org, node.did, "/dms/deployment", expiration=None))
        user.add_proofs(delegate(org, user.did, "/dms/node/deployment", expiration=None))
        with trio.fail_after(20):
            await orchestrator.mesh.wait_connected(PROVIDERS + 1)
            for node in (*providers, user):
                await node.mesh.wait_connected(1)
        await trio.sleep(0.5)  # subscriptions settle
        yield Market(org, orchestrator, providers, user)


async def wait_for(market: Market, deployment: str, *phases: str) -> list[dict[str, Any]]:
    """The deployment's events up to the first `phase` event in `phases` (long-poll)."""
    events: list[dict[str, Any]] = []
    with trio.fail_after(60):
        while True:
            after = events[-1]["seq"] if events else 0
            reply = await market.call(EVENTS, {"id": deployment, "after": after, "wait": 5})
            for event in reply["events"]:
                events.append(event)
                if event["kind"] == "phase" and event["payload"]["phase"] in phases:
                    return events
            if reply["final"]:
                return events


def phase_split(asked_at: float, events: list[dict[str, Any]]) -> dict[str, float]:
    """Seconds from the request to the last phase event, by what the orchestrator was
    doing (a phase entered again adds up). `solving` ends at the placement or at an
    `unplaceable` event; from there to the next round is `waiting`: the orchestrator
    sleeps out the round before it asks again. The bid window is bidding + waiting."""
    split = {"new": 0.0, **dict.fromkeys(PHASES, 0.0), "waiting": 0.0, "rounds": 0.0}
    marks = [e for e in events if e["kind"] in ("phase", "unplaceable")]
    split["new"] = marks[0]["at"] - asked_at
    for event, following in zip(marks, marks[1:], strict=False):
        doing = "waiting" if event["kind"] == "unplaceable" else event["payload"]["phase"]
        split[doing] = split.get(doing, 0.0) + following["at"] - event["at"]
        split["rounds"] += doing == "bidding"
    split["total"] = marks[-1]["at"] - asked_at
    split["bid_window"] = split["bidding"] + split["waiting"]
    split["beyond_bids"] = split["total"] - split["bid_window"]
    split["beyond_bids_and_solver"] = split["beyond_bids"] - split["solving"]
    return split


@attrs.frozen
class Deployed:
    id: str
    split: dict[str, float]
    providers_failed: int


async def deploy_once(market: Market, text: str) -> Deployed:
    asked_at = time.time()
    reply = await market.call(NEW, {"ensemble": text})
    events = await wait_for(market, reply["id"], "running", "failed", "completed")
    last = events[-1]["payload"]
    if last.get("phase") != "running":
        raise SystemExit(f"deployment {reply['id']} did not run: {last}")
    refused = sum(1 for e in events if e["kind"] == "provider_failed")
    return Deployed(reply["id"], phase_split(asked_at, events), refused)


async def shut_down(market: Market, deployment: str) -> None:
    await market.call(SHUTDOWN, {"id": deployment})
    events = await wait_for(market, deployment, "completed", "failed")
    phase = events[-1]["payload"].get("phase") if events else "?"
    if phase != "completed":
        status = await market.call(STATUS, {"id": deployment})
        raise SystemExit(f"deployment {deployment} ended {phase}: {status['failure']}")


async def bare_start(executor: ProcessExecutor, specs: list[Any]) -> float:
    """Start every spec at once directly on the executor; seconds until all started."""
    executions: list[Any] = []

    async def start(spec: Any) -> None:
        executions.append(await executor.start(spec))

    began = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for spec in specs:
            nursery.start_soon(start, spec)
    took = time.perf_counter() - began
    async with trio.open_nursery() as nursery:
        for execution in executions:
            nursery.start_soon(execution.stop, 5.0)
    for execution in executions:
        await execution.remove()
    return took


def leftovers(market: Market) -> list[str]:
    """What any provider still holds, and this process's live children."""
    problems = []
    for n, node in enumerate(market.providers):
        service = node.provider
        assert service is not None
        book = service.book
        if book.reservations():
            problems.append(f"provider{n}: {len(book.reservations())} reservations left")
        if book.free(time.time()) != book.offered:
            problems.append(f"provider{n}: free {book.free(time.time())} != offered")
    children = live_children()
    if children:
        problems.append(f"{children} child processes still running")
    return problems


def live_children() -> int:
    me, count = os.getpid(), 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == me and fields[0] != "Z":
            count += 1
    return count


async def ten_on_ten(market: Market, work: Path, rounds: int,
                     settings: DeploymentSettings) -> dict[str, Any]:
    ensemble_ = load_ensemble(TEN, file="<bench>")
    specs = [plan_workload(ensemble_, name).execution for name in ensemble_.allocations]
    splits: list[dict[str, float]] = []
    bares: list[float] = []
    cpu = 0.0  # this process's CPU seconds (every node's) from new to running
    async with ProcessExecutor(work / "bare") as executor:
        await bare_start(executor, specs)  # warm: the first fork pays for page faults
        for k in range(rounds):
            for step in ("deploy", "bare") if k % 2 == 0 else ("bare", "deploy"):
                if step == "bare":
                    bares.append(await bare_start(executor, specs))
                    continue
                cpu0 = time.process_time()
                deployed = await deploy_once(market, TEN)
                cpu += time.process_time() - cpu0
                splits.append(deployed.split)
                used = sum(1 for n in market.providers
                           if n.provider is not None and n.provider.book.reservations())
                if used != PROVIDERS:
                    raise SystemExit(f"placed on {used} providers, not {PROVIDERS}")
                await shut_down(market, deployed.id)
                problems = leftovers(market)
                if problems:
                    raise SystemExit("after a deployment: " + "; ".join(problems))
    median = {key: statistics.median(s[key] for s in splits) for key in splits[0]}
    pairs = list(zip(splits, bares, strict=True))
    return {"rounds": rounds, "split_median_s": median,
            "bare_median_s": statistics.median(bares),
            "ratio_median": statistics.median(s["total"] / b for s, b in pairs),
            "ratio_beyond_bids_median": statistics.median(s["beyond_bids"] / b
                                                          for s, b in pairs),
            "bid_round_s": settings.bid_round,
            "minimum_candidates": settings.minimum_candidates,
            "cpu_s_per_deployment": cpu / rounds,
            "beyond_bids_on_target": median["beyond_bids"] < TARGET_BEYOND_BIDS,
            "bid_window_on_target": median["bid_window"] < settings.bid_round / 2}


def dropped_frames(market: Market) -> int:
    """Frames any node dropped because its inbox or a send buffer was full."""
    return sum(node.metrics().get(counter, 0) for node in market.nodes for counter in DROPS)


async def concurrent(market: Market, count: int) -> dict[str, Any]:
    """`count` deployments asked for at once; watched through `list` (one call for
    all) rather than a long-poll each: every waiting `events` call holds one of the
    caller's slots on the node's root actor, and 50 of them would make this bench's
    own `new` calls wait for slots. A deployment that fails is counted with its
    reason, and what it leaves behind counts like anybody's."""
    ids: list[str] = []
    asked: dict[str, float] = {}
    unasked: list[str] = []  # `new` not answered: counted as failures, not a crash

    async def one() -> None:
        asked_at = time.time()
        try:
            reply = await market.call(NEW, {"ensemble": SMALL})
        except (RequestTimeout, Undeliverable) as error:
            unasked.append(f"new: {error}")
            return
        asked[reply["id"]] = asked_at
        ids.append(reply["id"])

    dropped0 = dropped_frames(market)
    began, cpu0 = time.perf_counter(), time.process_time()
    async with trio.open_nursery() as nursery:
        for _ in range(count):
            nursery.start_soon(one)
    with trio.fail_after(120):
        while True:
            listed = (await market.call(LIST, {}))["deployments"]
            phases = {d["id"]: d["phase"] for d in listed if d["id"] in asked}
            if all(p not in BEFORE_RUNNING for p in phases.values()):
                break
            await trio.sleep(0.02)
    took, cpu = time.perf_counter() - began, time.process_time() - cpu0
    running = [d for d in ids if phases[d] == "running"]
    failures = unasked + [(await market.call(STATUS, {"id": d}))["failure"]
                          for d in ids if phases[d] != "running"]
    held = sum(len(n.provider.book.reservations()) for n in market.providers if n.provider)
    done = []
    for deployment in running:
        events = await wait_for(market, deployment, "running")
        done.append(Deployed(deployment, phase_split(asked[deployment], events),
                             sum(1 for e in events if e["kind"] == "provider_failed")))
    async with trio.open_nursery() as nursery:
        for deployment in running:
            nursery.start_soon(shut_down, market, deployment)
    problems = leftovers(market)
    if not done:
        raise SystemExit(f"none of the {count} deployments ran: {failures[:3]}")
    median = {key: statistics.median(d.split[key] for d in done) for key in done[0].split}
    return {"deployments": count, "running": len(running), "failures": failures,
            "seconds": took, "per_second": len(running) / took,
            "cpu_s_per_deployment": cpu / count, "split_median_s": median,
            "latency_max_s": max(d.split["total"] for d in done),
            "providers_failed": sum(d.providers_failed for d in done),
            "held_while_running": held, "leftovers": problems,
            "dropped_frames": dropped_frames(market) - dropped0,
            "exact": not problems and held == len(running)}


def placement_throughput(instances: int, max_nodes: int) -> dict[str, Any]:
    """`placement.solve` of tight 100-node ensembles over 1,000 bids: the time to the
    first placement, and the search rate under a node budget (the deployment passes
    none, so it searches up to SearchBudget()'s max_nodes)."""
    firsts: list[float] = []
    rates: list[float] = []
    optimal = failed = 0
    for seed in range(instances):
        instance = Instance(1000, 100, 200, seed=seed)
        measurements = instance.measurements()
        began = time.perf_counter()
        try:
            placement = solve(instance.requirements, instance.bids, measurements,
                              budget=SearchBudget(max_nodes=max_nodes))
        except Unplaceable:
            failed += 1
            continue
        elapsed = time.perf_counter() - began
        stats = placement.stats
        assert stats.first_solution_seconds is not None
        firsts.append(stats.first_solution_seconds + elapsed - stats.seconds)  # + compile
        assert stats.first_solution_explored is not None
        if stats.explored > stats.first_solution_explored:  # the search went on
            rates.append((stats.explored - stats.first_solution_explored)
                         / (stats.seconds - stats.first_solution_seconds))
        optimal += placement.optimal
    default = SearchBudget().max_nodes
    rate = statistics.median(rates) if rates else 0.0
    return {"instances": instances, "failed": failed, "max_nodes": max_nodes,
            "optimal": optimal,
            "first_placements_per_second": 1 / statistics.median(firsts) if firsts else 0.0,
            "first_solution_median_s": statistics.median(firsts) if firsts else None,
            "first_solution_max_s": max(firsts) if firsts else None,
            "improving_per_second": rate,
            "default_budget_nodes": default,
            "default_budget_estimate_s": default / rate if rate else 0.0}


async def deployments(args: argparse.Namespace) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    # The defaults a node runs with (bid_round 2 s), unless told otherwise.
    settings = DeploymentSettings(minimum_candidates=args.minimum_candidates)
    with tempfile.TemporaryDirectory(prefix="deploy-bench-") as root:
        async with open_market(Path(root), settings) as market:
            if "1" in args.parts:
                figures["ten_on_ten"] = await ten_on_ten(market, Path(root), args.rounds,
                                                         settings)
            if "2" in args.parts:
                figures["concurrent"] = await concurrent_against_alone(market, args.concurrent)
    return figures


CONCURRENT_ROUNDS = 3


async def concurrent_against_alone(market: Market, count: int) -> dict[str, Any]:
    """`concurrent` in rounds that alternate one deployment alone (the baseline) with
    `count` at once. Every node runs in this one process, so deployments/s cannot pass
    1 / (CPU of one deployment): that, from the baseline of the same round, is the
    ceiling, and the figure is the median of per-round ratios to it."""
    ratios, ceilings = [], []
    for _ in range(CONCURRENT_ROUNDS):
        alone = await concurrent(market, 1)
        many = await concurrent(market, count)
        ceilings.append(1 / alone["cpu_s_per_deployment"])
        ratios.append(many["per_second"] / ceilings[-1])
    return {**many, "rounds": CONCURRENT_ROUNDS, "ceiling_per_second": statistics.median(ceilings),
            "ratio_to_ceiling": statistics.median(ratios)}


def report(figures: dict[str, Any]) -> None:
    ms = 1e3
    if "ten_on_ten" in figures:
        ten = figures["ten_on_ten"]
        p = ten["split_median_s"]
        print(f"1. 10 allocations on {PROVIDERS} providers over loopback websockets, from new "
              f"to running (ms, median of {ten['rounds']} rounds; minimum_candidates "
              f"{ten['minimum_candidates']})")
        print(f"   {'new':>5} {'bidding':>8} {'solving':>8} {'waiting':>8} {'commit':>7} "
              f"{'allocate':>9} {'total':>7} {'rounds':>6} | {'-bids':>6} {'bare':>5}")
        print(f"   {p['new'] * ms:>5.0f} {p['bidding'] * ms:>8.0f} {p['solving'] * ms:>8.0f} "
              f"{p['waiting'] * ms:>8.0f} {p['committing'] * ms:>7.0f} "
              f"{p['allocating'] * ms:>9.0f} {p['total'] * ms:>7.0f} {p['rounds']:>6.0f} | "
              f"{p['beyond_bids'] * ms:>6.0f} {ten['bare_median_s'] * ms:>5.0f}")
        print(f"   (waiting: an unplaceable round sleeps out its {ten['bid_round_s']:g} s before "
              f"asking again; -bids: total less bidding and waiting; bare: the same 10 "
              f"workloads started at once on ProcessExecutor)")
        print(f"   ratio to bare: {ten['ratio_median']:.1f}x, "
              f"{ten['ratio_beyond_bids_median']:.1f}x without the bid window; "
              f"{ten['cpu_s_per_deployment'] * ms:.0f} ms CPU per deployment, all nodes")
        print(f"   target, all but the bid window < {TARGET_BEYOND_BIDS * ms:.0f} ms: "
              f"{'met' if ten['beyond_bids_on_target'] else 'MISSED'} (all but the bid window "
              f"and the solver: {p['beyond_bids_and_solver'] * ms:.0f} ms); bid window "
              f"(bidding + waiting) well inside one {ten['bid_round_s']:g} s round: "
              f"{'met' if ten['bid_window_on_target'] else 'MISSED'}")
    if "concurrent" in figures:
        many = figures["concurrent"]
        p = many["split_median_s"]
        print(f"2. {many['deployments']} small deployments at once on {PROVIDERS} providers: "
              f"{many['running']} running after {many['seconds']:.2f} s, "
              f"{many['per_second']:.1f} deployments/s "
              f"({many['cpu_s_per_deployment'] * ms:.0f} ms CPU each, all nodes)")
        print(f"   ceiling 1 / (CPU of one deployment alone, same round): "
              f"{many['ceiling_per_second']:.1f}/s; ratio {many['ratio_to_ceiling']:.2f} "
              f"(median of {many['rounds']} rounds alternating one alone and "
              f"{many['deployments']} at once; the figures above are the last round's)")
        for failure in many["failures"][:3]:
            print(f"   FAILED: {failure[:300]}")
        print(f"   latency median {p['total'] * ms:.0f} ms (new {p['new'] * ms:.0f}, bidding "
              f"{p['bidding'] * ms:.0f}, solving {p['solving'] * ms:.0f}, waiting "
              f"{p['waiting'] * ms:.0f}, commit {p['committing'] * ms:.0f}, allocate "
              f"{p['allocating'] * ms:.0f}), max {many['latency_max_s'] * ms:.0f} ms; "
              f"{many['providers_failed']} provider steps refused (stale bids) and re-solved; "
              f"{many['dropped_frames']} frames dropped by full queues")
        print(f"   accounting after shutdown: {'exact' if many['exact'] else 'WRONG'} "
              f"({many['held_while_running']} reservations held while running)"
              + ("" if not many["leftovers"] else ": " + "; ".join(many["leftovers"])))
    if "placement" in figures:
        place = figures["placement"]
        print(f"3. placement, 100 nodes x 200 edges over 1,000 bids ({place['instances']} "
              f"instances, {place['failed']} failed): first placement in "
              f"{place['first_solution_median_s'] * ms:.0f} ms median "
              f"(max {place['first_solution_max_s'] * ms:.0f}): "
              f"{place['first_placements_per_second']:.1f} placements/s")
        print(f"   after it the search goes on at {place['improving_per_second']:.0f} "
              f"assignments/s ({place['optimal']} proved optimal within {place['max_nodes']}"
              f"); the deployment passes no budget, so it searches "
              f"{place['default_budget_nodes']}: ~{place['default_budget_estimate_s']:.0f} s "
              f"of blocked event loop per solve at that rate (estimate; measure it with "
              f"--parts 3 --max-nodes {place['default_budget_nodes']})")


HOTSPOTS = (  # (what, file, function): synchronous calls, so cProfile's cumulative is exact
    ("placement solve", "placement/_solver.py", "solve"),
    ("ensemble YAML parsing", "ensemble/_load.py", "load_ensemble"),
    ("UCAN chains checked", "ucan/trust.py", "open_container"),
    ("signatures verified", "ucan/did.py", "verify_signature"),
    ("signatures made", "ucan/keys.py", "sign"),
)


def where_the_time_went(profiler: cProfile.Profile) -> str:
    stats = pstats.Stats(profiler)
    total = stats.total_tt  # type: ignore[attr-defined]
    lines = [f"where the time went: {total:.1f} s of CPU profiled (every node)"]
    for what, file, function in HOTSPOTS:
        seconds = sum(row[3] for (path, _, name), row in stats.stats.items()  # type: ignore[attr-defined]
                      if path.endswith(file) and name == function)
        lines.append(f"  {what:<24} {seconds:>7.2f} s  {100 * seconds / total:5.1f} %")
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(15)
    return "\n".join(lines) + "\n" + out.getvalue()


def main() -> None:
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5,
                        help="alternating rounds of part 1 (default 5; part 2 always runs 3)")
    parser.add_argument("--concurrent", type=int, default=50,
                        help="deployments at once in part 2 (default 50)")
    parser.add_argument("--instances", type=int, default=5,
                        help="seeded placement instances solved in part 3 (default 5)")
    parser.add_argument("--minimum-candidates", type=int, default=1,
                        help="the orchestrator's bids wanted per node before a round "
                             "closes early (a node's default: 1)")
    parser.add_argument("--max-nodes", type=int, default=5000,
                        help="search budget for part 3 (the deployment's is 200000)")
    parser.add_argument("--parts", default="123",
                        help="which parts to run, e.g. 13 (default 123)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--profile", action="store_true",
                        help="run under cProfile and print where the time went")
    args = parser.parse_args()
    for flag, value in (("--rounds", args.rounds), ("--concurrent", args.concurrent),
                        ("--instances", args.instances), ("--max-nodes", args.max_nodes),
                        ("--minimum-candidates", args.minimum_candidates)):
        if value < 1:
            parser.error(f"{flag} must be at least 1, got {value}")
    if not args.parts or set(args.parts) - set("123"):
        parser.error(f"--parts: digits of 1, 2 and 3 (e.g. 13), got {args.parts!r}")
    profiler = cProfile.Profile() if args.profile else None
    if profiler is not None:
        profiler.enable()
    figures = trio.run(deployments, args) if set(args.parts) & {"1", "2"} else {}
    if "3" in args.parts:
        figures["placement"] = placement_throughput(args.instances, args.max_nodes)
    if profiler is not None:
        profiler.disable()
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        report(figures)
    if profiler is not None:
        print(where_the_time_went(profiler))


if __name__ == "__main__":
    main()
