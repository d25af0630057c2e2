"""Reconnect delays: exponential, capped, jittered so peers do not retry in lockstep."""

from __future__ import annotations

import random

import attrs


@attrs.frozen
class Backoff:
    initial: float = attrs.field(default=0.2, validator=attrs.validators.gt(0.0))
    maximum: float = 10.0
    factor: float = attrs.field(default=2.0, validator=attrs.validators.ge(1.0))
    jitter: float = attrs.field(
        default=0.2,
        validator=attrs.validators.and_(attrs.validators.ge(0.0), attrs.validators.lt(1.0)),
    )
    """Each delay is scaled by a random factor in [1 - jitter, 1 + jitter]."""

    def delay(self, failures: int, rng: random.Random) -> float:
        """Seconds to wait after `failures` consecutive failures (1 for the first)."""
        base = min(self.maximum, self.initial * self.factor ** max(0, failures - 1))
        return base * rng.uniform(1.0 - self.jitter, 1.0 + self.jitter)


DEFAULT_BACKOFF = Backoff()
