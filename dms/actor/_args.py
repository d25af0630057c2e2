"""Typed behavior arguments: one cattrs converter for everything on the wire.

A behavior that declares an attrs class for its args gets an instance of it, or never
runs: args that do not structure are refused with every failing field's path named
(`InvalidArgs: args.resources.cpu: expected float`). Unknown keys are refused too, so a
misspelled field is an error rather than a silently ignored option. Return values that
are attrs instances are unstructured by the same converter.
"""

from __future__ import annotations

import enum
import typing
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


def _structure_str_enum(value: Any, kind: type[enum.StrEnum]) -> enum.StrEnum:
    """A StrEnum is a str: without this the str hook would pass any string through."""
    if not isinstance(value, str):
        raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
    return kind(value)  # ValueError names a value that is not a member


for _kind in (str, bytes, bool, int, CID):
    _exactly(_kind)
wire_converter.register_structure_hook(float, _structure_float)
wire_converter.register_structure_hook(enum.StrEnum, _structure_str_enum)


def _is_set(kind: Any) -> bool:
    return kind in (set, frozenset) or typing.get_origin(kind) in (set, frozenset)


def _unstructure_set(value: Any) -> list[Any]:
    """Sets go on the wire as lists (DAG-CBOR has no sets), sorted when their items
    can be, so that one value always encodes to the same bytes."""
    items = [wire_converter.unstructure(item) for item in value]
    try:
        return sorted(items)
    except TypeError:
        return items


wire_converter.register_unstructure_hook_func(_is_set, _unstructure_set)
wire_converter.register_unstructure_hook(CID, lambda value: value)


class InvalidArgs(ValueError):
    """Args that do not fit the behavior's declared type; `problems` name each path."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


DETAILED_LIMIT = 1_000
"""Args with more values than this are structured failing fast: detailed validation
makes an exception (and a line of the reply) per bad value, so a big list of bad values
would cost the node seconds of its event loop and its caller a reply many times the
request's size."""

MAX_PROBLEMS = 10
MAX_PROBLEM_CHARS = 300


def structure_args(args: Any, kind: type[T]) -> T:
    """`args` as an instance of `kind`, or InvalidArgs listing (the first few) problems by
    path. Big args are checked failing at the first problem, which is named alone."""
    converter = (wire_converter if _at_most(args, DETAILED_LIMIT)
                 else wire_converter.copy(detailed_validation=False))
    try:
        return converter.structure(args, kind)
    except (cattrs.BaseValidationError, cattrs.ForbiddenExtraKeysError, ValueError,
            TypeError, KeyError) as exc:
        raise InvalidArgs(_problems(exc)) from None


def _at_most(value: Any, limit: int) -> bool:
    """Whether `value` holds at most `limit` values (map keys and values, list items)."""
    pending, count = [value], 0
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            count += 2 * len(item)
            if count > limit:
                return False
            pending.extend(item.values())
        elif isinstance(item, (list, tuple)):
            count += len(item)
            if count > limit:
                return False
            pending.extend(item)
    return True


def _problems(exc: Exception) -> list[str]:
    if isinstance(exc, cattrs.BaseValidationError):
        lines = [_readable(line)
                 for line in cattrs.transform_error(exc, path="args", format_exception=_say)]
    else:
        lines = [f"args: {exc}"]
    shown = [_clip(line) for line in lines[:MAX_PROBLEMS]]
    if len(lines) > MAX_PROBLEMS:
        shown.append(f"and {len(lines) - MAX_PROBLEMS} more")
    return shown


def _clip(line: str) -> str:
    if len(line) <= MAX_PROBLEM_CHARS:
        return line
    return line[:MAX_PROBLEM_CHARS] + f"... ({len(line)} characters)"


def _say(exc: BaseException, kind: type | None) -> str:
    """Our own type errors already say what was expected and what came."""
    if isinstance(exc, TypeError) and str(exc).startswith("expected "):
        return str(exc)
    return format_exception(exc, kind)


def _readable(line: str) -> str:
    # cattrs says "invalid value for type, expected int @ args.cpu": path first reads better
    message, _, path = line.rpartition(" @ ")
    return f"{path}: {message}" if path else line


_PLAIN_LEAVES = frozenset({str, int, float, bool, bytes, type(None), CID})
_PLAIN_LOOK = 4096


def _plain(value: Any) -> bool:
    """Whether `value` is IPLD data already: dicts with string keys and lists, of
    exactly the plain types, all the way down (what the converter would only copy).
    Past `_PLAIN_LOOK` items it says no and the converter decides (a value that holds
    itself never ends a walk)."""
    stack = [value]
    budget = _PLAIN_LOOK
    while stack:
        budget -= 1
        if budget < 0:
            return False
        item = stack.pop()
        kind = type(item)
        if kind is dict:
            for key, inner in item.items():
                if type(key) is not str:
                    return False
                stack.append(inner)
        elif kind is list:
            stack.extend(item)
        elif kind not in _PLAIN_LEAVES:
            return False
    return True


def unstructure_result(value: Any) -> Any:
    """A behavior's return value (or a message's args) as IPLD data (attrs instances
    unstructured). Plain IPLD data is returned as it is, not copied by the converter:
    each request and reply has some, and the converter's walk costs more than a look."""
    if _plain(value):
        return value
    if attrs.has(type(value)) or isinstance(value, (list, tuple, dict)):
        return wire_converter.unstructure(value)
    return value


def is_args_type(kind: object) -> bool:
    return isinstance(kind, type) and attrs.has(kind)
