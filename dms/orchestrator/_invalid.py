"""The one error for an orchestrator setting out of range (an undo timeout, a bid
window limit): raised where the setting is made, naming the field and the value."""

from __future__ import annotations

import math


class InvalidSetting(ValueError):
    """A setting that cannot work; the message names the field and what it must be."""


def positive_seconds(field: str, value: float) -> float:
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise InvalidSetting(f"{field} must be a finite number of seconds > 0, got {value!r}")
    return float(value)


def at_least(field: str, value: int, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidSetting(f"{field} must be a whole number >= {minimum}, got {value!r}")
    return value
