"""Typed behavior arguments: one cattrs converter for everything on the wire.

A behavior that declares an attrs class for its args gets an instance of it, or never
runs: args that do not structure are refused with every failing field's path named
(`InvalidArgs: args.resources.cpu: expected float`). Unknown keys are refused too, so a
misspelled field is an error rather than a silently ignored option. Return values that
are attrs instances are unstructured by the same converter.
"""

from __future__ import annotations

from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.v import format_exception

from ucan import CID

T = TypeVar("T")

wire_converter = cattrs.Converter(forbid_extra_keys=True)
"""The wire converter (IPLD data in and out): configure wire types here, nowhere else."""



def _exactly(kind: type) -> None:
    """Structure `kind` only from values already of that type: cattrs would call
    `str(1)` or `int("7")`, and a wire format that guesses is one that can be fooled."""

    def structure(value: Any, _: Any) -> Any:
        if isinstance(value, bool) is not (kind is bool) or not isinstance(value, kind):
            raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
        return value

    wire_converter.register_structure_hook(kind, structure)


def _structure_float(value: Any, _: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected float, got {type(value).__name__}")
    return float(value)


for _kind in (str, bytes, bool, int, CID):
    _exactly(_kind)
wire_converter.register_structure_hook(float, _structure_float)
wire_converter.register_unstructure_hook(CID, lambda value: value)


class InvalidArgs(ValueError):
    """Args that do not fit the behavior's declared type; `problems` name each path."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def structure_args(args: Any, kind: type[T]) -> T:
    """`args` as an instance of `kind`, or InvalidArgs listing every problem by path."""
    try:
        return wire_converter.structure(args, kind)
    except (cattrs.BaseValidationError, ValueError, TypeError, KeyError) as exc:
        raise InvalidArgs(_problems(exc)) from None


def _problems(exc: Exception) -> list[str]:
    if isinstance(exc, cattrs.BaseValidationError):
        return [_readable(line)
                for line in cattrs.transform_error(exc, path="args", format_exception=_say)]
    return [f"args: {exc}"]


def _say(exc: BaseException, kind: type | None) -> str:
    """Our own type errors already say what was expected and what came."""
    if isinstance(exc, TypeError) and str(exc).startswith("expected "):
        return str(exc)
    return format_exception(exc, kind)


def _readable(line: str) -> str:
    # cattrs says "invalid value for type, expected int @ args.cpu": path first reads better
    message, _, path = line.rpartition(" @ ")
    return f"{path}: {message}" if path else line


def unstructure_result(value: Any) -> Any:
    """A behavior's return value as IPLD data (attrs instances unstructured)."""
    if attrs.has(type(value)) or isinstance(value, (list, tuple, dict)):
        return wire_converter.unstructure(value)
    return value


def is_args_type(kind: object) -> bool:
    return isinstance(kind, type) and attrs.has(kind)
