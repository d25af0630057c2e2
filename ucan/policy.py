"""The UCAN policy language: predicates over an invocation's `args`.

A policy is a list of statements, all of which must hold. Statements are parsed once
(when the delegation is decoded) into small evaluator objects; evaluation never raises
on any args: it answers True or False. Selectors follow the jq subset of the spec:
`.`, `.field`, `["key"]`, `[i]`, `[-i]`, `[a:b]`, `[]`, with `?` for optional.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import attrs

from ucan.codec import CID
from ucan.errors import MalformedToken

_FAIL = object()  # a selector that could not resolve


# -- selectors ------------------------------------------------------------------------


@attrs.frozen
class _Field:
    name: str
    optional: bool


@attrs.frozen
class _Index:
    index: int
    optional: bool


@attrs.frozen
class _Slice:
    start: int | None
    stop: int | None
    optional: bool


@attrs.frozen
class _Iterate:
    optional: bool


_Segment = _Field | _Index | _Slice | _Iterate
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INDEX = re.compile(r"\[(-?\d+)\]")
_SLICE = re.compile(r"\[(-?\d*):(-?\d*)\]")
_KEY = re.compile(r'\[("(?:[^"\\]|\\.)*")\]')


POLICY_BUDGET = 100_000
"""Steps (statements evaluated, selector steps, items visited) one invocation's policies
may cost along its whole chain. Past it the policy does not hold (MatchError): a grant
holder's re-delegation with 40 nested `all` over 100k items cannot stall a node."""


class BudgetExhausted(Exception):
    """Policy evaluation ran past its step budget (the policy then does not hold)."""


class Budget:
    """A step counter shared by every statement of one evaluation."""

    __slots__ = ("left", "steps")

    def __init__(self, steps: int = POLICY_BUDGET) -> None:
        self.steps = steps
        self.left = steps

    @property
    def spent(self) -> int:
        return self.steps - max(self.left, 0)

    def spend(self, steps: int = 1) -> None:
        self.left -= steps
        if self.left < 0:
            raise BudgetExhausted(f"policy evaluation past its budget of {self.steps} steps")


@attrs.frozen
class Selector:
    text: str
    segments: tuple[_Segment, ...]

    def select(self, value: Any, budget: Budget | None = None) -> Any:
        """The selected value, or the module's failure marker when it cannot resolve."""
        return _select(value, self.segments, budget or Budget())


def _select(value: Any, segments: Sequence[_Segment], budget: Budget) -> Any:
    for position, segment in enumerate(segments):
        budget.spend()
        if isinstance(segment, _Iterate):
            if isinstance(value, dict):
                items = list(value.values())
            elif isinstance(value, (list, bytes)):
                items = list(value)
            else:
                return None if segment.optional else _FAIL
            budget.spend(len(items))
            rest = segments[position + 1 :]
            results = [_select(item, rest, budget) for item in items]
            return _FAIL if any(r is _FAIL for r in results) else results
        value = _step(value, segment)
        if value is _FAIL:
            return None if segment.optional else _FAIL
    return value


def _step(value: Any, segment: _Segment) -> Any:
    if isinstance(segment, _Field):
        if isinstance(value, dict):
            return value.get(segment.name)  # a missing key selects null
        return _FAIL
    if isinstance(value, (list, bytes)):
        if isinstance(segment, _Index):
            index = segment.index
            if -len(value) <= index < len(value):
                return value[index]
            return _FAIL
        assert isinstance(segment, _Slice)
        return value[segment.start : segment.stop]
    return _FAIL


def parse_selector(text: object) -> Selector:
    if not isinstance(text, str) or not text.startswith("."):
        raise MalformedToken(f"selector {text!r} must be a string starting with '.'")
    if text == ".":
        return Selector(text, ())
    segments: list[_Segment] = []
    pos = 0
    while pos < len(text):
        if text[pos] == ".":
            if text.startswith("..", pos):
                raise MalformedToken(f"selector {text!r}: '..' is not allowed")
            pos += 1
            match = _IDENT.match(text, pos)
            if match:
                name = match.group(0)
                pos = match.end()
                pos, optional = _optional(text, pos)
                segments.append(_Field(name, optional))
                continue
            if pos >= len(text) or text[pos] != "[":
                raise MalformedToken(f"selector {text!r}: expected a field name at {pos}")
        if text.startswith("[]", pos):
            pos, optional = _optional(text, pos + 2)
            segments.append(_Iterate(optional))
        elif match := _INDEX.match(text, pos):
            pos, optional = _optional(text, match.end())
            segments.append(_Index(int(match.group(1)), optional))
        elif match := _SLICE.match(text, pos):
            start, stop = (int(g) if g else None for g in match.groups())
            pos, optional = _optional(text, match.end())
            segments.append(_Slice(start, stop, optional))
        elif match := _KEY.match(text, pos):
            key = json.loads(match.group(1))
            pos, optional = _optional(text, match.end())
            segments.append(_Field(key, optional))
        else:
            raise MalformedToken(f"selector {text!r}: cannot parse at position {pos}")
    return Selector(text, tuple(segments))


def _optional(text: str, pos: int) -> tuple[int, bool]:
    optional = False
    while pos < len(text) and text[pos] == "?":
        optional = True
        pos += 1
    return pos, optional


# -- values -----------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def ipld_equal(a: Any, b: Any) -> bool:
    """Deep IPLD equality: 1 == 1.0, but true != 1 and "a" != b"a"."""
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    if type(a) is not type(b) and not (isinstance(a, (list, tuple)) and isinstance(b, (list, tuple))):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(ipld_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(ipld_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def glob_segments(pattern: str) -> tuple[str, ...]:
    """The literal pieces between the pattern's unescaped `*` wildcards (`\\*` is a
    literal star): `"a*b\\*c*"` -> `("a", "b*c", "")`."""
    segments: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern) and pattern[i + 1] == "*":
            current.append("*")
            i += 2
            continue
        if char == "*":
            segments.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    segments.append("".join(current))
    return tuple(segments)


def glob_match(segments: tuple[str, ...], text: str) -> bool:
    """Whether `text` matches the wildcard pattern cut into `segments`.

    Linear scans only (first piece anchored at the start, last at the end, the ones in
    between found leftmost-first): a hostile pattern like `*a*a*a*...*b` cannot make
    matching blow up the way a backtracking regex does.
    """
    if len(segments) == 1:
        return text == segments[0]
    first, last = segments[0], segments[-1]
    end = len(text) - len(last)
    if end < len(first) or not text.startswith(first) or not text.endswith(last):
        return False
    position = len(first)
    for piece in segments[1:-1]:
        found = text.find(piece, position, end)
        if found < 0:
            return False
        position = found + len(piece)
    return True


# -- statements ---------------------------------------------------------------------------


@attrs.frozen
class Compare:
    op: str
    selector: Selector
    value: Any

    def holds(self, args: Any, budget: Budget) -> bool:
        budget.spend()
        found = self.selector.select(args, budget)
        if found is _FAIL:
            return False
        if self.op == "==":
            return ipld_equal(found, self.value)
        if self.op == "!=":
            return not ipld_equal(found, self.value)
        if not _is_number(found):
            return False
        if self.op == "<":
            return bool(found < self.value)
        if self.op == "<=":
            return bool(found <= self.value)
        if self.op == ">":
            return bool(found > self.value)
        return bool(found >= self.value)


@attrs.frozen
class Like:
    selector: Selector
    pattern: str
    segments: tuple[str, ...] = attrs.field(eq=False, repr=False)

    def holds(self, args: Any, budget: Budget) -> bool:
        budget.spend()
        found = self.selector.select(args, budget)
        return isinstance(found, str) and glob_match(self.segments, found)


@attrs.frozen
class Not:
    statement: Statement

    def holds(self, args: Any, budget: Budget) -> bool:
        budget.spend()
        return not self.statement.holds(args, budget)


@attrs.frozen
class And:
    statements: tuple[Statement, ...]

    def holds(self, args: Any, budget: Budget) -> bool:
        budget.spend()
        return all(s.holds(args, budget) for s in self.statements)


@attrs.frozen
class Or:
    statements: tuple[Statement, ...]

    def holds(self, args: Any, budget: Budget) -> bool:
        budget.spend()
        return not self.statements or any(s.holds(args, budget) for s in self.statements)


@attrs.frozen
class Quantify:
    op: str  # "all" | "any"
    selector: Selector
    statement: Statement

    def holds(self, args: Any, budget: Budget) -> bool:
        budget.spend()
        found = self.selector.select(args, budget)
        if isinstance(found, dict):
            items = list(found.values())
        elif isinstance(found, list):
            items = found
        else:
            return False
        budget.spend(len(items))
        results = (self.statement.holds(item, budget) for item in items)
        return all(results) if self.op == "all" else any(results)


Statement = Compare | Like | Not | And | Or | Quantify


@attrs.frozen
class Policy:
    """A parsed policy; `source` is the IPLD form it was parsed from (kept for encoding)."""

    statements: tuple[Statement, ...]
    source: tuple[Any, ...] = attrs.field(eq=False, repr=False)

    def matches(self, args: Any, budget: Budget | None = None) -> bool:
        return self.first_failure(args, budget) is None

    def first_failure(self, args: Any, budget: Budget | None = None) -> int | None:
        """Index of the first statement `args` fails, or None when all hold. A statement
        that runs past `budget` (a fresh `POLICY_BUDGET` when None) fails."""
        if not self.statements:  # most grants: nothing to evaluate, no budget to make
            return None
        budget = budget or Budget()
        for index, statement in enumerate(self.statements):
            try:
                if not statement.holds(args, budget):
                    return index
            except BudgetExhausted:
                return index
        return None


def parse_policy(source: object) -> Policy:
    """Parse an IPLD policy (a list of statements); MalformedToken names what is wrong."""
    if not isinstance(source, (list, tuple)):
        raise MalformedToken(f"a policy must be a list of statements, got {source!r}")
    return Policy(tuple(parse_statement(s) for s in source), tuple(source))


_COMPARISONS = {"==", "!=", "<", "<=", ">", ">="}


def parse_statement(source: object) -> Statement:
    if not isinstance(source, (list, tuple)) or not source or not isinstance(source[0], str):
        raise MalformedToken(f"a policy statement must be [operator, ...], got {source!r}")
    op, *rest = source
    if op in _COMPARISONS and len(rest) == 2:
        selector, value = rest
        if op not in ("==", "!=") and not _is_number(value):
            raise MalformedToken(f"{op!r} compares with a number, got {value!r}")
        _check_literal(value)
        return Compare(op, parse_selector(selector), value)
    if op == "like" and len(rest) == 2:
        selector, pattern = rest
        if not isinstance(pattern, str):
            raise MalformedToken(f"'like' takes a string pattern, got {pattern!r}")
        return Like(parse_selector(selector), pattern, glob_segments(pattern))
    if op == "not" and len(rest) == 1:
        return Not(parse_statement(rest[0]))
    if op in ("and", "or") and len(rest) == 1 and isinstance(rest[0], (list, tuple)):
        inner = tuple(parse_statement(s) for s in rest[0])
        return And(inner) if op == "and" else Or(inner)
    if op in ("all", "any") and len(rest) == 2:
        return Quantify(op, parse_selector(rest[0]), parse_statement(rest[1]))
    raise MalformedToken(f"unknown or ill-formed policy statement {source!r}")


def _check_literal(value: Any) -> None:
    if isinstance(value, (dict, list, tuple, str, bytes, int, float, bool, CID)) or value is None:
        return
    raise MalformedToken(f"policy literal {value!r} is not an IPLD value")


EMPTY = parse_policy([])
