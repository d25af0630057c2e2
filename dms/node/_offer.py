"""What an operator offers of the machine, as written on the command line.

    --provide cpu=1,ram=1Gi,disk=4Gi,gpus=0     at most these (never more than there is)
    --provide cpu=50%,ram=2Gi                   half the cores, at most 2 GiB; all the disk
    --provide all                               the whole machine

    --ports 8000-8999,9100                      host ports workloads may publish

Each value caps what the machine has (measured when the node starts), so the offer is
an `OnboardingLimits`: a node never promises more than its machine, whatever is typed.
"""

from __future__ import annotations

from fractions import Fraction

from dms.ensemble._units import UnitError, parse_cpu, parse_size
from dms.provider import InvalidLimit, OnboardingLimits, Share

OFFER_KEYS = ("cpu", "ram", "disk", "gpus")


class InvalidOffer(ValueError):
    """An offer that cannot be read (the message names the key and the problem)."""


def parse_offer(text: str) -> OnboardingLimits:
    """`cpu=...,ram=...,disk=...,gpus=...` (any of them, each at most once), or `all`."""
    if text.strip() == "all":
        return OnboardingLimits()
    shares: dict[str, Share] = {}
    for item in text.split(","):
        key, equals, value = (part.strip() for part in item.partition("="))
        if not equals or not value:
            raise InvalidOffer(f"{item.strip()!r} is not KEY=VALUE (keys: "
                               f"{', '.join(OFFER_KEYS)}; or `all`)")
        if key not in OFFER_KEYS:
            raise InvalidOffer(f"{key!r} is not one of {', '.join(OFFER_KEYS)}")
        if key in shares:
            raise InvalidOffer(f"{key} is given twice")
        shares[key] = _share(key, value)
    try:
        return OnboardingLimits(cpu=shares.get("cpu", Share()), ram=shares.get("ram", Share()),
                                disk=shares.get("disk", Share()),
                                gpus=shares.get("gpus", Share()))
    except InvalidLimit as error:
        raise InvalidOffer(str(error)) from None


def _share(key: str, value: str) -> Share:
    if value.endswith("%"):
        try:
            percent = Fraction(value[:-1])
        except (ValueError, ZeroDivisionError):
            raise InvalidOffer(f"{key}={value}: {value[:-1]!r} is not a number") from None
        if not 0 <= percent <= 100:
            raise InvalidOffer(f"{key}={value}: a share is between 0% and 100%")
        return Share(fraction=float(percent / 100))
    try:
        if key == "cpu":
            amount: float = parse_cpu(value)
        elif key == "gpus":
            if not value.isdigit():
                raise InvalidOffer(f"{key}={value}: must be a whole number of devices")
            amount = int(value)
        else:
            amount = parse_size(value)
    except (UnitError, ValueError) as error:
        raise InvalidOffer(f"{key}={value}: {error}") from None
    if amount < 0:
        raise InvalidOffer(f"{key}={value}: must be 0 or more")
    return Share(at_most=amount)


MAX_PORT = 65535


def parse_ports(text: str) -> frozenset[int]:
    """`LOW-HIGH` ranges and single ports, comma-separated, each in 1-65535."""
    ports: set[int] = set()
    for item in text.split(","):
        low, dash, high = (part.strip() for part in item.partition("-"))
        try:
            first, last = int(low), int(high if dash else low)
        except ValueError:
            raise InvalidOffer(f"{item.strip()!r} is not a port or a LOW-HIGH range") from None
        if not 1 <= first <= last <= MAX_PORT:
            raise InvalidOffer(f"{item.strip()!r}: ports are 1-{MAX_PORT}, low to high")
        ports.update(range(first, last + 1))
    return frozenset(ports)
