"""The phases a deployment goes through, as the names the store and the wire use.

The store package owns the canonical enum with these same values; this module is the
one place the orchestrator imports it from, so swapping it at merge is one line.
"""

from __future__ import annotations

import enum


class DeploymentPhase(enum.StrEnum):
    PENDING = "pending"
    BIDDING = "bidding"
    SOLVING = "solving"
    COMMITTING = "committing"
    ALLOCATING = "allocating"
    RUNNING = "running"
    SHUTTING_DOWN = "shutting_down"
    COMPLETED = "completed"
    FAILED = "failed"
