"""JSON Schema (draft 2020-12) for ensemble files, generated from the `spec` classes.

The committed `spec/ensemble.schema.json` is this module's output; a test regenerates
it and compares, so the schema cannot drift from the loader. Editors use it for
completion and early errors; the loader remains the authority (it also checks names,
references and everything `validate` does). Regenerate with:

    python -m dms.ensemble._schema > spec/ensemble.schema.json
"""

from __future__ import annotations

import enum
import json
import types
import typing
from typing import Any

import attrs

from dms.ensemble import _spec as spec
from dms.ensemble._bounds import MAX_BYTES, MAX_CORES, MIN_CORES

_NUMBER = r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?"
_QUANTITIES: dict[object, tuple[str, str]] = {
    spec.ByteSize: (rf"^\s*{_NUMBER}\s*([kKmMgGtTpP]i?)?B?\s*$", "size: 512Mi, 2G, 1.5GiB, 1024B; bare numbers are GiB"),
    spec.Cores: (rf"^\s*{_NUMBER}m?\s*$", "cpu: cores (0.5, 2) or millicores (500m)"),
    spec.Seconds: (rf"^\s*({_NUMBER}(ns|us|µs|ms|s|m|h)?)+\s*$", "duration: 500ms, 10s, 1m30s; bare numbers are seconds"),
    spec.Milliseconds: (rf"^\s*({_NUMBER}(ns|us|µs|ms|s|m|h)?)+\s*$", "rtt: 10ms, 0.5s; bare numbers are ms"),
    spec.BitsPerSecond: (rf"^\s*{_NUMBER}\s*([kKMGTP]?(bps|bit/s|b/s|Bps|B/s))?\s*$", "bandwidth: 100Mbps, 1Gbit/s, 10MB/s; bare numbers are bits/s"),
}
# limits of bare numbers (strings with units are checked by the loader)
_NUMBER_BOUNDS: dict[object, dict[str, float]] = {
    spec.Cores: {"minimum": MIN_CORES, "maximum": MAX_CORES},
    spec.ByteSize: {"exclusiveMaximum": (MAX_BYTES + 1) // 2**30},  # bare numbers are GiB
}
# classes that also accept a scalar short form (see structure._PREPARE)
_SHORT_FORMS: dict[type, dict[str, Any]] = {
    spec.Cpu: {"$ref": "#/$defs/Cores"},
    spec.Ram: {"$ref": "#/$defs/ByteSize"},
    spec.Disk: {"$ref": "#/$defs/ByteSize"},
    spec.Volume: {"type": "string", "description": "`name:mountpoint`, or a volume name"},
    spec.HealthCheckSpec: {"type": "string", "description": "name of a health check script"},
}


class _Builder:
    def __init__(self) -> None:
        self.defs: dict[str, Any] = {}

    def of(self, t: Any) -> dict[str, Any]:
        if t in _QUANTITIES:
            name = t.__name__
            if name not in self.defs:
                pattern, doc = _QUANTITIES[t]
                self.defs[name] = {
                    "description": doc,
                    "anyOf": [
                        {"type": "number", **_NUMBER_BOUNDS.get(t, {})},
                        {"type": "string", "pattern": pattern},
                    ],
                }
            return {"$ref": f"#/$defs/{name}"}
        if t is str:
            return {"type": "string"}
        if t is type(None):
            return {"type": "null"}
        if t is bool:
            return {"type": "boolean"}
        if t is int:
            return {"type": "integer"}
        if t is float:
            return {"type": "number"}
        if t is Any:
            return {}
        if isinstance(t, type) and issubclass(t, enum.Enum):
            return {"enum": [member.value for member in t]}
        if attrs.has(t):
            return self.of_class(t)
        origin, args = typing.get_origin(t), typing.get_args(t)
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return {"type": "array", "items": self.of(args[0])}
        if origin is tuple:
            items = [self.of(a) for a in args]
            return {"type": "array", "prefixItems": items, "minItems": len(items), "maxItems": len(items)}
        if origin is dict:
            return {"type": "object", "additionalProperties": self.of(args[1])}
        if origin in (typing.Union, types.UnionType):
            return {"anyOf": [self.of(a) for a in args]}
        raise TypeError(f"no JSON Schema for {t!r}")

    def of_class(self, cls: type) -> dict[str, Any]:
        name = cls.__name__
        if name not in self.defs:
            self.defs[name] = {}  # placeholder: recursive classes refer to themselves
            attrs.resolve_types(cls)
            properties: dict[str, Any] = {}
            required = []
            for field in attrs.fields(cls):
                schema = self.of(field.type)
                if field.default is attrs.NOTHING:
                    required.append(field.name)
                elif "anyOf" not in schema or {"type": "null"} not in schema["anyOf"]:
                    # `key:` with no value means the default
                    schema = {"anyOf": [schema, {"type": "null"}]}
                if cls is spec.Allocation and field.name == "volumes":
                    schema = {"anyOf": [*schema["anyOf"], self.of(spec.Volume)]}
                properties[field.name] = {"description": field.metadata["doc"], **schema}
                for alias in field.metadata["aliases"]:
                    properties[alias] = {
                        "description": f"older NuNet spelling of `{field.name}`",
                        "deprecated": True,
                        **schema,
                    }
            mapping: dict[str, Any] = {
                "type": "object",
                "properties": properties,
                "additionalProperties": False,
            }
            if required:
                mapping["required"] = required
            if cls.__doc__ and not cls.__doc__.startswith(f"{name}("):
                mapping["description"] = cls.__doc__.strip().splitlines()[0]
            short = _SHORT_FORMS.get(cls)
            self.defs[name] = {"anyOf": [mapping, short]} if short else mapping
        return {"$ref": f"#/$defs/{name}"}


def ensemble_schema() -> dict[str, Any]:
    builder = _Builder()
    root = builder.of(spec.Ensemble)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://github.com/dms/spec/ensemble.schema.json",
        "title": "dms ensemble (NuNet ensemble v1 compatible)",
        **root,
        "$defs": dict(sorted(builder.defs.items())),
    }


def render_schema() -> str:
    return json.dumps(ensemble_schema(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    print(render_schema(), end="")
