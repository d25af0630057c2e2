"""The sender's memory of which proof chain it chose, so that a steady stream of
messages to one audience does not search the held delegations for every message.

A choice is remembered per (sender, command, subject or target, extra proofs) and
used again only while everything it was chosen from still stands: the same held
delegations and revocations (both carry a version that grows on every change), every
delegation of the chain inside its time window (give or take the skew), and its
policies holding for this message's args. Anything else and the chain is searched for
again. Only chains that were valid when chosen are remembered: the fallback of
sending the best invalid chain (so the receiver names the reason) is never cached.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

import attrs

from ucan import Delegation, TrustContext

REMEMBERED_CHOICES = 1024
REMEMBERED_BYTES = 4 * 1024 * 1024
CHOICE_OVERHEAD = 600
"""Heap bytes a remembered choice costs beside its delegations (its key, the record)."""
DELEGATION_COST = 1400
"""Heap bytes a delegation costs beside its envelope (decoded fields, policy, CID)."""
SWEEP_EVERY = 64
"""Misses between sweeps for choices that can never hold again."""


@attrs.frozen
class ChosenChain:
    """A subject and the chain (root first) proving a sender's command on it."""

    subject: str
    chain: tuple[Delegation, ...]
    valid_from: int | None  # latest nbf in the chain
    valid_until: int | None  # earliest exp in the chain
    provided: int  # the held delegations' version when chosen
    revocations: int  # the revocation set's version when chosen

    @property
    def cost(self) -> int:
        """Bytes charged for it, its delegations counted whole (they may be shared)."""
        return CHOICE_OVERHEAD + sum(len(d.envelope) + DELEGATION_COST for d in self.chain)


class ChainChoices:
    """A map of remembered chain choices, bounded in entries and bytes (least recently
    used goes first). Every `SWEEP_EVERY` misses it also forgets the choices that can
    never hold again (chosen from older held delegations or revocations, or expired),
    so that actors that come and go leave nothing behind: each new grant makes every
    earlier choice stale."""

    def __init__(self, trust: TrustContext, capacity: int = REMEMBERED_CHOICES,
                 max_bytes: int = REMEMBERED_BYTES) -> None:
        self.trust = trust
        self.capacity = capacity
        self.max_bytes = max_bytes
        self.bytes = 0
        self._choices: OrderedDict[Hashable, ChosenChain] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, *, now: int, skew: int,
            args: dict[str, Any]) -> tuple[str, list[Delegation]] | None:
        """The remembered (subject, chain) when it still holds for a message sent at
        `now` with `args`, else None (and the stale choice is forgotten)."""
        chosen = self._choices.get(key)
        if chosen is None or not self._still_holds(chosen, now, skew, args):
            if chosen is not None:
                self._forget(key)
            self.misses += 1
            if self.misses % SWEEP_EVERY == 0:
                self._sweep(now, skew)
            return None
        self._choices.move_to_end(key)
        self.hits += 1
        return chosen.subject, list(chosen.chain)

    def remember(self, key: Hashable, subject: str, chain: list[Delegation]) -> None:
        """Remember a chain that was valid when chosen (the caller vouches for that)."""
        starts = [d.nbf for d in chain if d.nbf is not None]
        ends = [d.exp for d in chain if d.exp is not None]
        self._forget(key)
        chosen = ChosenChain(
            subject, tuple(chain), max(starts) if starts else None,
            min(ends) if ends else None, self.trust.provided.version,
            self.trust.revocations.version)
        self._choices[key] = chosen
        self.bytes += chosen.cost
        while self._choices and (len(self._choices) > self.capacity
                                 or self.bytes > self.max_bytes):
            self._forget(next(iter(self._choices)))

    def _forget(self, key: Hashable) -> None:
        chosen = self._choices.pop(key, None)
        if chosen is not None:
            self.bytes -= chosen.cost

    def _sweep(self, now: int, skew: int) -> None:
        """Forget every choice that can never hold again (the versions only grow)."""
        dead = [key for key, chosen in self._choices.items()
                if chosen.provided != self.trust.provided.version
                or chosen.revocations != self.trust.revocations.version
                or (chosen.valid_until is not None and now - skew > chosen.valid_until)]
        for key in dead:
            self._forget(key)

    def __len__(self) -> int:
        return len(self._choices)

    def _still_holds(self, chosen: ChosenChain, now: int, skew: int,
                     args: dict[str, Any]) -> bool:
        return (
            chosen.provided == self.trust.provided.version
            and chosen.revocations == self.trust.revocations.version
            and (chosen.valid_until is None or now - skew <= chosen.valid_until)
            and (chosen.valid_from is None or now + skew >= chosen.valid_from)
            and all(not d.policy.statements or d.policy.first_failure(args) is None
                    for d in chosen.chain)
        )
