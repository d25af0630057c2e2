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
from ucan.validate import Revoked_, check_links


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
    check_links(chain, now=now, revoked=revoked, verified=verified)
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


class OutlivesProof(InvalidClaim):
    """A grant that would expire after a proof it rests on. Still named InvalidClaim;
    `latest` is the latest expiry the proofs allow, so a caller can suggest it."""

    def __init__(self, message: str, latest: int) -> None:
        super().__init__(message)
        self.latest = latest


def first_to_expire(chain: Sequence[Delegation]) -> Delegation | None:
    """The proof that expires first (None when none of them expires): a grant resting on
    `chain` may not expire after it."""
    expiring = [d for d in chain if d.exp is not None]
    return min(expiring, key=lambda d: d.exp or 0, default=None)


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
    support. Checked in this order, the first failure named: the chain itself
    (`validate_delegation_chain`), the last proof delegated to `issuer`
    (InvalidAudience), the subject (InvalidSubject), every proof's command proving
    `command` (InvalidClaim), then no proof expiring before the grant (OutlivesProof, an
    InvalidClaim). Policies are not compared: they accumulate down a chain."""
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
        if not proves(delegation.cmd, command):
            raise InvalidClaim(f"{_where(position, total, delegation)}: grants "
                               f"{delegation.cmd}, which does not prove {command}")
    first = first_to_expire(chain)
    if first is not None and first.exp is not None and (
        expiration is None or expiration > first.exp
    ):
        shown = "never" if expiration is None else str(expiration)
        raise OutlivesProof(
            f"{_where(chain.index(first), total, first)}: expires at {first.exp}; a grant "
            f"resting on it cannot expire later ({shown})",
            first.exp,
        )


def order_chain(delegations: Sequence[Delegation], holder: str) -> list[Delegation]:
    """Arrange proofs given in any order into the chain (root first) that ends in a
    delegation to `holder`. InvalidAudience when none is delegated to `holder` (as
    validation names a last proof not delegated to the invoker);
    InvalidClaim when some proof is not part of that chain."""
    remaining = list(delegations)
    current = next((d for d in remaining if d.aud == holder), None)
    if current is None:
        # Name where the proofs do lead: the ones no other proof re-delegates.
        ends = [d for d in remaining
                if not any(o.iss == d.aud for o in remaining if o is not d)] or remaining
        shown = "; ".join(f"{d.cid} is delegated to {d.aud}" for d in ends)
        raise InvalidAudience(f"none of the proofs is delegated to {holder} ({shown})")
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
