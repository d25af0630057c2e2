"""Delegation chains on their own (no invocation yet): are they sound, and may a new
grant be added below them?

Invocation validation (`ucan.validate`) is what authorizes; these checks serve the
people who build chains (`ucan grant --proof`, `ucan verify` of delegations), so that a
grant its proofs cannot support is refused when it is made, not when it is used.
Policies need no check here: every policy in a chain applies to the invocation, so a
"looser" policy further down cannot loosen anything.
"""

from __future__ import annotations

from collections.abc import MutableSet, Sequence

from ucan.codec import CID
from ucan.command import proves
from ucan.delegation import Delegation
from ucan.errors import InvalidAudience, InvalidClaim, InvalidSubject, UnavailableProof
from ucan.validate import Revoked_, check_delegation


def _where(position: int, total: int, delegation: Delegation) -> str:
    return f"proof {position + 1} of {total} ({delegation.cid})"


def validate_delegation_chain(
    chain: Sequence[Delegation],
    *,
    now: int,
    revoked: Revoked_ = frozenset(),
    verified: MutableSet[CID] | None = None,
) -> None:
    """Check a chain given root first: signatures, time bounds at `now`, revocation,
    issuer/audience alignment, one subject (the root's, issued by itself) and command
    attenuation (each link proves the next one's command). Raises the UcanError naming
    the first failure."""
    if not chain:
        raise UnavailableProof("an empty chain proves nothing")
    total = len(chain)
    seen: set[CID] = set()
    issuers: list[str] = []
    for position, delegation in enumerate(chain):
        where = _where(position, total, delegation)
        if delegation.cid in seen:
            raise InvalidClaim(f"{where}: the chain uses the same delegation twice")
        seen.add(delegation.cid)
        issuers.append(delegation.iss)
        check_delegation(delegation, where, now, revoked, verified, issuers)
    for position in range(1, total):
        parent, child = chain[position - 1], chain[position]
        if parent.aud != child.iss:
            raise InvalidAudience(
                f"{_where(position, total, child)}: issued by {child.iss} but the previous "
                f"proof was delegated to {parent.aud}"
            )
    root = chain[0]
    if root.sub is None:
        raise InvalidClaim(
            f"{_where(0, total, root)}: a powerline (sub: null) cannot be the root of a chain"
        )
    if root.iss != root.sub:
        raise InvalidClaim(
            f"{_where(0, total, root)}: the root delegation is issued by {root.iss}, "
            f"who is not its subject {root.sub}"
        )
    for position, delegation in enumerate(chain):
        if delegation.sub is not None and delegation.sub != root.sub:
            raise InvalidSubject(
                f"{_where(position, total, delegation)}: subject {delegation.sub} is not "
                f"the chain's subject {root.sub}"
            )
    for position in range(1, total):
        parent, child = chain[position - 1], chain[position]
        if not proves(parent.cmd, child.cmd):
            raise InvalidClaim(
                f"{_where(position, total, child)}: grants {child.cmd}, wider than "
                f"{parent.cmd} granted above it"
            )


def check_grant(
    chain: Sequence[Delegation],
    *,
    issuer: str,
    subject: str | None,
    command: str,
    expiration: int | None,
    now: int,
    revoked: Revoked_ = frozenset(),
) -> None:
    """Refuse (with the UcanError naming why) a grant by `issuer` of `command` on
    `subject` (None: powerline) until `expiration` that `chain` (root first) cannot
    support: a chain that is itself unsound, a last proof not delegated to `issuer`,
    another subject, a wider command, or an expiry beyond a proof's."""
    validate_delegation_chain(chain, now=now, revoked=revoked)
    total = len(chain)
    last = chain[-1]
    if last.aud != issuer:
        raise InvalidAudience(
            f"{_where(total - 1, total, last)}: delegated to {last.aud}, so {issuer} "
            "cannot re-delegate it"
        )
    root_subject = chain[0].sub
    if subject is not None and subject != root_subject:
        raise InvalidSubject(
            f"the grant names subject {subject} but its proofs are about {root_subject}"
        )
    for position, delegation in enumerate(chain):
        where = _where(position, total, delegation)
        if not proves(delegation.cmd, command):
            raise InvalidClaim(f"{where}: grants {delegation.cmd}, which does not prove {command}")
        if delegation.exp is not None and (expiration is None or expiration > delegation.exp):
            shown = "never" if expiration is None else str(expiration)
            raise InvalidClaim(
                f"{where}: expires at {delegation.exp}; a grant resting on it cannot "
                f"expire later ({shown})"
            )


def order_chain(delegations: Sequence[Delegation], holder: str) -> list[Delegation]:
    """Arrange proofs given in any order into the chain (root first) that ends in a
    delegation to `holder`. UnavailableProof when none is delegated to `holder`;
    InvalidClaim when some proof is not part of that chain."""
    remaining = list(delegations)
    current = next((d for d in remaining if d.aud == holder), None)
    if current is None:
        raise UnavailableProof(f"none of the proofs is delegated to {holder}")
    chain = [current]
    remaining.remove(current)
    while current.iss != current.sub:
        parent = next((d for d in remaining if d.aud == current.iss), None)
        if parent is None:
            break
        chain.append(parent)
        remaining.remove(parent)
        current = parent
    if remaining:
        raise InvalidClaim(
            f"proof {remaining[0].cid} ({remaining[0].iss} -> {remaining[0].aud}) is not "
            f"part of the chain to {holder}"
        )
    chain.reverse()
    return chain
