"""Validation of an invocation and the delegation chain that proves it.

The order of checks is part of the contract (it decides which failure a token with
several faults reports, and the official vectors pin it): the invocation's signature
and expiry, then the proofs' availability, then each proof's signature, time bounds and
revocation, then principal alignment, subject, command and policies.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Container, Iterable, Mapping, MutableSet, Sequence
from typing import Any, Protocol

import attrs

from ucan.codec import CID
from ucan.command import proves
from ucan.delegation import Delegation
from ucan.did import verify_signature
from ucan.errors import (
    Expired,
    InvalidAudience,
    InvalidClaim,
    InvalidSignature,
    InvalidSubject,
    MatchError,
    Revoked,
    TooEarly,
    UnavailableProof,
)
from ucan.invocation import Invocation
from ucan.policy import Budget


@attrs.frozen
class Chain:
    """A validated invocation with its proofs (root first). `subject` owns the resource."""

    invocation: Invocation
    delegations: tuple[Delegation, ...]

    @property
    def subject(self) -> str:
        return self.invocation.sub

    @property
    def root_issuer(self) -> str:
        return self.delegations[0].iss if self.delegations else self.invocation.iss


class _Where:
    """Names a proof in messages; the text (with the CID) is built only on failure."""

    __slots__ = ("position", "total", "delegation")

    def __init__(self, position: int, total: int, delegation: Delegation) -> None:
        self.position, self.total, self.delegation = position, total, delegation

    def __str__(self) -> str:
        return f"proof {self.position + 1} of {self.total} ({self.delegation.cid})"


def _where(position: int, total: int, delegation: Delegation) -> str:
    return str(_Where(position, total, delegation))


def index_proofs(proofs: Mapping[CID, Delegation] | Iterable[Delegation]) -> Mapping[CID, Delegation]:
    if isinstance(proofs, Mapping):
        return proofs
    return {d.cid: d for d in proofs}


class RevocationLookup(Protocol):
    def revokes(self, cid: CID, issuers: Sequence[str]) -> bool: ...


Revoked_ = RevocationLookup | Container[CID]


def is_revoked(revoked: Revoked_, cid: CID, issuers: Sequence[str]) -> bool:
    """A plain container of CIDs revokes unconditionally; a RevocationSet asks whether a
    revoker is among `issuers` (this delegation's issuer and those above it)."""
    if hasattr(revoked, "revokes"):
        return bool(revoked.revokes(cid, issuers))
    return cid in revoked


def check_delegation(
    delegation: Delegation,
    where: str | _Where,
    now: int,
    revoked: Revoked_,
    verified: MutableSet[CID] | None,
    issuers: Sequence[str] = (),
    skew: int = 0,
) -> None:
    """Signature (once per CID when `verified` is a cache), time bounds (tolerating
    `skew` seconds of clock difference either way) and revocation."""
    if verified is None or delegation.cid not in verified:
        if not verify_signature(delegation.iss, delegation.signed_bytes, delegation.signature):
            raise InvalidSignature(f"{where}: signature does not verify for issuer {delegation.iss}")
        if verified is not None:
            verified.add(delegation.cid)
    if delegation.exp is not None and now - skew > delegation.exp:
        raise Expired(f"{where}: expired at {delegation.exp} (now {now})")
    if delegation.nbf is not None and now + skew < delegation.nbf:
        raise TooEarly(f"{where}: not valid before {delegation.nbf} (now {now})")
    if is_revoked(revoked, delegation.cid, issuers or (delegation.iss,)):
        raise Revoked(f"{where}: delegation has been revoked")


def validate_invocation(
    invocation: Invocation,
    proofs: Mapping[CID, Delegation] | Iterable[Delegation],
    *,
    now: int,
    revoked: Revoked_ = frozenset(),
    verified: MutableSet[CID] | None = None,
    verify_invocation: Callable[[Invocation], bool] | None = None,
    skew: int = 0,
    policy_budget: Budget | None = None,
) -> Chain:
    """Return the validated chain or raise the UcanError subclass naming the failure.

    `proofs` may hold more delegations than needed; the invocation's `prf` picks them.
    `verified` is a cache of delegation CIDs whose signatures were already checked.
    `verify_invocation` replaces the invocation signature check when the caller has
    already done it (the dispatch pipeline checks signatures before replay and time).
    `skew` is the clock difference (seconds) tolerated on every time bound.
    `policy_budget` bounds the policy steps (see `check_policies`).
    """
    check_invocation(invocation, now=now, skew=skew, verify_invocation=verify_invocation)
    by_cid = index_proofs(proofs)
    chain: list[Delegation] = []
    for position, link in enumerate(invocation.prf):
        delegation = by_cid.get(link)
        if delegation is None:
            raise UnavailableProof(
                f"invocation {invocation.cid}: proof {position + 1} ({link}) was not provided"
            )
        chain.append(delegation)

    if not chain:
        if invocation.iss != invocation.sub:
            raise InvalidClaim(
                f"invocation {invocation.cid}: {invocation.iss} invokes {invocation.cmd} on "
                f"{invocation.sub} without any proof"
            )
        return Chain(invocation, ())

    total = len(chain)
    check_links(chain, now=now, revoked=revoked, verified=verified, skew=skew)
    if chain[-1].aud != invocation.iss:
        raise InvalidAudience(
            f"invocation {invocation.cid}: issued by {invocation.iss} but the last proof was "
            f"delegated to {chain[-1].aud}"
        )

    root = chain[0]
    if root.sub is None:
        raise InvalidClaim(
            f"{_where(0, total, root)}: a powerline (sub: null) cannot be the root of a chain"
        )
    for position, delegation in enumerate(chain):
        if delegation.sub is not None and delegation.sub != invocation.sub:
            raise InvalidSubject(
                f"{_where(position, total, delegation)}: subject {delegation.sub} does not "
                f"match the invocation's subject {invocation.sub}"
            )
    if root.iss != root.sub:
        raise InvalidClaim(
            f"{_where(0, total, root)}: the root delegation is issued by {root.iss}, "
            f"who is not its subject {root.sub}"
        )

    for position, delegation in enumerate(chain):
        if not proves(delegation.cmd, invocation.cmd):
            raise InvalidClaim(
                f"{_where(position, total, delegation)}: grants {delegation.cmd}, which does "
                f"not prove {invocation.cmd}"
            )
    check_policies(invocation, chain, policy_budget)
    return Chain(invocation, tuple(chain))


def check_links(
    chain: Sequence[Delegation],
    *,
    now: int,
    revoked: Revoked_ = frozenset(),
    verified: MutableSet[CID] | None = None,
    skew: int = 0,
) -> None:
    """A chain's links, root first: each delegation on its own (used once, signature,
    time bounds, revocation by an issuer at or above it), then each one's issuer
    against the audience of the one before it."""
    total = len(chain)
    seen: set[CID] = set()
    issuers: list[str] = []
    for position, delegation in enumerate(chain):
        where = _Where(position, total, delegation)
        if delegation.cid in seen:
            raise InvalidClaim(f"{where}: the chain uses the same delegation twice")
        seen.add(delegation.cid)
        issuers.append(delegation.iss)
        check_delegation(delegation, where, now, revoked, verified, issuers, skew)
    for position in range(1, total):
        parent, child = chain[position - 1], chain[position]
        if parent.aud != child.iss:
            raise InvalidAudience(
                f"{_where(position, total, child)}: issued by {child.iss} but the previous "
                f"proof was delegated to {parent.aud}"
            )


def check_invocation(
    invocation: Invocation,
    *,
    now: int,
    skew: int = 0,
    verify_invocation: Callable[[Invocation], bool] | None = None,
) -> None:
    """The invocation's own checks: its signature (unless `verify_invocation` stands in
    for it) and its expiry."""
    if verify_invocation is None:
        ok = verify_signature(invocation.iss, invocation.signed_bytes, invocation.signature)
    else:
        ok = verify_invocation(invocation)
    if not ok:
        raise InvalidSignature(
            f"invocation {invocation.cid}: signature does not verify for issuer {invocation.iss}"
        )
    if invocation.exp is not None and now - skew > invocation.exp:
        raise Expired(f"invocation {invocation.cid}: expired at {invocation.exp} (now {now})")


def check_policies(invocation: Invocation, chain: Sequence[Delegation],
                   budget: Budget | None = None) -> None:
    """Every delegation's policy must accept the invocation's args (MatchError), within
    one step budget for the whole chain (so depth cannot multiply the cost): `budget`,
    or a fresh `POLICY_BUDGET`."""
    total = len(chain)
    budget = Budget() if budget is None else budget
    for position, delegation in enumerate(chain):
        failed = delegation.policy.first_failure(invocation.args, budget)
        if failed is not None:
            why = ("args do not satisfy" if budget.left >= 0 else
                   f"evaluating ran past the budget of {budget.steps} steps at")
            raise MatchError(
                f"{_where(position, total, delegation)}: {why} policy statement "
                f"{_describe(delegation.policy.source[failed])}"
            )


def _describe(statement: Any) -> str:
    try:
        return json.dumps(statement, default=str)
    except (TypeError, ValueError):
        return repr(statement)
