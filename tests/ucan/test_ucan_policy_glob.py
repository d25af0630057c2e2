"""The `like` operator: the spec's glob semantics, in linear time."""

from __future__ import annotations

import re
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from ucan.policy import glob_match, glob_segments, parse_policy


def reference(pattern: str, text: str) -> bool:
    """The obvious (backtracking) definition, for small inputs only."""
    parts, i = [], 0
    while i < len(pattern):
        if pattern.startswith("\\*", i):
            parts.append(re.escape("*"))
            i += 2
        else:
            parts.append(".*" if pattern[i] == "*" else re.escape(pattern[i]))
            i += 1
    return re.fullmatch("".join(parts), text, re.DOTALL) is not None


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="ab*\\\\", max_size=8), st.text(alphabet="ab*\\\\", max_size=10))
def test_glob_agrees_with_the_backtracking_definition(pattern: str, text: str) -> None:
    assert glob_match(glob_segments(pattern), text) == reference(pattern, text)


def test_a_hostile_pattern_is_matched_in_linear_time() -> None:
    hostile = parse_policy([["like", ".s", "*a" * 40 + "*b"]])
    start = time.perf_counter()
    assert not hostile.matches({"s": "a" * 100_000})
    assert time.perf_counter() - start < 0.5
