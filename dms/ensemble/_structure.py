"""The YAML-format cattrs converter: plain data <-> `spec` classes, with every shape
problem reported at its path.

One converter, configured here: strict scalars (a mapping is never silently a string),
unit parsing for sizes and durations, NuNet's older spellings and short forms. cattrs'
detailed validation collects every failure of the tree; `shape_problems` turns them
into located messages.

Unknown keys: one close to a known key is a misspelling and an error ("did you mean");
any other is a warning and ignored, because NuNet's own files carry keys NuNet ignores
(a `dns_name` inside a healthcheck). `CONVERTER` reports both; when only warnings
remain, `TOLERANT_CONVERTER` (the same converter without the unknown-key check) builds
the ensemble.
"""

from __future__ import annotations

import difflib
import enum
import functools
import types
import typing
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import cattrs
from cattrs.errors import (
    AttributeValidationNote,
    ForbiddenExtraKeysError,
    IterableValidationError,
    IterableValidationNote,
)
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn

from dms.ensemble import _spec as spec
from dms.ensemble import _units as units
from dms.ensemble._problems import Path, Severity
from dms.workload import ExecutorKind


class _Mismatch(ValueError):
    """A value of the wrong shape; `at` is a path relative to the value."""

    def __init__(self, message: str, at: Path = ()) -> None:
        super().__init__(message)
        self.at = at


def describe(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def known_keys(cls: type) -> list[str]:
    """Keys a mapping for `cls` may have: field names, then accepted older spellings."""
    names = [f.name for f in attrs.fields(cls)]
    return names + [a for f in attrs.fields(cls) for a in f.metadata.get("aliases", ())]


def unknown_key(key: str, cls: type) -> tuple[str, Severity]:
    """A misspelling of a known key is an error, and so is a key of another executor's
    execution (the wrong executor, not an extra); any other unknown key is ignored,
    with a warning that names the valid keys."""
    names = [f.name for f in attrs.fields(cls)]
    close = difflib.get_close_matches(key, known_keys(cls), n=1, cutoff=0.6)
    if close:
        return f"unknown key {key!r}: did you mean {close[0]!r}?", Severity.ERROR
    executions = {other: executor.value for executor, other in spec.EXECUTION_CLASSES.items()}
    if cls in executions:
        owners = [name for other, name in executions.items() if other is not cls and key in known_keys(other)]
        if owners:
            return (
                f"unknown key {key!r}: it is for {' and '.join(owners)} executions, not {executions[cls]}",
                Severity.ERROR,
            )
    return f"unknown key {key!r} is ignored; valid keys are {', '.join(names)}", Severity.WARNING


# NuNet has these executors and dms does not yet: refused by name, not as a misspelling
NOT_YET_EXECUTORS = frozenset({"containerd"})


def _executor_choices() -> str:
    names = [e.value for e in ExecutorKind]
    return f"{', '.join(names[:-1])} or {names[-1]}" if len(names) > 1 else names[0]


def not_yet_executor(value: object) -> str | None:
    """The refusal of an executor NuNet has and dms has none for yet, else None."""
    if isinstance(value, str) and value in NOT_YET_EXECUTORS:
        return f"{value} executor is not supported yet; use {_executor_choices()}"
    return None


# -- short forms ---------------------------------------------------------------------------


def _scalar_as(key: str) -> Callable[[object], object]:
    def prepare(value: object) -> object:
        return value if isinstance(value, dict) else {key: value}

    return prepare


def _volume(value: object) -> object:
    if isinstance(value, str):
        name, _, mountpoint = value.partition(":")
        return {"name": name, "mountpoint": mountpoint} if mountpoint else {"name": name}
    return value


def _healthcheck(value: object) -> object:
    # NuNet's older form names a health check script
    return {"type": "command", "script": value} if isinstance(value, str) else value


def _allocation(value: object) -> object:
    if not isinstance(value, dict):
        return value
    data = dict(value)
    for key in ("healthcheck", "health_check"):
        if data.get(key) == "":  # NuNet templates write an empty string for "none"
            del data[key]
    for key in ("volumes", "volume"):
        if isinstance(data.get(key), dict | str):
            data[key] = [data[key]]
    execution, executor = data.get("execution"), data.get("executor")
    if isinstance(execution, dict) and "type" not in execution and isinstance(executor, str):
        data["execution"] = {**execution, "type": executor}
    return data


_PREPARE: dict[type, Callable[[object], object]] = {
    spec.Cpu: _scalar_as("cores"),
    spec.Ram: _scalar_as("size"),
    spec.Disk: _scalar_as("size"),
    spec.Volume: _volume,
    spec.HealthCheckSpec: _healthcheck,
    spec.Allocation: _allocation,
}


def canonical_mapping(cls: type, value: object) -> dict[str, Any]:
    """`value` as a mapping for `cls`: short forms expanded, older spellings renamed
    (the current spelling wins when both are given), `key:` without a value dropped
    when the field has a default. Unknown keys are kept for cattrs to reject."""
    prepare = _PREPARE.get(cls)
    if prepare is not None:
        value = prepare(value)
    if not isinstance(value, dict):
        raise _Mismatch(f"expected a mapping, got {describe(value)}")
    aliases: dict[str, str] = {
        a: f.name for f in attrs.fields(cls) for a in f.metadata.get("aliases", ())
    }
    optional = {f.name for f in attrs.fields(cls) if f.default is not attrs.NOTHING}
    data: dict[str, Any] = {}
    for key, item in value.items():
        name: str = aliases.get(key) or key
        if name != key and name in value:
            continue
        if item is None and name in optional:
            continue
        data[name] = item
    return data


# -- where the file wrote a path ----------------------------------------------------------


@functools.cache
def _older_spellings() -> dict[str, tuple[str, ...]]:
    spellings: dict[str, tuple[str, ...]] = {}
    for cls in vars(spec).values():
        if _is_spec_class(cls):
            for f in attrs.fields(cls):
                spellings[f.name] = (*spellings.get(f.name, ()), *f.metadata.get("aliases", ()))
    return spellings


def written_paths(path: Path) -> Iterator[Path]:
    """The paths the YAML may hold `path` under: the path itself, then with older
    spellings of its keys (`health_check` for `healthcheck`) and NuNet's singular
    `volume` for `volumes[0]`. Problems are reported at the current spelling; this
    finds the line where the file wrote it."""
    if not path:
        yield ()
        return
    head, rest = path[0], path[1:]
    options: list[tuple[Path, Path]] = [((head,), rest)]
    if isinstance(head, str):
        options += [((alias,), rest) for alias in _older_spellings().get(head, ())]
    if head == "volumes" and rest[:1] == (0,):  # see `_allocation`
        options.append((("volume",), rest[1:]))
    for prefix, tail in options:
        for more in written_paths(tail):
            yield (*prefix, *more)


# -- the converter -------------------------------------------------------------------------


def _strict_str(value: object, _: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise _Mismatch(f"expected a string, got {describe(value)}")


def _strict_int(value: object, _: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise _Mismatch(f"expected a whole number, got {describe(value)}")


def _strict_float(value: object, _: object) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise _Mismatch(f"expected a number, got {describe(value)}")


def _strict_bool(value: object, _: object) -> bool:
    if isinstance(value, bool):
        return value
    raise _Mismatch(f"expected true or false, got {describe(value)}")


def _unit(parse: Callable[[object], Any]) -> Callable[[object, object], Any]:
    def structure(value: object, _: object) -> Any:
        try:
            return parse(value)
        except units.UnitError as exc:
            raise _Mismatch(str(exc)) from None

    return structure


def _is_tuple(t: object) -> bool:
    return typing.get_origin(t) is tuple


def _is_dict(t: object) -> bool:
    return typing.get_origin(t) is dict


def _is_union(t: object) -> bool:
    return typing.get_origin(t) in (typing.Union, types.UnionType) and type(None) not in typing.get_args(t)


def _is_enum(t: object) -> bool:
    return isinstance(t, type) and issubclass(t, enum.Enum)


def _is_spec_class(t: object) -> bool:
    return attrs.has(t) and getattr(t, "__module__", "") == spec.__name__  # type: ignore[arg-type]


def _items(converter: cattrs.Converter, t: Any, pairs: Iterator[tuple[Any, object]], item_type: Any) -> list[Any]:
    out, errors = [], []
    for index, item in pairs:
        try:
            out.append(converter.structure(item, item_type))
        except Exception as exc:  # noqa: BLE001 - collected, reported with its path
            exc.add_note(IterableValidationNote(f"@ {index!r}", index, item_type))
            errors.append(exc)
    if errors:
        raise IterableValidationError(f"While structuring {t!r}", errors, t)
    return out


def make_converter(*, forbid_extra_keys: bool = True) -> cattrs.Converter:
    """The converter for ensemble YAML. Build once; it is reused for every file.

    `forbid_extra_keys=False` only drops the unknown-key check: every other hook is the
    same, so a file whose only findings are warnings structures to what it means."""
    converter = cattrs.Converter(forbid_extra_keys=forbid_extra_keys, detailed_validation=True)
    converter.register_structure_hook(str, _strict_str)
    converter.register_structure_hook(int, _strict_int)
    converter.register_structure_hook(float, _strict_float)
    converter.register_structure_hook(bool, _strict_bool)
    converter.register_structure_hook(typing.Any, lambda value, _: value)
    for newtype, parse, show in (
        (spec.ByteSize, units.parse_size, units.format_size),
        (spec.Cores, units.parse_cpu, None),
        (spec.Seconds, units.parse_duration, None),
        (spec.Milliseconds, units.parse_rtt, None),
        (spec.BitsPerSecond, units.parse_bandwidth, None),
    ):
        converter.register_structure_hook(newtype, _unit(parse))
        if show is not None:
            converter.register_unstructure_hook(newtype, show)

    def enum_hook(t: type[enum.Enum]) -> Callable[[object, object], enum.Enum]:
        choices = [member.value for member in t]

        def structure(value: object, _: object) -> enum.Enum:
            if isinstance(value, str) and value in choices:
                return t(value)
            refusal = not_yet_executor(value) if t is ExecutorKind else None
            if refusal is not None:
                raise _Mismatch(refusal)
            hint = ""
            if isinstance(value, str):
                close = difflib.get_close_matches(value, choices, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise _Mismatch(f"{describe(value)} is not one of: {', '.join(choices)}{hint}")

        return structure

    def tuple_hook(t: Any) -> Callable[[object, object], tuple[Any, ...]]:
        args = typing.get_args(t)
        if len(args) == 2 and args[1] is Ellipsis:
            item_type = args[0]

            def structure(value: object, _: object) -> tuple[Any, ...]:
                if not isinstance(value, list):
                    raise _Mismatch(f"expected a list, got {describe(value)}")
                return tuple(_items(converter, t, enumerate(value), item_type))

            return structure

        def fixed(value: object, _: object) -> tuple[Any, ...]:
            if not isinstance(value, list):
                raise _Mismatch(f"expected a list of {len(args)} items, got {describe(value)}")
            if len(value) != len(args):
                raise _Mismatch(f"expected a list of {len(args)} items, got {len(value)}")
            pairs = enumerate(value)
            return tuple(converter.structure(v, args[i]) for i, v in pairs)

        return fixed

    def dict_hook(t: Any) -> Callable[[object, object], dict[str, Any]]:
        value_type = typing.get_args(t)[1]

        def structure(value: object, _: object) -> dict[str, Any]:
            if not isinstance(value, dict):
                raise _Mismatch(f"expected a mapping of names, got {describe(value)}")
            return dict(zip(value, _items(converter, t, iter(value.items()), value_type), strict=True))

        return structure

    def union_hook(t: Any) -> Callable[[object, object], Any]:
        members = typing.get_args(t)
        classes = [m for m in members if attrs.has(m)]
        if set(classes) == set(spec.EXECUTION_CLASSES.values()):
            return _execution(converter)
        [cls] = classes  # `Class | str`: a name or an inline mapping

        def structure(value: object, _: object) -> Any:
            if isinstance(value, str):
                return value
            return converter.structure(value, cls)

        return structure

    def class_hook(cls: type) -> Callable[[object, object], Any]:
        attrs.resolve_types(cls)
        base: Callable[[dict[str, Any], Any], Any] = make_dict_structure_fn(
            cls, converter, _cattrs_forbid_extra_keys=forbid_extra_keys, _cattrs_detailed_validation=True
        )

        def structure(value: object, _: object) -> Any:
            return base(canonical_mapping(cls, value), cls)

        return structure

    def class_unstructure(cls: type) -> Callable[[Any], dict[str, Any]]:
        return make_dict_unstructure_fn(cls, converter, _cattrs_omit_if_default=True)

    converter.register_structure_hook_factory(_is_enum, enum_hook)
    converter.register_structure_hook_factory(_is_tuple, tuple_hook)
    converter.register_structure_hook_factory(_is_dict, dict_hook)
    converter.register_structure_hook_factory(_is_union, union_hook)
    converter.register_structure_hook_factory(_is_spec_class, class_hook)
    converter.register_unstructure_hook_factory(_is_spec_class, class_unstructure)
    converter.register_unstructure_hook_factory(_is_tuple, lambda _: lambda v: [converter.unstructure(i) for i in v])
    return converter


def _execution(converter: cattrs.Converter) -> Callable[[object, object], Any]:
    choices = ", ".join(e.value for e in ExecutorKind)

    def structure(value: object, _: object) -> Any:
        if not isinstance(value, dict):
            raise _Mismatch(f"expected a mapping, got {describe(value)}")
        kind = value.get("type")
        try:
            executor = ExecutorKind(kind)
        except ValueError:
            refusal = not_yet_executor(kind) or f"{describe(kind)} is not one of: {choices}"
            raise _Mismatch(refusal, ("type",)) from None
        return converter.structure(value, spec.EXECUTION_CLASSES[executor])

    return structure


CONVERTER = make_converter()
TOLERANT_CONVERTER = make_converter(forbid_extra_keys=False)


def salvage_ensemble(data: object) -> tuple[spec.Ensemble, frozenset[Path]]:
    """A best-effort `Ensemble` for a file that does not structure, and the paths whose
    values failed (every one already reported by the full pass).

    Every failed value is replaced by a stand-in (its default, else an empty value of
    its type), so every name, list index and sibling field survives: the semantic rules
    still run on all of it and only hold back on the broken paths."""
    broken: set[Path] = set()
    ensemble = _salvage(data, spec.Ensemble, (), broken)
    return ensemble, frozenset(broken)


def _salvage(value: object, kind: Any, path: Path, broken: set[Path]) -> Any:
    try:
        return CONVERTER.structure(value, kind)
    except Exception:  # noqa: BLE001 - the full pass reported it; look inside for the rest
        pass
    args = typing.get_args(kind)
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        classes = [a for a in args if attrs.has(a)]
        if set(classes) == set(spec.EXECUTION_CLASSES.values()):
            return _salvage_execution(value, path, broken)
        if len(classes) == 1 and isinstance(value, dict):
            return _salvage(value, classes[0], path, broken)
        others = [a for a in args if a is not type(None) and not attrs.has(a)]
        if type(None) in args and others:
            return _salvage(value, others[0], path, broken)
    elif _is_spec_class(kind):
        return _salvage_class(value, kind, path, broken)
    elif _is_dict(kind) and isinstance(value, dict):
        return {name: _salvage(item, args[1], (*path, name), broken) for name, item in value.items()}
    elif _is_tuple(kind) and isinstance(value, list):
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_salvage(item, args[0], (*path, i), broken) for i, item in enumerate(value))
        if len(value) == len(args):
            return tuple(_salvage(item, a, (*path, i), broken) for i, (item, a) in enumerate(zip(value, args, strict=True)))
    broken.add(path)
    return _stand_in(kind, path, broken)


def _salvage_class(value: object, cls: type, path: Path, broken: set[Path]) -> Any:
    attrs.resolve_types(cls)
    try:
        mapping = canonical_mapping(cls, value)
    except _Mismatch:
        broken.add(path)
        mapping = {}
    fields: dict[str, Any] = {}
    for field in attrs.fields(cls):
        here = (*path, field.name)
        if field.name in mapping:
            item = _salvage(mapping[field.name], field.type, here, broken)
            if here in broken and field.default is not attrs.NOTHING:
                item = _default(field)
            fields[field.name] = item
        elif field.default is attrs.NOTHING:
            broken.add(here)
            fields[field.name] = _stand_in(field.type, here, broken)
    return cls(**fields)


def _salvage_execution(value: object, path: Path, broken: set[Path]) -> spec.AllocationExecution:
    kind = value.get("type") if isinstance(value, dict) else None
    try:
        cls = spec.EXECUTION_CLASSES[ExecutorKind(kind)]
    except ValueError:
        broken.add((*path, "type"))
        cls = spec.DockerExecutionSpec
        value = {k: v for k, v in value.items() if k != "type"} if isinstance(value, dict) else value
    return typing.cast(spec.AllocationExecution, _salvage_class(value, cls, path, broken))


def _default(field: attrs.Attribute[Any]) -> Any:
    default: Any = field.default
    return default.factory() if isinstance(default, attrs.Factory) else default  # type: ignore[arg-type]


def _stand_in(kind: Any, path: Path, broken: set[Path]) -> Any:
    """An empty value of type `kind` for a broken or absent one; rules never report on
    it because its path is broken."""
    supertype = getattr(kind, "__supertype__", None)  # the unit NewTypes
    if supertype is not None:
        return supertype()
    if kind in (str, int, float, bool):
        return kind()
    if _is_enum(kind):
        return next(iter(kind))
    args = typing.get_args(kind)
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        if type(None) in args:
            return None
        if str in args:
            return ""
        return _salvage_class({}, spec.DockerExecutionSpec, path, broken)
    if _is_dict(kind):
        return {}
    if _is_tuple(kind):
        if len(args) == 2 and args[1] is Ellipsis:
            return ()
        return tuple(_stand_in(a, (*path, i), broken) for i, a in enumerate(args))
    if _is_spec_class(kind):
        return _salvage_class({}, kind, path, broken)
    return None


def shape_problems(exc: BaseException, path: Path = ()) -> Iterator[tuple[Path, str, Severity]]:
    """(path, message, severity) for every leaf failure in a cattrs structuring error
    tree; only unknown keys that are not misspellings are warnings."""
    if isinstance(exc, ForbiddenExtraKeysError):
        for key in sorted(exc.extra_fields):
            yield ((*path, key), *unknown_key(key, exc.cl))
        return
    if isinstance(exc, BaseExceptionGroup):
        for sub in exc.exceptions:
            step: Path = ()
            for note in getattr(sub, "__notes__", ()):
                if isinstance(note, AttributeValidationNote):
                    step = (note.name,)
                elif isinstance(note, IterableValidationNote):
                    step = (note.index,)
            yield from shape_problems(sub, (*path, *step))
        return
    if isinstance(exc, _Mismatch):
        yield (*path, *exc.at), str(exc), Severity.ERROR
    elif isinstance(exc, KeyError):
        yield path, "missing required key", Severity.ERROR
    else:
        yield path, f"{type(exc).__name__}: {exc}", Severity.ERROR
