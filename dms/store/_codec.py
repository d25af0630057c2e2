"""Records <-> rows: one cattrs converter for every column, JSON for the structured ones.

A column is a record field of the same name. Scalar fields map to typed SQLite columns
(STRICT tables check their types); dicts, tuples and nested records are JSON text.
Reading is strict: the converter never coerces (`"5"` is not an int, `1` is not a
string), so a row that was edited or damaged is a `MalformedRow` naming its table, key
and column, never a record that means something else.
"""

from __future__ import annotations

import enum
import json
import math
import sqlite3
import typing
from collections.abc import Mapping
from typing import Any, Generic, TypeVar

import attrs
import cattrs
from cattrs.v import format_exception

from dms.store._errors import InvalidRecord, MalformedRow

R = TypeVar("R", bound=attrs.AttrsInstance)

json_converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
"""The store's converter (column values and JSON data in and out): configure it here."""


def _exactly(kind: type) -> None:
    def structure(value: Any, _: Any) -> Any:
        if isinstance(value, bool) is not (kind is bool) or not isinstance(value, kind):
            raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
        return value

    json_converter.register_structure_hook(kind, structure)


def _structure_float(value: Any, _: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected float, got {type(value).__name__}")
    if not math.isfinite(number := float(value)):
        raise ValueError(f"{value!r} is not a finite number")
    return number


def _structure_enum(value: Any, kind: type[enum.Enum]) -> enum.Enum:
    """A member from its value, which must be text, as every value of the store's enums is."""
    members = {member.value: member for member in kind}
    if type(value) is not str or value not in members:
        raise ValueError(f"{value!r} is not one of {', '.join(map(repr, members))}")
    return members[value]


for _kind in (str, int, bool):
    _exactly(_kind)
json_converter.register_structure_hook(float, _structure_float)
# StrEnum first in its members' MRO, before str: they get the enum hook, not str's.
for _enum in (enum.Enum, enum.StrEnum):
    json_converter.register_structure_hook(_enum, _structure_enum)
    json_converter.register_unstructure_hook(_enum, lambda member: member.value)


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


def dump_json(value: object) -> str:
    """Compact JSON; ValueError/TypeError/RecursionError for what JSON cannot hold."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


@attrs.frozen
class Table(Generic[R]):
    """Where one record class lives: its table, key columns and JSON columns."""

    name: str
    record: type[R]
    key: tuple[str, ...]
    json_columns: frozenset[str]

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(field.name for field in attrs.fields(self.record))

    def encode(self, record: R) -> dict[str, object]:
        """The row's column values, for named parameters (`:column`). A JSON column is
        decoded again before it is written, so a value of the wrong type inside a
        record (which attrs does not check) is refused now, not found unreadable later."""
        hints = _hints(self.record)
        row: dict[str, object] = {}
        for column in self.columns:
            value = json_converter.unstructure(getattr(record, column), hints[column])
            if column in self.json_columns and value is not None:
                try:
                    value = dump_json(value)
                except (ValueError, TypeError, RecursionError) as exc:
                    raise InvalidRecord(type(record).__name__, column,
                                        f"not JSON data: {exc}") from None
                try:  # what cannot be read back must not be written
                    json_converter.structure(json.loads(value), hints[column])
                except Exception as exc:
                    raise InvalidRecord(type(record).__name__, column, "would not read back: "
                                        + _problem(exc, hints[column])) from None
            row[column] = value
        return row

    def decode(self, row: sqlite3.Row) -> R:
        """The record a row holds, or `MalformedRow` naming the column that is wrong."""
        key = "/".join(str(row[column]) for column in self.key)
        hints = _hints(self.record)
        values: dict[str, object] = {}
        for column in self.columns:
            raw = row[column]
            if column in self.json_columns and raw is not None:
                try:
                    if not isinstance(raw, str):
                        raise ValueError(f"expected JSON text, got {type(raw).__name__}")
                    raw = json.loads(raw, parse_constant=_no_constant)
                except (ValueError, RecursionError) as exc:
                    raise MalformedRow(self.name, key, column, f"not JSON: {exc}") from None
            try:
                values[column] = json_converter.structure(raw, hints[column])
            except Exception as exc:  # whatever the converter says, the row is unusable
                raise MalformedRow(self.name, key, column, _problem(exc, hints[column])) from None
        try:
            return self.record(**values)
        except InvalidRecord as exc:
            raise MalformedRow(self.name, key, exc.field, exc.problem) from None


def _problem(exc: Exception, kind: Any) -> str:
    if isinstance(exc, cattrs.BaseValidationError):
        return "; ".join(cattrs.transform_error(exc, path="value", format_exception=_say))
    return _say(exc, kind if isinstance(kind, type) else None)


def _say(exc: BaseException, kind: type | None) -> str:
    """The failure's own message when it has one (the hooks' and the records' say what
    was expected and what was found), cattrs' words otherwise."""
    if isinstance(exc, (ValueError, TypeError)) and str(exc):
        return str(exc)
    return format_exception(exc, kind)


_HINTS: dict[type, Mapping[str, Any]] = {}


def _hints(cls: type) -> Mapping[str, Any]:
    """Field types resolved once per record class (annotations are strings here)."""
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]
