"""The terms of the node's grants to its actors: finite, renewed while the actor runs.

Only the root's authority is unbounded (the node's key is the anchor). Every grant the
node signs for an actor ends, even for an actor that lives as long as the node: when
the actor stops, its grants are revoked, and a revocation can be forgotten only once
what it revokes has expired (before that, forgetting it would let the grant hold
again). A grant with no end would leave its revocation kept forever, on this node and
on every node that authorized its chain, for every actor ever stopped.

So a grant lasts `GRANT_LIFETIME` at most, never past the actor's own end nor its
parent's current grants (a child never outlives its parent), and is renewed at half
its term for as long as the actor runs. Sans-IO: the actor's task sleeps, the system
signs.

A stopped actor's grant is revoked by a revocation that itself expires
`REVOCATION_RETENTION` past the grant (`revoke_grant`): a node that never saw the grant
cannot know when it ends, and without that date it would keep the revocation for good.
"""

from __future__ import annotations

import attrs

from dms.actor._authority import Authority, clamp_expiry
from ucan import REVOKE, Delegation, Invocation, invoke
from ucan.envelope import Signer

GRANT_LIFETIME = 3600.0
"""Seconds a grant to an actor lasts at most before it is renewed (at half of it)."""
SHORTEST_WAIT = 1.0
"""Seconds between renewals at least: a term capped by its parent's never spins."""
CLOCK_RECHECK = 60.0
"""Seconds between looks at the wall clock while a renewal is due later."""
REVOCATION_RETENTION = 3600
"""Seconds past its revoked grant's expiry a revocation lasts (its own `exp`): far beyond
any clock skew a chain is validated with, so no node forgets it while the grant could
still be accepted somewhere."""


@attrs.frozen
class GrantTerm:
    """When an actor's current grants were issued and when they end (Unix seconds)."""

    issued: int
    expires: int

    @property
    def renew_at(self) -> float:
        return self.issued + (self.expires - self.issued) / 2


def grant_term(authority: Authority, parent: GrantTerm | None, now: float,
               lifetime: float = GRANT_LIFETIME) -> GrantTerm:
    """The term of grants issued `now` to an actor holding `authority`, whose parent's
    current grants have the term `parent` (None for the root's children: the anchor)."""
    if lifetime <= 0:
        raise ValueError(f"a grant lifetime must be positive, got {lifetime}")
    limit = authority.expires
    if parent is not None:
        limit = parent.expires if limit is None else min(limit, parent.expires)
    expires = clamp_expiry(limit, now, lifetime)
    assert expires is not None  # a lifetime was given
    return GrantTerm(int(now), expires)


def renewal_time(term: GrantTerm | None, authority: Authority) -> float | None:
    """When grants of `term` are to be renewed, or None when they never need to be:
    there are none, or they last as long as the actor's authority does."""
    if term is None or (authority.expires is not None and term.expires >= authority.expires):
        return None
    return term.renew_at


def revoke_grant(key: Signer, grant: Delegation,
                 retention: int = REVOCATION_RETENTION) -> Invocation:
    """`key`'s revocation of `grant`, expiring `retention` seconds after the grant does
    (never, for a grant that never expires): past that every node may forget it, even
    one that never saw the grant (spec/security.md, "Revocations that expire")."""
    if retention < 0:
        raise ValueError(f"a revocation retention must not be negative, got {retention}")
    expiration = None if grant.exp is None else grant.exp + int(retention)
    return invoke(key, key.did, REVOKE, {"revoke": grant.cid}, expiration=expiration,
                  nonce=b"")
