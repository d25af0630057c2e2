"""The committed JSON Schema and field reference match the types; files match the schema.

No jsonschema package is installed, so `conforms` checks the subset of draft 2020-12
the generated schema uses ($ref, type, properties, required, additionalProperties,
items, prefixItems, min/maxItems, enum, anyOf, pattern).
"""

from __future__ import annotations

import json
import pathlib
import re
from typing import Any

import pytest
import yaml

from dms.ensemble._reference import field_reference, splice
from dms.ensemble._schema import ensemble_schema, render_schema

ROOT = pathlib.Path(__file__).parents[3]
HERE = pathlib.Path(__file__).parent
FILES = sorted((ROOT / "examples" / "ensembles").glob("*.yaml")) + sorted((HERE / "nunet").glob("*.yaml"))
SCHEMA = ensemble_schema()
TYPES: dict[str, type | tuple[type, ...]] = {
    "object": dict,
    "array": list,
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "null": type(None),
}


def conforms(value: Any, schema: dict[str, Any]) -> bool:
    if "$ref" in schema:
        target = SCHEMA["$defs"][schema["$ref"].removeprefix("#/$defs/")]
        if not conforms(value, target):
            return False
    if "type" in schema:
        expected = TYPES[schema["type"]]
        if isinstance(value, bool) and schema["type"] in ("integer", "number"):
            return False
        if not isinstance(value, expected):
            return False
    if "enum" in schema and value not in schema["enum"]:
        return False
    if "pattern" in schema and not re.search(schema["pattern"], value):
        return False
    if "anyOf" in schema and not any(conforms(value, option) for option in schema["anyOf"]):
        return False
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        if any(key not in value for key in schema.get("required", ())):
            return False
        extra = schema.get("additionalProperties", {})
        for key, item in value.items():
            item_schema = properties.get(key, extra)
            if item_schema is False or (item_schema is not True and not conforms(item, item_schema)):
                return False
    if isinstance(value, list):
        prefix = schema.get("prefixItems", [])
        if not schema.get("minItems", 0) <= len(value) <= schema.get("maxItems", len(value)):
            return False
        for index, item in enumerate(value):
            item_schema = prefix[index] if index < len(prefix) else schema.get("items", {})
            if not conforms(item, item_schema):
                return False
    return True


def test_committed_schema_is_the_generated_one() -> None:
    committed = (ROOT / "spec" / "ensemble.schema.json").read_text()
    assert committed == render_schema(), "run: python -m dms.ensemble._schema > spec/ensemble.schema.json"


def test_committed_field_reference_is_the_generated_one() -> None:
    document = (ROOT / "spec" / "ensemble.md").read_text()
    assert document == splice(document, field_reference()), "run: python -m dms.ensemble._reference"


def test_schema_is_valid_json_for_draft_2020_12() -> None:
    schema = json.loads((ROOT / "spec" / "ensemble.schema.json").read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_valid_files_conform_to_the_schema(path: pathlib.Path) -> None:
    assert conforms(yaml.safe_load(path.read_text()), SCHEMA)


@pytest.mark.parametrize(
    "name", ["unknown-keys.yaml", "wrong-types.yaml", "missing-required.yaml", "bad-units.yaml"]
)
def test_shape_errors_fail_the_schema_too(name: str) -> None:
    assert not conforms(yaml.safe_load((HERE / "broken" / name).read_text()), SCHEMA)
