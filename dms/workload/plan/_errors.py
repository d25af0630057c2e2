"""Why an allocation cannot be turned into something a provider runs."""

from __future__ import annotations


class PlanError(ValueError):
    """An allocation cannot be planned; the message names the allocation and the field."""

    def __init__(self, allocation: str, field: str, reason: str) -> None:
        super().__init__(f"allocation {allocation!r}: {field}: {reason}")
        self.allocation = allocation
        self.field = field
        self.reason = reason


class UnknownAllocation(PlanError):
    """The ensemble has no allocation of that name, or no node that holds it."""


class UnsupportedField(PlanError):
    """A field is set that no executor here can honour; refused rather than ignored."""


class MissingSource(PlanError):
    """A script or key file the allocation names could not be read or is not defined."""


class InvalidWorkload(PlanError):
    """The values translate, but the executor spec or health check rejects them."""
