"""Revocation: a delegation's issuer (or an issuer above it in a chain) retracts it.

A revocation is an invocation of `/ucan/revoke` with `args = {"revoke": <CID>}`, issued
and signed by the revoker on its own authority (`sub` = revoker, no proofs). It
invalidates the revoked delegation in every chain in which the revoker issued that
delegation or one above it; a revocation by anybody else is recorded but changes no
chain (that is what stops strangers from revoking your grants). Revocations are
monotonic: once known they are never forgotten until the delegation expires.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from ucan.codec import CID
from ucan.delegation import Delegation
from ucan.did import verify_signature
from ucan.envelope import Signer
from ucan.errors import InvalidSignature, MalformedToken
from ucan.invocation import Invocation, invoke

REVOKE = "/ucan/revoke"


def revoke(revoker: Signer, delegation: Delegation | CID) -> Invocation:
    """The signed revocation of `delegation` by `revoker` (never expires, empty nonce)."""
    cid = delegation.cid if isinstance(delegation, Delegation) else delegation
    return invoke(revoker, revoker.did, REVOKE, {"revoke": cid}, expiration=None, nonce=b"")


MAX_REVOCATION_BYTES = 2048
"""A revocation is a CID, a nonce and a signature: anything much bigger is padding."""


def revoked_cid(revocation: Invocation) -> CID:
    """Check a revocation's shape, size and signature; return the CID it revokes."""
    if len(revocation.envelope) > MAX_REVOCATION_BYTES:
        raise MalformedToken(f"revocation {revocation.cid} is {len(revocation.envelope)} bytes "
                             f"(at most {MAX_REVOCATION_BYTES})")
    if revocation.cmd != REVOKE:
        raise MalformedToken(f"invocation {revocation.cid} is {revocation.cmd}, not {REVOKE}")
    target = revocation.args.get("revoke")
    if not isinstance(target, CID):
        raise MalformedToken(f"revocation {revocation.cid}: args.revoke must be a CID")
    if revocation.sub != revocation.iss or revocation.prf:
        raise MalformedToken(
            f"revocation {revocation.cid}: must be issued by the revoker on its own authority"
        )
    if not verify_signature(revocation.iss, revocation.signed_bytes, revocation.signature):
        raise InvalidSignature(f"revocation {revocation.cid}: signature does not verify")
    return target


class RevocationSet:
    """Known revocations: revoked CID -> the DIDs that revoked it (verified).

    Bounded: past `capacity` records or `max_bytes` of envelopes the oldest is
    forgotten, and one issuer keeps at most `per_issuer` records (its own oldest goes
    first), so a flood from one key cannot push out everybody else's. `version` grows
    with every new record, so a cache can tell that the set changed.
    """

    def __init__(self, capacity: int = 100_000, *, max_bytes: int = 64 * 1024 * 1024,
                 per_issuer: int = 1000) -> None:
        self._revokers: dict[CID, set[str]] = {}
        self._records: dict[CID, Invocation] = {}
        self._pairs: dict[tuple[CID, str], int] = {}  # records per (target, revoker)
        self._by_issuer: dict[str, dict[CID, None]] = {}  # each issuer's, oldest first
        self._by_target: dict[CID, dict[CID, None]] = {}  # records revoking each target
        self.capacity = capacity
        self.max_bytes = max_bytes
        self.per_issuer = per_issuer
        self.bytes = 0
        self.version = 0

    def add(self, revocation: Invocation) -> CID:
        """Verify and record a revocation; returns the revoked CID. Idempotent."""
        target = revoked_cid(revocation)
        if revocation.cid in self._records:
            return target
        self._revokers.setdefault(target, set()).add(revocation.iss)
        self._records[revocation.cid] = revocation
        self.bytes += len(revocation.envelope)
        pair = (target, revocation.iss)
        self._pairs[pair] = self._pairs.get(pair, 0) + 1
        own = self._by_issuer.setdefault(revocation.iss, {})
        own[revocation.cid] = None
        self._by_target.setdefault(target, {})[revocation.cid] = None
        self.version += 1
        if len(own) > self.per_issuer:
            self._forget(next(iter(own)))
        while self._records and (len(self._records) > self.capacity
                                 or self.bytes > self.max_bytes):
            self._forget(next(iter(self._records)))
        return target

    def _forget(self, record: CID) -> None:
        old = self._records.pop(record)
        self.bytes -= len(old.envelope)
        own = self._by_issuer[old.iss]
        del own[record]
        if not own:
            del self._by_issuer[old.iss]
        target = old.args["revoke"]
        of_target = self._by_target[target]
        del of_target[record]
        if not of_target:
            del self._by_target[target]
        pair = (target, old.iss)
        self._pairs[pair] -= 1
        if self._pairs[pair] == 0:
            del self._pairs[pair]
            revokers = self._revokers[pair[0]]
            revokers.discard(old.iss)
            if not revokers:
                del self._revokers[pair[0]]

    def revokes(self, cid: CID, issuers: Sequence[str]) -> bool:
        """True when one of `issuers` (the issuers of this delegation and those above it
        in the chain being validated) revoked `cid`."""
        revokers = self._revokers.get(cid)
        return revokers is not None and any(issuer in revokers for issuer in issuers)

    def records_of(self, cid: CID) -> list[Invocation]:
        """The bounded part's records revoking `cid`."""
        return [self._records[record] for record in self._by_target.get(cid, ())]

    def revokers(self, cid: CID) -> frozenset[str]:
        return frozenset(self._revokers.get(cid, ()))

    def __iter__(self) -> Iterator[Invocation]:
        return iter(self._records.values())

    def __len__(self) -> int:
        return len(self._records)
