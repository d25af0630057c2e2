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


@attrs.frozen
class ChosenChain:
    """A subject and the chain (root first) proving a sender's command on it."""

    subject: str
    chain: tuple[Delegation, ...]
    valid_from: int | None  # latest nbf in the chain
    valid_until: int | None  # earliest exp in the chain
    provided: int  # the held delegations' version when chosen
    revocations: int  # the revocation set's version when chosen


class ChainChoices:
    """A bounded map (least recently used goes first) of remembered chain choices."""

    def __init__(self, trust: TrustContext, capacity: int = REMEMBERED_CHOICES) -> None:
        self.trust = trust
        self.capacity = capacity
        self._choices: OrderedDict[Hashable, ChosenChain] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, *, now: int, skew: int,
            args: dict[str, Any]) -> tuple[str, list[Delegation]] | None:
        """The remembered (subject, chain) when it still holds for a message sent at
        `now` with `args`, else None (and the stale choice is forgotten)."""
        chosen = self._choices.get(key)
        if chosen is None:
            self.misses += 1
            return None
        if not self._still_holds(chosen, now, skew, args):
            del self._choices[key]
            self.misses += 1
            return None
        self._choices.move_to_end(key)
        self.hits += 1
        return chosen.subject, list(chosen.chain)

    def remember(self, key: Hashable, subject: str, chain: list[Delegation]) -> None:
        """Remember a chain that was valid when chosen (the caller vouches for that)."""
        starts = [d.nbf for d in chain if d.nbf is not None]
        ends = [d.exp for d in chain if d.exp is not None]
        self._choices[key] = ChosenChain(
            subject, tuple(chain), max(starts) if starts else None,
            min(ends) if ends else None, self.trust.provided.version,
            self.trust.revocations.version)
        self._choices.move_to_end(key)
        while len(self._choices) > self.capacity:
            self._choices.popitem(last=False)

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
