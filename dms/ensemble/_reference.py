"""The field reference of `spec/ensemble.md`, generated from the `spec` classes.

`spec/ensemble.md` holds this output between `<!-- fields:begin -->` and
`<!-- fields:end -->`; a test regenerates and compares it. Regenerate with:

    python -m dms.ensemble._reference
"""

from __future__ import annotations

import enum
import pathlib
import types
import typing
from typing import Any

import attrs

from dms.ensemble import _spec as spec
from dms.ensemble._bounds import bounds_reference

BEGIN, END = "<!-- fields:begin -->", "<!-- fields:end -->"
SECTIONS: tuple[type, ...] = (
    spec.Ensemble,
    spec.Allocation,
    spec.ResourceSpec,
    spec.Cpu,
    spec.Ram,
    spec.Disk,
    spec.GpuSpec,
    spec.DockerExecutionSpec,
    spec.FirecrackerExecutionSpec,
    spec.ProcessExecutionSpec,
    spec.HealthCheckSpec,
    spec.HealthResponse,
    spec.KeyFile,
    spec.Volume,
    spec.EnsembleNode,
    spec.Port,
    spec.LocationSpec,
    spec.Place,
    spec.EdgeConstraint,
    spec.Supervisor,
    spec.Subnet,
)
_UNITS = {
    spec.ByteSize: "size",
    spec.Cores: "cpu",
    spec.Seconds: "duration",
    spec.Milliseconds: "rtt",
    spec.BitsPerSecond: "bandwidth",
}


def type_name(t: Any) -> str:
    if t in _UNITS:
        return _UNITS[t]
    if t is type(None):
        return "null"
    if t is Any:
        return "any"
    if isinstance(t, type) and issubclass(t, enum.Enum):
        return " \\| ".join(f"`{m.value}`" for m in t)
    if isinstance(t, type):
        return t.__name__
    origin, args = typing.get_origin(t), typing.get_args(t)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return f"list of {type_name(args[0])}"
    if origin is tuple:
        return f"[{', '.join(type_name(a) for a in args)}]"
    if origin is dict:
        return f"name → {type_name(args[1])}"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_name(a) for a in args if a is not type(None))
    return str(t)


def _default(field: Any) -> str:
    if field.default is attrs.NOTHING:
        return "**required**"
    default = field.default
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        default = default.factory()
    if isinstance(default, enum.Enum):
        default = default.value
    if default in ((), {}, None):
        return ""
    return f"`{str(default).lower() if isinstance(default, bool) else default}`"


def field_reference() -> str:
    blocks = [bounds_reference()]
    for cls in SECTIONS:
        attrs.resolve_types(cls)
        lines = [f"### {cls.__name__}", "", "| key | type | default | meaning |", "|---|---|---|---|"]
        for field in attrs.fields(cls):
            key = f"`{field.name}`"
            if field.metadata["aliases"]:
                key += " (also " + ", ".join(f"`{a}`" for a in field.metadata["aliases"]) + ")"
            doc = field.metadata["doc"].replace("|", "\\|")
            lines.append(f"| {key} | {type_name(field.type)} | {_default(field)} | {doc} |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def splice(document: str, reference: str) -> str:
    """`document` with the text between the markers replaced by `reference`."""
    head, _, rest = document.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n{reference}{END}{tail}"


if __name__ == "__main__":
    path = pathlib.Path(__file__).parents[2] / "spec" / "ensemble.md"
    path.write_text(splice(path.read_text(), field_reference()))
