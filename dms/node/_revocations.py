"""Revocations at a node: screened before the mesh floods them, applied to the trust
context, kept on disk when they concern this node, throttled per link peer.

A revocation is self-authorizing (it only counts where its issuer is in the revoked
chain), so it bypasses admission; this module is its whole path.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from dms.actor import RateLimit, RateLimiter, decode_message
from ucan import CID, REVOKE, Invocation, TrustContext, UcanError, verify_signature
from ucan.store import TokenStore

REVOCATION_TOPIC = "/nunet/revocation"
REVOCATION_BUDGET = RateLimit(rate=50.0, burst=500.0)
"""Revocations per second per link peer: a flood of junk revocations stays cheap."""


class RevocationKeeper:
    def __init__(self, trust: TrustContext, store: TokenStore | None,
                 clock: Callable[[], float], budget: RateLimit = REVOCATION_BUDGET) -> None:
        self.trust = trust
        self.store = store
        self.clock = clock
        self.counters: Counter[str] = Counter()
        self._limiter = RateLimiter(budget)

    def screen(self, payload: bytes) -> bool:
        """Whether the mesh may deliver and forward this publication on the revocation
        topic: a well-formed `/ucan/revoke` invocation signed by its issuer."""
        try:
            invocation = decode_message(payload, self.trust).invocation
        except UcanError:
            return False
        return invocation.cmd == REVOKE and verify_signature(
            invocation.iss, invocation.signed_bytes, invocation.signature)

    def receive(self, data: bytes, via: str) -> None:
        """A revocation from link peer `via`: applied unless bad, or over its budget and
        about nothing this node knows. The frames come from whichever neighbour relayed
        them, and the mesh never delivers a publication twice: a budget spent by junk
        from afar must not make the node miss the revocation of a grant it holds."""
        try:
            revocation = decode_message(data, self.trust).invocation
        except UcanError:
            self.counters["dropped.bad-revocation"] += 1
            return
        if not self._limiter.allow(via, REVOCATION_TOPIC, self.clock()) and not self._known(
                revocation):
            self.counters["dropped.revocation-rate"] += 1
            return
        try:
            self.apply(revocation)
        except UcanError:
            self.counters["dropped.bad-revocation"] += 1

    def _known(self, revocation: Invocation) -> bool:
        """Whether it revokes, by its issuer, a delegation this node holds, or one it
        has verified in a chain (whose issuers it does not keep)."""
        target = revocation.args.get("revoke")
        return isinstance(target, CID) and (self._counts_for_held(revocation, target)
                                            or target in self.trust.verified)

    def _counts_for_held(self, revocation: Invocation, target: CID) -> bool:
        """Whether it revokes a delegation this node holds and is signed by that
        delegation's issuer or subject (anybody else's changes nothing here)."""
        held = self.trust.provided.get(target)
        return held is not None and revocation.iss in (held.iss, held.sub)

    def apply(self, revocation: Invocation) -> None:
        """Apply a revocation (UcanError if it is not a valid one) and keep it on disk
        when it concerns this node: a grant it holds, or a revocation by the node itself
        or one of its anchors (any chain the node accepts may rest on their grants).
        Anybody can sign a revocation of anything; a flood of those stays in the
        bounded in-memory set, and only the issuer's (or subject's) of a held grant
        is written down."""
        target = self.trust.revocations.add(revocation)
        if self.store is not None and (self._counts_for_held(revocation, target)
                                       or self.trust.trusts_subject(revocation.iss)):
            self.store.put_revocation(revocation)
        self.counters["revocations.applied"] += 1
