"""The mesh's reconnect delays: the shared `Backoff`, jittered so peers do not redial in lockstep."""

from __future__ import annotations

from dms.backoff import Backoff

DEFAULT_BACKOFF = Backoff(initial=0.2, maximum=10.0, jitter=0.2)
