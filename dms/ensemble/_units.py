"""Quantities as people write them in ensemble files, normalized to the units the
rest of dms computes with: bytes, cpu cores, seconds, milliseconds, bits per second.

Bare numbers keep NuNet ensemble v1 meanings so its files load unchanged:

| quantity  | bare number means | with units                                    |
|-----------|-------------------|-----------------------------------------------|
| size      | GiB               | `1024B`, `512Ki`, `512Mi`, `2G`, `1.5GiB`, `1TB` |
| cpu       | cores             | `0.5`, `2`, `500m` (millicores)               |
| duration  | seconds           | `500ms`, `10s`, `5m`, `1h`, `1m30s`           |
| rtt       | milliseconds      | `250us`, `10ms`, `0.5s`                       |
| bandwidth | bits per second   | `100kbps`, `100Mbps`, `1Gbit/s`, `10MB/s` (bytes) |

Decimal prefixes (k, M, G, T, P) are powers of 1000, binary ones (Ki, Mi, Gi, Ti, Pi)
powers of 1024. Every parser raises `UnitError` naming what would be valid.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

from dms.ensemble._bounds import MAX_BITS_PER_SECOND, MAX_BYTES, MAX_NANOSECONDS

GIB = 1024**3


class UnitError(ValueError):
    """A value that is not a quantity of the expected kind."""


_DECIMAL = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "p": 10**15}
_BINARY = {"ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40, "pi": 2**50}

_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_SIZE = re.compile(rf"\s*({_NUMBER})\s*([kKmMgGtTpP]i?)?([bB])?\s*")
_QUANTITY = re.compile(rf"\s*({_NUMBER})\s*([a-zA-Z/]*)\s*")
_DURATION_PART = re.compile(rf"({_NUMBER})(ns|us|µs|ms|s|m|h)")

_SIZE_HINT = "a size such as 512Mi, 2G, 1.5GiB or 1024B, or a bare number of GiB"
_CPU_HINT = "cpu cores such as 0.5 or 2, or millicores such as 500m"
_DURATION_HINT = "a duration such as 500ms, 10s, 5m or 1m30s, or a bare number of seconds"
_RTT_HINT = "a round-trip time such as 10ms or 0.5s, or a bare number of milliseconds"
_BANDWIDTH_HINT = "a bandwidth such as 100Mbps, 1Gbit/s or 10MB/s, or a bare number of bits/s"


def _number(value: object, hint: str) -> float | None:
    """The value as a finite float if it is a YAML number, None if it is a string."""
    if isinstance(value, bool):
        raise UnitError(f"{value!r} is not {hint}")
    if isinstance(value, int | float):
        number = float(value)
        if not math.isfinite(number):
            raise UnitError(f"{value!r} is not a finite number: expected {hint}")
        return number
    if isinstance(value, str):
        return None
    got = {list: "a list", dict: "a mapping", type(None): "null"}.get(type(value), type(value).__name__)
    raise UnitError(f"expected {hint}, got {got}")


def _finite(text: str, original: object, hint: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise UnitError(f"{original!r} is too large a number: expected {hint}")
    return number


def _exact(text: str) -> Fraction:
    """Decimal text as an exact fraction, so `9007199254740993B` stays that many bytes."""
    return Fraction(text)


def _bounded(amount: Fraction, limit: int, original: object, unit: str) -> int:
    """`amount` rounded to a whole number of `unit`s, or `UnitError` when it does not
    fit the wire's signed 64-bit integers."""
    if abs(amount) > limit:
        raise UnitError(f"{original!r} is more than the largest {unit}: 2**63-1")
    return round(amount)


def parse_size(value: object) -> int:
    """Bytes. Bare numbers are GiB (NuNet's `size: 1` means 1 GiB)."""
    number = _number(value, _SIZE_HINT)
    if number is not None:
        return _bounded(Fraction(number) * GIB, MAX_BYTES, value, "size in bytes")
    assert isinstance(value, str)
    match = _SIZE.fullmatch(value)
    if match is None:
        raise UnitError(f"{value!r} is not {_SIZE_HINT}")
    amount = _exact(match.group(1))
    prefix, byte_suffix = (match.group(2) or "").lower(), match.group(3)
    if not prefix and not byte_suffix:
        return _bounded(amount * GIB, MAX_BYTES, value, "size in bytes")
    scale = _BINARY[prefix] if prefix.endswith("i") else _DECIMAL[prefix]
    if byte_suffix == "b" and prefix:  # `Mb` is megabits: never a size
        raise UnitError(f"{value!r} looks like bits; sizes are bytes: use {prefix.upper()}B")
    return _bounded(amount * scale, MAX_BYTES, value, "size in bytes")


def format_size(size: int) -> str:
    """The shortest exact spelling `parse_size` reads back to `size`."""
    for suffix, scale in (("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if size and size % scale == 0:
            return f"{size // scale}{suffix}"
    return f"{size}B"


def readable_size(size: int) -> str:
    """A size as a person reads it: its largest unit, one decimal (`23.5Gi`); exact
    when it is a whole number of that unit. For display only (`format_size` spells a
    size exactly)."""
    for suffix, scale in (("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if size >= scale:
            return f"{size / scale:.1f}".removesuffix(".0") + suffix
    return f"{size}B"


def parse_cpu(value: object) -> float:
    """Cores as a float; `500m` is half a core."""
    number = _number(value, _CPU_HINT)
    if number is not None:
        return number
    assert isinstance(value, str)
    match = _QUANTITY.fullmatch(value)
    if match is None or match.group(2) not in ("", "m"):
        raise UnitError(f"{value!r} is not {_CPU_HINT}")
    amount = _finite(match.group(1), value, _CPU_HINT)
    return amount / 1000 if match.group(2) == "m" else amount


_SECONDS = {
    "ns": Fraction(1, 10**9),
    "us": Fraction(1, 10**6),
    "µs": Fraction(1, 10**6),
    "ms": Fraction(1, 1000),
    "s": Fraction(1),
    "m": Fraction(60),
    "h": Fraction(3600),
}


def _parse_duration(value: object, hint: str, unit: str) -> float:
    """The duration in `unit`s; a bare number is already in `unit`s. Exact arithmetic,
    so `10ms` is exactly 10.0 milliseconds."""
    number = _number(value, hint)
    if number is not None:
        total = Fraction(number) * _SECONDS[unit]
    else:
        assert isinstance(value, str)
        text = value.strip()
        if re.fullmatch(_NUMBER, text):
            total = _exact(text) * _SECONDS[unit]
        else:
            parts = _DURATION_PART.findall(text)
            if not parts or "".join(n + u for n, u in parts) != text:
                raise UnitError(f"{value!r} is not {hint}")
            total = sum((_exact(n) * _SECONDS[u] for n, u in parts), Fraction(0))
    _bounded(total * 10**9, MAX_NANOSECONDS, value, "duration in nanoseconds")
    return float(total / _SECONDS[unit])


def parse_duration(value: object) -> float:
    """Seconds (healthcheck interval and timeout)."""
    return _parse_duration(value, _DURATION_HINT, "s")


def parse_rtt(value: object) -> float:
    """Milliseconds (edge round-trip time)."""
    return _parse_duration(value, _RTT_HINT, "ms")


_BITS = {"bps": 1, "bit/s": 1, "b/s": 1, "Bps": 8, "B/s": 8}


def parse_bandwidth(value: object) -> int:
    """Bits per second; `10MB/s` (bytes) is 80 Mbit/s."""
    number = _number(value, _BANDWIDTH_HINT)
    if number is not None:
        return _bounded(Fraction(number), MAX_BITS_PER_SECOND, value, "bandwidth in bits/s")
    assert isinstance(value, str)
    match = _QUANTITY.fullmatch(value)
    if match is None:
        raise UnitError(f"{value!r} is not {_BANDWIDTH_HINT}")
    amount = _exact(match.group(1))
    unit = match.group(2)
    if not unit:
        return _bounded(amount, MAX_BITS_PER_SECOND, value, "bandwidth in bits/s")
    prefix, rest = (unit[0], unit[1:]) if unit[0] in "kKMGTP" else ("", unit)
    if rest not in _BITS:
        raise UnitError(f"{value!r} is not {_BANDWIDTH_HINT}")
    return _bounded(amount * _DECIMAL[prefix.lower()] * _BITS[rest], MAX_BITS_PER_SECOND, value, "bandwidth in bits/s")
