"""Many requests in flight at once between nodes, each one's end recorded: shared by
`test_inflight_load.py` (1,000 kept in flight for 10 s of virtual time) and
`bench/load_bench.py` (kept at 1,000 for a minute, on the wall clock).

Every node serves `/load/work`: it holds the request for `hold` seconds (so requests
overlap), then answers with the request's number. A request ends as exactly one of:

- `reply`: the answer, for this request (its number comes back);
- `refused`: an explicit refusal the caller can act on: the receiver's `Busy` (its
  queue, or this sender's share of it, is full) or the sender's own `Undeliverable`
  (the link's send buffer is full, nothing was sent);
- `lost`: no answer within the timeout, or an answer that is not for this request:
  what the load promise says never happens.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import trio

from dms.actor import Message, RemoteError, RequestTimeout, Undeliverable
from dms.node import Node

COMMAND = "/load/work"
REFUSALS = frozenset({"Busy"})
"""RemoteError names that are refusals (the receiver said it will not do it now)."""


@attrs.define
class Tally:
    """How requests ended, their latencies (seconds, on `clock`), and the most that were
    in flight at once: at the senders (asked, not yet ended) and at the receivers
    (inside a behavior)."""

    clock: Callable[[], float] = trio.current_time
    ends: Counter[str] = attrs.field(factory=Counter)
    refusals: Counter[str] = attrs.field(factory=Counter)
    """Refusals by name: `Busy` (the receiver's) or `Undeliverable` (the sender's)."""
    lost: list[str] = attrs.field(factory=list)
    latencies: list[float] = attrs.field(factory=list)
    in_flight: int = 0
    peak_in_flight: int = 0
    serving: int = 0
    peak_serving: int = 0

    @property
    def total(self) -> int:
        return sum(self.ends.values())

    def end(self, kind: str, began: float, detail: str = "") -> None:
        self.ends[kind] += 1
        if kind == "reply":
            self.latencies.append(self.clock() - began)
        elif kind == "lost" and len(self.lost) < 20:
            self.lost.append(detail)


def serve_work(nodes: Sequence[Node], tally: Tally, hold: float) -> None:
    """Register `/load/work` on every node's root actor and grant it to every other."""
    for node in nodes:
        @node.root.behavior(COMMAND)
        async def work(message: Message[Any]) -> dict[str, Any]:
            tally.serving += 1
            tally.peak_serving = max(tally.peak_serving, tally.serving)
            try:
                await trio.sleep(hold)
            finally:
                tally.serving -= 1
            return {"n": message.args["n"]}
    for node in nodes:
        for other in nodes:
            if other is not node:
                other.add_proofs(node.grant(other.did, COMMAND, lifetime=None))


async def ask(sender: Node, target: Node, n: int, tally: Tally, timeout: float) -> str:
    """One request from `sender` to `target`, recorded in `tally` however it ends;
    returns how it ended (`reply`, `refused` or `lost`)."""
    began = tally.clock()
    tally.in_flight += 1
    tally.peak_in_flight = max(tally.peak_in_flight, tally.in_flight)
    detail = ""
    try:
        reply = await sender.root.invoke(target.root.handle, COMMAND, {"n": n},
                                         timeout=timeout)
    except RemoteError as error:
        if error.name in REFUSALS:
            tally.refusals[error.name] += 1
        kind, detail = ("refused" if error.name in REFUSALS else "lost"), str(error)
    except Undeliverable:
        tally.refusals["Undeliverable"] += 1
        kind = "refused"
    except RequestTimeout as error:
        kind, detail = "lost", str(error)
    else:
        ok = isinstance(reply, dict) and reply.get("n") == n
        kind, detail = ("reply" if ok else "lost"), f"request {n} answered {reply!r}"
    finally:
        tally.in_flight -= 1
    tally.end(kind, began, detail)
    return kind


async def keep_in_flight(nodes: Sequence[Node], plan: Sequence[tuple[int, int]],
                         seconds: float, tally: Tally, timeout: float,
                         pause_after_refusal: float = 0.0) -> None:
    """One worker per (sender, receiver) of `plan`, each asking again as soon as its
    request ends, until `seconds` (on `tally.clock`) have passed: as each reply arrives
    a new request takes its place. After a refusal a worker waits
    `pause_after_refusal` first, as a caller told `Busy` would (and so that, in virtual
    time, a refused hot spot does not spin without letting the clock move)."""
    deadline = tally.clock() + seconds

    async def worker(n: int, sender: Node, receiver: Node) -> None:
        asked = 0
        while tally.clock() < deadline:
            ended = await ask(sender, receiver, n * 1_000_000 + asked, tally, timeout)
            asked += 1
            if ended == "refused" and pause_after_refusal:
                await trio.sleep(pause_after_refusal)

    async with trio.open_nursery() as nursery:
        for n, (sender, receiver) in enumerate(plan):
            nursery.start_soon(worker, n, nodes[sender], nodes[receiver])


def pairs(nodes: int, count: int) -> list[tuple[int, int]]:
    """`count` (sender, receiver) index pairs spread evenly over every ordered pair of
    distinct nodes."""
    return [(i % nodes, (i % nodes + 1 + (i // nodes) % (nodes - 1)) % nodes)
            for i in range(count)]


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


def wall_clock() -> float:
    return time.perf_counter()
