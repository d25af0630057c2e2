"""Reading YAML within bounds: bombs, huge files, deep nesting, duplicates, merges."""

from __future__ import annotations

import time

import pytest

from dms.ensemble import EnsembleUnreadable, YamlLimits
from dms.ensemble._yaml_source import read_yaml


def billion_laughs(levels: int = 9) -> str:
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels + 1):
        name, previous = chr(ord("a") + level), chr(ord("a") + level - 1)
        lines.append(f"{name}: &{name} [{', '.join(['*' + previous] * 9)}]")
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_rejected_fast() -> None:
    started = time.perf_counter()
    with pytest.raises(EnsembleUnreadable, match="alias bomb"):
        read_yaml(billion_laughs(), file="bomb.yaml")
    assert time.perf_counter() - started < 0.5


def test_recursive_alias_is_rejected() -> None:
    with pytest.raises(EnsembleUnreadable, match="recursive YAML alias at line 1"):
        read_yaml("a: &r [*r]\n", file="r.yaml")


def test_file_over_the_size_limit_is_rejected_before_parsing() -> None:
    with pytest.raises(EnsembleUnreadable, match="limited to 100"):
        read_yaml("a: " + "x" * 200, file="big.yaml", limits=YamlLimits(max_bytes=100))


def test_deep_nesting_is_unreadable_not_a_crash() -> None:
    with pytest.raises(EnsembleUnreadable, match="nesting"):
        read_yaml("[" * 100_000, file="deep.yaml")


def test_nesting_beyond_the_depth_limit_is_a_problem() -> None:
    document = read_yaml("a: " + "[" * 10 + "]" * 10, file="d.yaml", limits=YamlLimits(max_depth=5))
    assert [p.message for p in document.problems] == ["nested deeper than 5 levels"]


def test_syntax_error_names_its_line() -> None:
    with pytest.raises(EnsembleUnreadable) as caught:
        read_yaml("a: 1\nb: [1, 2\n", file="s.yaml")
    [problem] = caught.value.problems
    assert problem.line == 3 and "not valid YAML" in problem.message


def test_non_utf8_bytes_are_unreadable() -> None:
    with pytest.raises(EnsembleUnreadable, match="UTF-8"):
        read_yaml(b"a: \xff\xfe", file="bin.yaml")


def test_duplicate_keys_are_problems_with_lines() -> None:
    document = read_yaml("a: 1\nb: 2\na: 3\n", file="dup.yaml")
    [problem] = document.problems
    assert (problem.path, problem.line) == (("a",), 3)
    assert document.data == {"a": 1, "b": 2}


def test_python_tags_are_refused() -> None:
    document = read_yaml("x: !!python/object/apply:os.system [ls]\n", file="t.yaml")
    assert "unsupported YAML tag" in document.problems[0].message
    assert document.data == {"x": None}


def test_merge_keys_apply_without_overriding_explicit_keys() -> None:
    document = read_yaml("base: &b {cpu: 1, ram: 2}\nx:\n  <<: *b\n  ram: 4\n", file="m.yaml")
    assert document.data == {"base": {"cpu": 1, "ram": 2}, "x": {"cpu": 1, "ram": 4}}


def test_every_value_has_a_line() -> None:
    document = read_yaml("a:\n  b:\n    - 1\n    - c: 2\n", file="l.yaml")
    assert document.lines[("a", "b", 1, "c")] == 4
    assert document.line_of(("a", "b", 1, "missing")) == 4


def test_timestamps_stay_text() -> None:
    assert read_yaml("when: 2024-05-01\n", file="t.yaml").data == {"when": "2024-05-01"}


def test_templates_are_top_level_keys_whose_anchor_is_used_elsewhere() -> None:
    text = (
        "aliased: &a {x: 1}\n"
        "merged: &m {y: 2}\n"
        "unused: &u {z: 3}\n"
        "plain: {w: 4}\n"
        "scalar: &s 5\n"
        "uses: {one: *a, two: {<<: *m}, three: *s}\n"
        "copy: *a\n"  # an alias, not the anchor
    )
    assert read_yaml(text, file="t.yaml").templates == {"aliased", "merged", "scalar"}


def test_a_nested_anchor_does_not_make_its_top_level_key_a_template() -> None:
    document = read_yaml("section: {inner: &i {x: 1}}\nother: *i\n", file="t.yaml")
    assert document.templates == frozenset()
