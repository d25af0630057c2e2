"""A plain reference model of who may invoke what, to check the runtime against.

It is written from the rules (ARCHITECTURE.md section 3), not from `ucan.validate`: a
request by `invoker` for `command` on `subject` at time `now` is authorized when the
invoker is the subject, or when some chain of grants leads from the subject to the
invoker in which every grant

- continues the chain (the first is issued by the subject about itself, each next one
  by the previous one's audience, the last to the invoker),
- is about the subject (or is a powerline, about any subject, below the first),
- covers the command by whole path segments (`/a` covers `/a/b`, not `/ab`),
- accepts the arguments under its policy,
- is valid at `now` (not expired, not before its start), give or take the `skew`
  seconds of clock difference the nodes tolerate,
- is not revoked by its own issuer or by an issuer above it in that chain.

The search keeps, per principal reached, the set of issuers above it: a chain that
repeats a grant can be shortened to one that does not, and shortening only removes
issuers that could have revoked something, so searching these states is exact.
"""

from __future__ import annotations

import operator
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from ucan import CID, Delegation


class UnsupportedPolicy(ValueError):
    """The model evaluates comparisons on `.field` selectors with and/or/not only;
    override `expected` in your machine for richer policies."""


@attrs.frozen
class Grant:
    """What the model knows of a delegation."""

    cid: CID
    issuer: str
    audience: str
    subject: str | None
    command: str
    policy: tuple[Any, ...]
    expires: int | None
    starts: int | None

    @classmethod
    def of(cls, delegation: Delegation) -> Grant:
        return cls(delegation.cid, delegation.iss, delegation.aud, delegation.sub,
                   delegation.cmd, tuple(delegation.policy.source), delegation.exp,
                   delegation.nbf)


class GrantGraph:
    """Grants and revocations so far; `chain` answers whether an invocation is allowed."""

    def __init__(self, skew: float = 0.0) -> None:
        self.skew = skew
        self.grants: list[Grant] = []
        self.revocations: dict[CID, set[str]] = {}

    def add(self, delegation: Delegation) -> Grant:
        grant = Grant.of(delegation)
        self.grants.append(grant)
        return grant

    def revoke(self, revoker: str, cid: CID) -> None:
        self.revocations.setdefault(cid, set()).add(revoker)

    def chain(self, invoker: str, subject: str, command: str, args: Mapping[str, Any],
              now: float) -> list[Grant] | None:
        """A chain (root first) authorizing the invocation, [] when the invoker is the
        subject, None when there is none."""
        if invoker == subject:
            return []
        moment = int(now)
        usable = [g for g in self.grants if self._usable(g, command, args, moment, self.skew)]
        start: tuple[str, frozenset[str]] = (subject, frozenset())
        came_from: dict[tuple[str, frozenset[str]], tuple[tuple[str, frozenset[str]], Grant]] = {}
        queue = deque([start])
        seen = {start}
        while queue:
            state = queue.popleft()
            holder, above = state
            for grant in usable:
                if grant.issuer != holder:
                    continue
                if state == start and grant.subject != subject:
                    continue  # the root is about the subject, by the subject
                if grant.subject not in (None, subject):
                    continue
                issuers = above | {grant.issuer}
                if self.revocations.get(grant.cid, set()) & issuers:
                    continue
                following = (grant.audience, issuers)
                if following in seen:
                    continue
                seen.add(following)
                came_from[following] = (state, grant)
                if grant.audience == invoker:
                    return _path(came_from, following, start)
                queue.append(following)
        return None

    @staticmethod
    def _usable(grant: Grant, command: str, args: Mapping[str, Any], now: int,
                skew: float) -> bool:
        return (covers(grant.command, command)
                and (grant.expires is None or now - skew <= grant.expires)
                and (grant.starts is None or now + skew >= grant.starts)
                and policy_holds(grant.policy, args))


def _path(came_from: Mapping[Any, tuple[Any, Grant]], state: Any, start: Any) -> list[Grant]:
    grants: list[Grant] = []
    while state != start:
        state, grant = came_from[state]
        grants.append(grant)
    return grants[::-1]


def covers(granted: str, invoked: str) -> bool:
    """Whole-segment prefix: `/shop` covers `/shop` and `/shop/order`, not `/shopping`."""
    if granted == "/":
        return True
    return invoked == granted or invoked.startswith(granted + "/")


_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}


def policy_holds(policy: Sequence[Any], args: Mapping[str, Any]) -> bool:
    """Every statement holds (the empty policy accepts anything)."""
    return all(_holds(statement, args) for statement in policy)


def _holds(statement: Sequence[Any], args: Mapping[str, Any]) -> bool:
    op = statement[0]
    if op == "and":
        return all(_holds(s, args) for s in statement[1])
    if op == "or":
        return any(_holds(s, args) for s in statement[1]) or not statement[1]
    if op == "not":
        return not _holds(statement[1], args)
    if op in ("==", "!=") or op in _COMPARISONS:
        found, value = _select(statement[1], args)
        if op == "==":
            return found and value == statement[2]
        if op == "!=":
            return found and value != statement[2]
        number = (int, float)
        if not found or isinstance(value, bool) or not isinstance(value, number):
            return False
        return _COMPARISONS[op](value, statement[2])
    raise UnsupportedPolicy(f"the reference model does not evaluate {op!r} in {statement!r}")


def _select(selector: str, args: Mapping[str, Any]) -> tuple[bool, Any]:
    if selector == ".":
        return True, args
    if not selector.startswith("."):
        raise UnsupportedPolicy(f"the reference model takes `.a.b` selectors, not {selector!r}")
    value: Any = args
    for part in selector[1:].split("."):
        if not isinstance(value, Mapping) or part not in value:
            return False, None
        value = value[part]
    return True, value
