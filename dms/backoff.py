"""Delays between retries: exponential from `initial`, capped at `maximum`, optionally jittered.

One type for every retry loop in dms. The mesh jitters its reconnects so peers do not
retry in lockstep; supervision leaves jitter at 0 so its restart delays are exact and
its tests deterministic. Randomness is passed in, never global, so jittered delays are
reproducible with a seeded `random.Random`.
"""

from __future__ import annotations

import random

import attrs

__all__ = ["Backoff"]


@attrs.frozen
class Backoff:
    initial: float = attrs.field(default=1.0, validator=attrs.validators.gt(0.0))
    factor: float = attrs.field(default=2.0, validator=attrs.validators.ge(1.0))
    maximum: float = 60.0
    jitter: float = attrs.field(
        default=0.0,
        validator=attrs.validators.and_(attrs.validators.ge(0.0), attrs.validators.lt(1.0)),
    )
    """Each delay is scaled by a random factor in [1 - jitter, 1 + jitter]."""

    def __attrs_post_init__(self) -> None:
        if self.maximum < self.initial:
            raise ValueError(f"Backoff.maximum: {self.maximum} is below initial {self.initial}")

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number `attempt` (1 for the first, after one
        failure). A jittered backoff needs `rng`: a ValueError says so."""
        base = float(min(self.maximum, self.initial * self.factor ** max(0, attempt - 1)))
        if not self.jitter:
            return base
        if rng is None:
            raise ValueError("Backoff.delay: a jittered backoff needs an rng")
        return base * rng.uniform(1.0 - self.jitter, 1.0 + self.jitter)
