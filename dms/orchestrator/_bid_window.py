"""The bid window: what providers answered a deployment's request, until there is
enough to solve. Sans-IO: the caller feeds answers and passes the time.

Every ensemble node needs `1 + redundancy` candidates (or `minimum_candidates`, if
more): providers whose bid names it; a pinned node needs its pinned peer among them.
The window closes early when every node has them, else when its round ends
(`round_seconds`, 2 s by default); the caller then solves, and if that fails before the
deadline, opens another round and repeats the request.

A provider's newest statement about a node is its answer for that node: a newer bid
replaces its older bid, a decline for a node withdraws the provider's bid for that
node, a bid naming a node withdraws the decline. Earlier rounds' answers are *kept*
when a round opens: a repeated request is for providers that missed it or changed
their mind, and throwing away offers that still stand would make a slow round worse.
A stale offer costs one failed commit, after which the provider is excluded.

Memory is bounded: at most `max_providers` providers, `max_provider_bytes` of answers
from one of them and `max_bytes` in all (sizes are estimated from the fields); a new
provider past a limit is set aside, never one already held, so a flood after the
honest answers changes nothing. Every answer set aside is counted by `IgnoreReason`.
"""

from __future__ import annotations

import math
import types
from collections import Counter
from collections.abc import Iterable, Mapping

import attrs

from dms.ensemble._requirements import EnsembleRequirements, NodeRequirements

from ._decline import NodeDecline
from ._ignored import IgnoreReason
from ._invalid import at_least, positive_seconds
from ._unplaceable import DeploymentUnplaceable
from .placement import (
    Assignment,
    Bid,
    Explanation,
    Measurements,
    Placement,
    SearchBudget,
    Strategy,
    Unplaceable,
    solve,
)

DEFAULT_ROUND_SECONDS = 2.0
MAX_EXCLUSION_REASON = 256  # characters kept of why a peer was excluded


def _at_least_one(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    at_least(attribute.name, value, 1)


@attrs.frozen
class BidWindowLimits:
    """How much one deployment's bid window may hold (see the module docstring)."""

    max_providers: int = attrs.field(default=1024, validator=_at_least_one)
    max_bytes: int = attrs.field(default=16 << 20, validator=_at_least_one)
    max_provider_bytes: int = attrs.field(default=64 << 10, validator=_at_least_one)


def bid_size(bid: Bid) -> int:
    """An estimate of what a bid costs to keep: a fixed overhead plus its text and
    its repeated fields, so a bid with a million gpus or node names is large."""
    texts = [bid.peer, *bid.executors, *(bid.nodes or ())]
    place = bid.location
    texts += [t for t in (place.continent, place.country, place.city, place.isp) if t]
    for gpu in bid.free.gpus:
        texts += [gpu.vendor, gpu.model]
    repeated = len(bid.public_ports or ()) + len(bid.free.gpus)
    return 128 + sum(len(t) for t in texts) + 16 * repeated


def decline_size(decline: NodeDecline) -> int:
    return 64 + len(decline.peer) + len(decline.node) + sum(16 + len(r) for r in decline.reasons)


@attrs.frozen
class _Answer:
    """What one provider has said, newest statement per node."""

    bid: Bid | None
    declines: Mapping[str, NodeDecline]

    @property
    def size(self) -> int:
        held = 0 if self.bid is None else bid_size(self.bid)
        return held + sum(decline_size(d) for d in self.declines.values())


class BidWindow:
    """Collects one deployment's bids and declines; see the module docstring."""

    def __init__(
        self,
        requirements: EnsembleRequirements,
        *,
        minimum_candidates: int = 1,
        round_seconds: float = DEFAULT_ROUND_SECONDS,
        limits: BidWindowLimits | None = None,
        exclude: Iterable[str] = (),
    ) -> None:
        at_least("minimum_candidates", minimum_candidates, 1)
        self.requirements = requirements
        self.round_seconds = positive_seconds("round_seconds", round_seconds)
        self.limits = BidWindowLimits() if limits is None else limits
        self._nodes: Mapping[str, NodeRequirements] = {n.name: n for n in requirements.nodes}
        self._needed = {
            n.name: max(1 + n.redundancy, minimum_candidates) for n in requirements.nodes
        }
        self._excluded: dict[str, str] = {
            p: "excluded by the ensemble" for p in requirements.exclude_peers
        }
        for peer in exclude:
            self._excluded[peer] = "excluded by the orchestrator"
        self._answers: dict[str, _Answer] = {}
        self._sizes: dict[str, int] = {}
        self._covering: dict[str, set[str]] = {name: set() for name in self._nodes}
        self._bytes = 0
        self._ignored: Counter[IgnoreReason] = Counter()
        self._round = 0
        self._closes_at = -math.inf

    # rounds

    @property
    def round(self) -> int:
        """How many rounds have been opened (0 before the first)."""
        return self._round

    @property
    def closes_at(self) -> float:
        return self._closes_at

    def open_round(self, now: float) -> float:
        """Start a round (the caller sends the request again); returns when it closes.
        Answers held so far are kept."""
        self._round += 1
        self._closes_at = now + self.round_seconds
        return self._closes_at

    def should_close(self, now: float) -> bool:
        """Early when every node has enough candidates, else at the round's end."""
        return now >= self._closes_at or self.enough()

    # answers

    def add_bid(self, bid: Bid) -> IgnoreReason | None:
        """Hold `bid` as its provider's offer, replacing the provider's older bid;
        returns why it was set aside instead, if it was."""
        if bid.peer in self._excluded:
            return self._ignore(IgnoreReason.EXCLUDED_PEER)
        if bid.nodes is not None:
            if not bid.nodes.issubset(self._nodes):
                return self._ignore(IgnoreReason.UNKNOWN_NODE)
            if not bid.nodes:
                return self._ignore(IgnoreReason.NO_NODE)
        held = self._answers.get(bid.peer)
        declines = {} if held is None else dict(held.declines)
        for node in self._covered(bid):
            declines.pop(node, None)
        return self._hold(bid.peer, _Answer(bid, types.MappingProxyType(declines)))

    def add_decline(self, decline: NodeDecline) -> IgnoreReason | None:
        """Hold `decline`, withdrawing its provider's bid for that node; returns why it
        was set aside instead, if it was."""
        if decline.peer in self._excluded:
            return self._ignore(IgnoreReason.EXCLUDED_PEER)
        if decline.node not in self._nodes:
            return self._ignore(IgnoreReason.UNKNOWN_NODE)
        held = self._answers.get(decline.peer)
        bid = None if held is None else held.bid
        if bid is not None and decline.node in self._covered(bid):
            rest = self._covered(bid) - {decline.node}
            bid = attrs.evolve(bid, nodes=rest) if rest else None
        declines = {} if held is None else dict(held.declines)
        declines[decline.node] = decline
        return self._hold(decline.peer, _Answer(bid, types.MappingProxyType(declines)))

    def exclude(self, peer: str, reason: str) -> None:
        """Drop everything `peer` said and set aside what it says from now on (it
        failed to commit, say); `reason` goes into the failure report."""
        self._excluded[peer] = reason[:MAX_EXCLUSION_REASON]
        self._drop(peer)

    def withdraw(self, peer: str) -> None:
        """Drop everything `peer` said, but hear it again: its offer went stale (another
        deployment took what it had free), and its next answer will say what is left."""
        self._drop(peer)

    # what the window knows

    @property
    def bids(self) -> tuple[Bid, ...]:
        """The offers held, one per provider, ordered by peer."""
        return tuple(
            answer.bid for _, answer in sorted(self._answers.items()) if answer.bid is not None
        )

    @property
    def declines(self) -> tuple[NodeDecline, ...]:
        """The declines held, ordered by node then peer."""
        found = [d for answer in self._answers.values() for d in answer.declines.values()]
        return tuple(sorted(found, key=lambda d: (d.node, d.peer)))

    @property
    def excluded(self) -> frozenset[str]:
        return frozenset(self._excluded)

    @property
    def ignored(self) -> Mapping[IgnoreReason, int]:
        return types.MappingProxyType(dict(self._ignored))

    @property
    def bytes(self) -> int:
        """The estimated size of what is held, never above `limits.max_bytes`."""
        return self._bytes

    @property
    def providers(self) -> int:
        return len(self._answers)

    def candidates(self, node: str) -> frozenset[str]:
        """The providers whose bid names `node` (KeyError for a node not in the
        ensemble)."""
        return frozenset(self._covering[node])

    def shortfall(self) -> Mapping[str, tuple[int, int]]:
        """Nodes without enough candidates yet: name → (candidates, needed). A pinned
        node whose pinned peer has not bid for it is short even with more bids."""
        short = {}
        for name, peers in self._covering.items():
            if not self._satisfied(name):
                short[name] = (len(peers), self._needed[name])
        return short

    def enough(self) -> bool:
        return all(self._satisfied(name) for name in self._covering)

    # solving

    def solve(
        self,
        measurements: Measurements | None = None,
        *,
        strategy: Strategy = "pack",
        budget: SearchBudget | None = None,
        previous: Assignment | None = None,
        replace: frozenset[str] = frozenset(),
    ) -> Placement:
        """`placement.solve` over the bids held, with the window's exclusions; raises
        `DeploymentUnplaceable` (the explanation with the declines) when it fails."""
        try:
            return solve(
                self.requirements,
                self.bids,
                measurements,
                exclude=self.excluded,
                strategy=strategy,
                budget=budget,
                previous=previous,
                replace=replace,
            )
        except Unplaceable as failure:
            raise self.unplaceable(failure.explanation) from failure

    def unplaceable(self, explanation: Explanation) -> DeploymentUnplaceable:
        """The user's failure: the solver's `explanation` joined with what the window
        holds (declines, exclusions, ignored answers, rounds)."""
        return DeploymentUnplaceable(
            explanation,
            declines=self.declines,
            excluded=self._excluded,
            ignored=self._ignored,
            rounds=self._round,
            answered=len(self._answers),
        )

    # internals

    def _covered(self, bid: Bid) -> frozenset[str]:
        return frozenset(self._nodes) if bid.nodes is None else bid.nodes

    def _satisfied(self, node: str) -> bool:
        peers = self._covering[node]
        pinned = self._nodes[node].peer
        return len(peers) >= self._needed[node] and (pinned is None or pinned in peers)

    def _ignore(self, reason: IgnoreReason) -> IgnoreReason:
        self._ignored[reason] += 1
        return reason

    def _hold(self, peer: str, answer: _Answer) -> IgnoreReason | None:
        if peer not in self._answers and len(self._answers) >= self.limits.max_providers:
            return self._ignore(IgnoreReason.TOO_MANY_PROVIDERS)
        size = answer.size
        total = self._bytes - self._sizes.get(peer, 0) + size
        if size > self.limits.max_provider_bytes or total > self.limits.max_bytes:
            return self._ignore(IgnoreReason.TOO_LARGE)
        self._drop(peer)
        self._answers[peer] = answer
        self._sizes[peer] = size
        self._bytes += size
        if answer.bid is not None:
            for node in self._covered(answer.bid):
                self._covering[node].add(peer)
        return None

    def _drop(self, peer: str) -> None:
        answer = self._answers.pop(peer, None)
        if answer is None:
            return
        self._bytes -= self._sizes.pop(peer)
        if answer.bid is not None:
            for node in self._covered(answer.bid):
                self._covering[node].discard(peer)
