"""The wire form of the network's data: one cattrs converter, configured here.

An `AddressPlan` travels as `{"ensemble": str, "subnet": "10.a.b.0/24",
"addresses": {allocation: "10.a.b.c"}}`. Decoding is strict (no extra keys, strings
only, no host bits in the subnet) and every failure is an `InvalidPlan` naming its path,
including the plan's own rules checked after structuring.
"""

from __future__ import annotations

from ipaddress import AddressValueError, IPv4Address, IPv4Network, NetmaskValueError
from typing import Any

import attrs
import cattrs

from dms.network._errors import InvalidPlan
from dms.network._plan import AddressPlan


@attrs.frozen
class _PlanShape:
    ensemble: str
    subnet: IPv4Network
    addresses: dict[str, IPv4Address]


def _strict_str(value: object, _: type) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    return value


def _network(value: object, _: type) -> IPv4Network:
    text = _strict_str(value, str)
    try:
        return IPv4Network(text, strict=True)
    except (AddressValueError, NetmaskValueError, ValueError) as exc:
        raise ValueError(f"{text!r} is not an IPv4 subnet ({exc})") from None


def _address(value: object, _: type) -> IPv4Address:
    text = _strict_str(value, str)
    try:
        return IPv4Address(text)
    except AddressValueError as exc:
        raise ValueError(f"{text!r} is not an IPv4 address ({exc})") from None


network_converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
network_converter.register_structure_hook(str, _strict_str)
network_converter.register_structure_hook(IPv4Network, _network)
network_converter.register_structure_hook(IPv4Address, _address)
network_converter.register_unstructure_hook(IPv4Network, str)
network_converter.register_unstructure_hook(IPv4Address, str)


def plan_to_wire(plan: AddressPlan) -> dict[str, Any]:
    return {"ensemble": plan.ensemble, "subnet": str(plan.subnet),
            "addresses": {name: str(address) for name, address in plan.addresses}}


def plan_from_wire(data: object) -> AddressPlan:
    """The plan `data` describes, or `InvalidPlan` naming the first wrong path."""
    if not isinstance(data, dict):
        raise InvalidPlan("plan", f"expected a mapping, got {type(data).__name__}")
    try:
        shape = network_converter.structure(data, _PlanShape)
    except cattrs.BaseValidationError as exc:
        first = cattrs.transform_error(exc, path="plan", format_exception=_say)[0]
        where, _, problem = first.partition(" @ ")
        raise InvalidPlan(problem or "plan", where) from None
    try:
        return AddressPlan(shape.ensemble, shape.subnet, tuple(sorted(shape.addresses.items())))
    except InvalidPlan as exc:
        raise InvalidPlan(f"plan.{exc.field}", exc.problem) from None


def _say(exc: BaseException, kind: type | None) -> str:
    if isinstance(exc, ValueError) and str(exc):
        return str(exc)
    return cattrs.v.format_exception(exc, kind)
