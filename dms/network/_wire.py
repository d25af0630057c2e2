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
from dms.network._plan import AddressPlan, NetworkOrder


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


def _names(value: object, _: type) -> list[str]:
    if not isinstance(value, list):
        raise ValueError(f"expected a list of allocation names, got {type(value).__name__}")
    for index, name in enumerate(value):
        if not isinstance(name, str):
            raise ValueError(f"item {index}: expected a string, got {type(name).__name__}")
    return list(value)


network_converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
network_converter.register_structure_hook_func(lambda kind: kind == list[str], _names)
network_converter.register_structure_hook(str, _strict_str)
network_converter.register_structure_hook(IPv4Network, _network)
network_converter.register_structure_hook(IPv4Address, _address)
network_converter.register_unstructure_hook(IPv4Network, str)
network_converter.register_unstructure_hook(IPv4Address, str)


@attrs.frozen
class _OrderShape:
    plan: dict[str, Any]
    hosts: dict[str, list[str]]
    dns_names: dict[str, str] = attrs.Factory(dict)
    joined: str | None = None


def order_to_wire(order: NetworkOrder) -> dict[str, Any]:
    wire: dict[str, Any] = {
        "plan": plan_to_wire(order.plan),
        "hosts": {peer: list(allocations) for peer, allocations in order.hosts},
        "dns_names": dict(order.dns_names)}
    if order.joined is not None:
        wire["joined"] = order.joined
    return wire


def order_from_wire(data: object) -> NetworkOrder:
    """The order `data` describes, or `InvalidPlan` naming the first wrong path
    (`network.plan.subnet`, `network.hosts.<peer>`, ...)."""
    if not isinstance(data, dict):
        raise InvalidPlan("network", f"expected a mapping, got {type(data).__name__}")
    try:
        shape = network_converter.structure(data, _OrderShape)
    except cattrs.BaseValidationError as exc:
        raise _located(exc, "network") from None
    try:
        plan = plan_from_wire(shape.plan)
    except InvalidPlan as exc:
        raise InvalidPlan(f"network.{exc.field}", exc.problem) from None
    try:
        return NetworkOrder(plan, tuple(sorted((p, tuple(a)) for p, a in shape.hosts.items())),
                            tuple(sorted(shape.dns_names.items())), shape.joined)
    except InvalidPlan as exc:
        raise InvalidPlan(f"network.{exc.field}", exc.problem) from None


def _located(exc: cattrs.BaseValidationError, root: str) -> InvalidPlan:
    first = cattrs.transform_error(exc, path=root, format_exception=_say)[0]
    problem, _, where = first.partition(" @ ")
    return InvalidPlan(where or root, problem)


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
        raise _located(exc, "plan") from None
    try:
        return AddressPlan(shape.ensemble, shape.subnet, tuple(sorted(shape.addresses.items())))
    except InvalidPlan as exc:
        raise InvalidPlan(f"plan.{exc.field}", exc.problem) from None


def _say(exc: BaseException, kind: type | None) -> str:
    if isinstance(exc, ValueError) and str(exc):
        return str(exc)
    return cattrs.v.format_exception(exc, kind)
