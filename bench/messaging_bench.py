"""Messaging speed, as ratios against baselines measured in the same run.

1. Authenticated request/reply round trips/s over tcp:// and over ws:// (full admission
   pipeline, warm chain cache), each against its ceiling, 1 / (raw carrier echo + 2 sign
   + 2 verify + 4 seal-or-open in the negotiated suite), every term measured in the same
   run in alternating rounds (median of per-round ratios; see `link_ceiling.py`).
2. One-way authenticated messages/s between two OS processes vs raw pynacl verify/s.
3. Broadcast fan-out to 10 in-process nodes (memory transport): publications/s and
   deliveries/s.
4. The sender's chain memory: request/reply with it off and on, alternating rounds on
   the same two nodes (median of per-round on/off ratios), holding one grant and
   holding 200 (a node's `find_chain` looks through every one it holds).
5. Where a message's time goes (cProfile of the receive path).
6. (`broadcast`) Broadcast, 10 nodes, with each subscriber's screen result shared with
   admission (one decode and one signature check per publication) against without, in
   alternating rounds (median of per-round ratios), each against the ceiling of one
   verify per publication per subscriber (raw verify/s / 9, same round); also CPU per
   publication of this process (steadier than wall time on a shared machine).
7. (`broadcast-before`) Broadcast, 10 nodes, this checkout against the code it started
   from (its merge base with main, or `--baseline DIR`), each run a process of its own,
   in alternating rounds (which goes first alternates): publications/s as a share of
   the ceiling (one verify per publication per subscriber, raw verify/s / 9, measured
   in that same process just before), CPU per publication, delivery; and the median of
   the per-round after/before ratios.

Run: python bench/messaging_bench.py           (about two minutes)
     python bench/messaging_bench.py ceiling   (1. only)
     python bench/messaging_bench.py ceiling --against /work/main [ROUNDS]
                                               (1. alternately here and in another
                                               checkout, each in its own process)
     python bench/messaging_bench.py broadcast [ROUNDS]   (6. only; default 5 rounds)
     python bench/messaging_bench.py broadcast-before [ROUNDS] [--baseline DIR]
                                                (7. only; default 5 rounds)
"""

from __future__ import annotations

import cProfile
import io
import multiprocessing
import os
import pstats
import statistics
import sys
import time

import nacl.signing
import trio
from link_ceiling import against, measure, report

from dms.actor import AdmissionPolicy, RateLimit
from dms.actor._screened import ScreenedPublications
from dms.actor._wire import Envelope
from dms.net import MemoryNetwork
from dms.node import open_node
from ucan import SigningKey

PAYLOAD = os.urandom(128).hex()  # 256 characters
UNLIMITED = AdmissionPolicy(rate_limit=RateLimit(rate=1e9, burst=1e9),
                            link_budget=RateLimit(rate=1e9, burst=1e9))


def raw_verify_rate(count: int = 20000) -> float:
    key = nacl.signing.SigningKey.generate()
    signed = key.sign(PAYLOAD.encode())
    verify = key.verify_key.verify
    start = time.perf_counter()
    for _ in range(count):
        verify(signed)
    return count / (time.perf_counter() - start)


CHAIN_ROUNDS = 7
CHAIN_ROUND_TRIPS = 300


async def chain_memory_round_trips(held: int) -> tuple[float, float, float]:
    """(round trips/s with the chain memory off, on, median per-round on/off ratio)."""
    from ucan import delegate

    async with open_node(listen="tcp://127.0.0.1:0", policy=UNLIMITED) as server:
        @server.root.behavior("/bench/echo")
        async def echo(message):  # type: ignore[no-untyped-def]
            return message.args

        async with open_node(bootstrap=[server.address]) as client:
            client.add_proofs(server.grant(client.did, "/bench"))
            for n in range(held - 1):  # grants of other commands from other issuers
                other = SigningKey.generate()
                client.add_proofs(delegate(other, client.did, f"/other/c{n}", expiration=None))
            await client.mesh.wait_connected()
            memory = client.system.chain_choices
            remembered = memory.capacity

            async def rate(capacity: int) -> float:
                memory.capacity = capacity  # 0: nothing is remembered, as before
                for _ in range(20):
                    await client.root.invoke(server.root.handle, "/bench/echo", {"p": PAYLOAD})
                start = time.perf_counter()
                for _ in range(CHAIN_ROUND_TRIPS):
                    await client.root.invoke(server.root.handle, "/bench/echo", {"p": PAYLOAD})
                return CHAIN_ROUND_TRIPS / (time.perf_counter() - start)

            offs, ons, ratios = [], [], []
            for _ in range(CHAIN_ROUNDS):
                off, on = await rate(0), await rate(remembered)
                offs.append(off)
                ons.append(on)
                ratios.append(on / off)
            return statistics.median(offs), statistics.median(ons), statistics.median(ratios)


# -- one-way between two processes -------------------------------------------------------

ONE_WAY = 5000


def _receiver(conn) -> None:  # type: ignore[no-untyped-def]
    """Child process: a node that counts authorized one-way messages and reports the
    rate between the first and the last once the stream has been quiet for a second."""

    async def main() -> None:
        key = SigningKey.generate()
        async with open_node(key, listen="tcp://127.0.0.1:0", policy=UNLIMITED) as node:
            times: list[float] = []

            @node.root.behavior("/bench/note")
            async def note(message):  # type: ignore[no-untyped-def]
                times.append(time.perf_counter())

            conn.send((key.did, node.address))
            conn.send(node.grant(conn.recv(), "/bench").envelope)
            while not times or time.perf_counter() - times[-1] < 1.0:
                await trio.sleep(0.2)
            rate = (len(times) - 1) / (times[-1] - times[0])
            conn.send((len(times), rate, node.metrics()))

    trio.run(main)


def one_way_between_processes() -> tuple[int, float, dict[str, int]]:
    from dms.actor import Handle, Undeliverable
    from ucan import Delegation

    parent, child = multiprocessing.Pipe()
    proc = multiprocessing.get_context("spawn").Process(target=_receiver, args=(child,))
    proc.start()
    receiver_did, address = parent.recv()
    sender_key = SigningKey.generate()
    parent.send(sender_key.did)
    grant = Delegation.decode(parent.recv())

    async def run() -> tuple[int, float, dict[str, int]]:
        async with open_node(sender_key, bootstrap=[address]) as node:
            node.add_proofs(grant)
            await node.mesh.wait_connected()
            target = Handle(receiver_did, receiver_did, receiver_did, "root")
            for _ in range(ONE_WAY):
                while True:
                    try:
                        await node.root.send(target, "/bench/note", {"p": PAYLOAD})
                        break
                    except Undeliverable:  # the link's send buffer is full: let it drain
                        await trio.sleep(0.001)
            result: tuple[int, float, dict[str, int]] = await trio.to_thread.run_sync(parent.recv)
            return result

    result = trio.run(run)
    proc.join(10)
    return result


# -- fan-out -------------------------------------------------------------------------------

class _ForgetfulScreen(ScreenedPublications):
    """Keeps nothing: admission decodes and checks each publication again (before
    issue 14's shared screen result)."""

    def put(self, payload: bytes, envelope: Envelope, now: float) -> None:
        pass


async def broadcast_fan_out(nodes: int = 10, publications: int = 300, *,
                            shared_screen: bool = True) -> tuple[float, float, float]:
    """(publications/s, deliveries/s, CPU seconds per publication: this process's, so
    the machine's other jobs are not in it) from one publisher to `nodes` - 1 subscribers;
    `shared_screen=False` makes every subscriber's admission decode and verify what its
    screen already did."""
    network = MemoryNetwork()
    org = SigningKey.generate()
    received = {"n": 0}
    done = trio.Event()
    total = publications * (nodes - 1)
    async with trio.open_nursery() as nursery:
        opened = []

        async def start(i: int, task_status=trio.TASK_STATUS_IGNORED) -> None:  # type: ignore[no-untyped-def]
            bootstrap = ["memory://n0"] if i else []
            async with open_node(listen=f"memory://n{i}", network=network, bootstrap=bootstrap,
                                 anchors=[org.did], policy=UNLIMITED) as node:
                opened.append(node)
                if not shared_screen:
                    node.system.screened = _ForgetfulScreen()
                task_status.started(node)
                await trio.sleep_forever()

        publisher = await nursery.start(start, 0)
        for i in range(1, nodes):
            node = await nursery.start(start, i)

            @node.root.behavior("/bench/news")
            async def news(message):  # type: ignore[no-untyped-def]
                received["n"] += 1
                if received["n"] == total:
                    done.set()

            node.root.subscribe("/bench/topic")
        from ucan import delegate

        publisher.add_proofs(delegate(org, publisher.did, "/bench", expiration=None))
        await publisher.mesh.wait_connected(nodes - 1)
        await trio.sleep(0.5)
        start_time, start_cpu = time.perf_counter(), time.process_time()
        for _ in range(publications):
            await publisher.root.broadcast("/bench/topic", "/bench/news", {"p": PAYLOAD},
                                           subject=org.did)
            await trio.sleep(0)
        with trio.move_on_after(60):
            await done.wait()
        elapsed = time.perf_counter() - start_time
        cpu = time.process_time() - start_cpu
        nursery.cancel_scope.cancel()
    return publications / elapsed, received["n"] / elapsed, cpu / publications


def broadcast_shared_screen(rounds: int = 5, nodes: int = 10,
                            publications: int = 300) -> None:
    """Broadcast with each subscriber's screen result shared with admission against
    without, in rounds alternating which goes first; the median of per-round ratios,
    and each against its ceiling: one signature check per publication per subscriber,
    all in this one process, so raw verify/s / (nodes - 1), raw verify measured in the
    same round."""
    ratios, cpu_ratios, shared_of_ceiling, alone_of_ceiling, delivered = [], [], [], [], []
    total = publications * (nodes - 1)
    for round_ in range(rounds):
        order = (False, True) if round_ % 2 == 0 else (True, False)
        rates: dict[bool, float] = {}
        cpus: dict[bool, float] = {}
        for shared in order:
            pubs, deliveries, cpus[shared] = trio.run(lambda s=shared: broadcast_fan_out(
                nodes, publications, shared_screen=s))
            rates[shared] = pubs
            delivered.append(deliveries / pubs * publications / total)
        ceiling = raw_verify_rate(5000) / (nodes - 1)
        ratios.append(rates[True] / rates[False])
        cpu_ratios.append(cpus[False] / cpus[True])
        shared_of_ceiling.append(rates[True] / ceiling)
        alone_of_ceiling.append(rates[False] / ceiling)
        print(f"  round {round_ + 1}: unshared {rates[False]:7,.0f} pub/s, shared "
              f"{rates[True]:7,.0f} pub/s, ceiling {ceiling:7,.0f} pub/s; CPU per "
              f"publication {cpus[False] * 1e3:.2f} -> {cpus[True] * 1e3:.2f} ms", flush=True)
    print(f"broadcast, {nodes} nodes: shared screen / unshared {statistics.median(ratios):.2f}x "
          f"(median of {rounds} per-round ratios), CPU per publication unshared / shared "
          f"{statistics.median(cpu_ratios):.2f}x; of the one-verify ceiling: shared "
          f"{statistics.median(shared_of_ceiling):.2f}, unshared "
          f"{statistics.median(alone_of_ceiling):.2f}; delivery {min(delivered):.1%} at worst")


def _broadcast_child(code: str) -> None:
    """One broadcast run in this process (importing `dms` from `code`): JSON out."""
    import json

    started = time.process_time()
    verify = raw_verify_rate(5000)
    verify_cpu = (time.process_time() - started) / 5000
    pubs, deliveries, cpu = trio.run(broadcast_fan_out)
    print(json.dumps({"verify": verify, "verify_cpu": verify_cpu, "pubs": pubs,
                      "deliveries": deliveries, "cpu": cpu, "code": code}))


def _broadcast_in(code: str) -> dict[str, float]:
    import json
    import subprocess

    out = subprocess.run([sys.executable, __file__, "--broadcast-child", code],
                         env=dict(os.environ, PYTHONPATH=code), capture_output=True,
                         text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"broadcast with the code in {code} failed:\n{out.stderr[-2000:]}")
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def broadcast_before_after(rounds: int, baseline: str | None, nodes: int = 10,
                           publications: int = 300) -> None:
    """This checkout against `baseline` (default: the merge base with main), in
    alternating rounds; each against the one-verify ceiling of its own process."""
    import tempfile
    from pathlib import Path

    from overlay_bench import REPO, baseline_tree

    total = publications * (nodes - 1)
    with tempfile.TemporaryDirectory() as scratch:
        before = baseline or str(baseline_tree(Path(scratch)))
        after = str(REPO)
        share: dict[str, list[float]] = {"before": [], "after": []}
        cpu_share: dict[str, list[float]] = {"before": [], "after": []}
        ratios, cpu_ratios, delivered = [], [], []
        for round_ in range(rounds):
            order = ("before", "after") if round_ % 2 == 0 else ("after", "before")
            runs = {name: _broadcast_in(before if name == "before" else after)
                    for name in order}
            for name, run in runs.items():
                share[name].append(run["pubs"] / (run["verify"] / (nodes - 1)))
                cpu_share[name].append(run["verify_cpu"] * (nodes - 1) / run["cpu"])
                delivered.append(run["deliveries"] / run["pubs"] * publications / total)
            ratios.append(runs["after"]["pubs"] / runs["before"]["pubs"])
            cpu_ratios.append(runs["before"]["cpu"] / runs["after"]["cpu"])
            print(f"  round {round_ + 1}: before {runs['before']['pubs']:6,.0f} pub/s "
                  f"({share['before'][-1]:.2f} of ceiling {runs['before']['verify'] / 9:,.0f}), "
                  f"after {runs['after']['pubs']:6,.0f} pub/s ({share['after'][-1]:.2f} of "
                  f"ceiling {runs['after']['verify'] / 9:,.0f}); CPU per publication "
                  f"{runs['before']['cpu'] * 1e3:.2f} -> {runs['after']['cpu'] * 1e3:.2f} ms",
                  flush=True)
    print(f"broadcast, {nodes} nodes, {rounds} rounds: of the one-verify ceiling before "
          f"{statistics.median(share['before']):.2f}, after {statistics.median(share['after']):.2f}"
          f" (medians); in CPU time (9 verifies' CPU / CPU per publication) before "
          f"{statistics.median(cpu_share['before']):.2f}, after "
          f"{statistics.median(cpu_share['after']):.2f}; "
          f"after/before {statistics.median(ratios):.2f}x pub/s, "
          f"{statistics.median(cpu_ratios):.2f}x less CPU per publication (medians of "
          f"per-round ratios); delivery {min(delivered):.1%} at worst")


def profile_receive_path(count: int = 3000) -> str:
    """cProfile of Node.receive for authorized one-way messages (no network)."""
    from dms.actor import Admission, encode_message
    from ucan import TrustContext, delegate, invoke

    server, client = SigningKey.generate(), SigningKey.generate()
    grant = delegate(server, client.did, "/bench", expiration=None)
    now = int(time.time())
    frames = [
        encode_message(invoke(client, server.did, "/bench/echo", {"p": PAYLOAD}, [grant.cid],
                              audience=server.did, expiration=now + 60), [grant])
        for _ in range(count)
    ]
    admission = Admission(TrustContext(server.did), {server.did}.__contains__)
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    for frame in frames:
        admission.admit(frame, now=now)
    profiler.disable()
    rate = count / (time.perf_counter() - start)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(12)
    return f"admission (no network, profiled): {rate:,.0f} msgs/s\n" + out.getvalue()


def main() -> int:
    if sys.argv[1:2] == ["--broadcast-child"]:
        _broadcast_child(sys.argv[2])
        return 0
    if sys.argv[1:2] == ["broadcast-before"]:
        rest = sys.argv[2:]
        baseline = None
        if "--baseline" in rest:
            at = rest.index("--baseline")
            baseline = rest[at + 1]
            del rest[at : at + 2]
        broadcast_before_after(int(rest[0]) if rest else 5, baseline)
        return 0
    if sys.argv[1:2] == ["broadcast"]:
        broadcast_shared_screen(int(sys.argv[2]) if sys.argv[2:] else 5)
        return 0
    if sys.argv[1:3] == ["ceiling", "--against"] and sys.argv[3:]:
        print(against(sys.argv[3], int(sys.argv[4]) if sys.argv[4:] else 7))
        return 0
    print(report(trio.run(measure)))
    sys.stdout.flush()
    if sys.argv[1:] == ["ceiling"]:
        return 0
    verify = raw_verify_rate()
    print(f"raw pynacl verify                 {verify:10,.0f} /s   (baseline)")
    count, one_way, metrics = one_way_between_processes()
    dropped = {k: v for k, v in metrics.items() if "dropped" in k}
    print(f"one-way, two processes            {one_way:10,.0f} msgs/s = {one_way / verify:.2f}x raw verify"
          f"   ({count}/{ONE_WAY} delivered; receiver drops: {dropped or 'none'})")
    pubs, deliveries, _ = trio.run(broadcast_fan_out)
    print(f"broadcast to 9 peers (memory)     {pubs:10,.0f} publications/s, {deliveries:,.0f} deliveries/s")
    for held in (1, 200):
        off, on, gain = trio.run(chain_memory_round_trips, held)
        print(f"request/reply, {held:3} held grants   {off:10,.0f} -> {on:,.0f} round trips/s with "
              f"the chain memory ({gain:.2f}x, median of per-round ratios)")
    print()
    print(profile_receive_path())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
