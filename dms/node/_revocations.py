"""Revocations at a node: screened before the mesh floods them, applied to the trust
context, kept on disk when they concern this node, throttled per link peer.

A revocation is self-authorizing (it only counts where its issuer is in the revoked
chain), so it bypasses admission; this module is its whole path.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable

from dms.actor import REVOCATION_RETENTION, RateLimit, RateLimiter, decode_message
from ucan import CID, REVOKE, Invocation, TrustContext, UcanError, verify_signature
from ucan.store import TokenStore

REVOCATION_TOPIC = "/nunet/revocation"
EXPIRED_GRACE = REVOCATION_RETENTION
"""Seconds past its revoked delegation's expiry a kept revocation stays (far beyond any
clock skew a chain is validated with); the node's revocations of its actors' grants
carry the same date as their own `exp`, which every node honours."""
PRUNE_INTERVAL = 60.0
REVOCATION_BUDGET = RateLimit(rate=50.0, burst=500.0)
"""Revocations per second per link peer: a flood of junk revocations stays cheap."""
MAX_UNWRITTEN = 10_000
"""Kept revocations whose file could not be written (a full disk), held to write again.
Past it the oldest are let go from that list only: they stay kept (in the trust
context), and once writes succeed again every kept revocation missing on disk is
written (`_catch_up`), so a restart after the disk is freed forgets none of them."""

log = logging.getLogger("dms.node")


class RevocationKeeper:
    def __init__(self, trust: TrustContext, store: TokenStore | None,
                 clock: Callable[[], float], budget: RateLimit = REVOCATION_BUDGET) -> None:
        self.trust = trust
        self.store = store
        self.clock = clock
        self.grace = EXPIRED_GRACE
        """Seconds past its revoked delegation's expiry a kept revocation stays."""
        if store is not None:
            trust.revocations.on_keep = self._write
        self.counters: Counter[str] = Counter()
        self._limiter = RateLimiter(budget)
        self._unwritten: dict[CID, tuple[Invocation, int | None]] = {}
        """Revocation -> (it, when what it revokes expires), by CID."""
        self._lost_track = False
        """Whether some unwritten revocations were let go from `_unwritten` (past
        `MAX_UNWRITTEN`): the kept ones are then compared with the disk."""

    def _write(self, revocation: Invocation, until: int | None = None) -> None:
        """Keep a revocation on disk. One that cannot be written (the disk is full) is
        applied all the same and written again later (`forget_expired`, and before the
        next one is written): the node runs on rather than end on a write."""
        assert self.store is not None
        self._unwritten[revocation.cid] = (revocation, until)
        for cid, (pending, pending_until) in list(self._unwritten.items()):
            try:
                self.store.put_revocation(pending, pending_until)
            except OSError as error:
                self.counters["revocations.unwritten"] += 1
                log.error("revocation %s is applied but cannot be kept in %s: %s; it is "
                          "written again when there is room", cid, self.store.directory,
                          error.strerror or error)
                break
            del self._unwritten[cid]
        while len(self._unwritten) > MAX_UNWRITTEN:
            del self._unwritten[next(iter(self._unwritten))]
            self._lost_track = True  # still kept in memory: `_catch_up` finds it

    def _catch_up(self) -> None:
        """Write every kept revocation that is not on disk (some were let go from the
        unwritten list while the disk was full); stops at the first that still cannot
        be written, to try again at the next pass."""
        assert self.store is not None
        self._lost_track = False
        try:
            on_disk = self.store.revocation_cids()
            kept = self.trust.revocations
            for revocation in kept.kept_revocations():
                if revocation.cid not in on_disk:
                    self.store.put_revocation(revocation, kept.kept_until(revocation.cid))
        except OSError as error:
            self._lost_track = True
            self.counters["revocations.unwritten"] += 1
            log.error("kept revocations cannot all be written to %s yet: %s",
                      self.store.directory, error.strerror or error)

    def forget_expired(self) -> int:
        """Forget (in memory and on disk) the kept revocations of delegations that
        expired `grace` seconds ago, and every revocation whose own `exp` has passed:
        they decide nothing any more, and each stopped actor leaves one on every node
        its revocation reached. The `exp` is in the signed token on disk, so a
        restarted node forgets one no sooner than it would have. The trust context's
        caches forget those delegations too (`TrustContext.forget_expired`): otherwise
        every stopped actor's grants would stay in them for hours, until their caps."""
        now = int(self.clock())
        gone = self.trust.revocations.forget_expired(now, self.grace)
        self.counters["trust.expired"] += self.trust.forget_expired(now, self.grace)
        for revocation in gone:
            self._unwritten.pop(revocation.cid, None)
            if self.store is not None:
                self.store.remove_revocation(revocation.cid)
        if self._unwritten:
            self._write(*next(iter(self._unwritten.values())))
        if self._lost_track and not self._unwritten and self.store is not None:
            self._catch_up()
        self.counters["revocations.expired"] += len(gone)
        return len(gone)

    def screen(self, payload: bytes) -> bool:
        """Whether the mesh may deliver and forward this publication on the revocation
        topic: a well-formed `/ucan/revoke` invocation signed by its issuer."""
        try:
            invocation = decode_message(payload, self.trust).invocation
        except UcanError:
            return False
        return invocation.cmd == REVOKE and verify_signature(
            invocation.iss, invocation.signed_bytes, invocation.signature)

    def receive(self, data: bytes, via: str) -> bool:
        """A revocation from link peer `via`: applied unless bad, or over its budget and
        about nothing this node knows. The frames come from whichever neighbour relayed
        them: a budget spent by junk from afar must not make the node miss the
        revocation of a grant it holds. False when it was dropped unprocessed, over the
        budget (so the mesh lets a later copy of it in)."""
        try:
            revocation = decode_message(data, self.trust).invocation
        except UcanError:
            self.counters["dropped.bad-revocation"] += 1
            return True
        if not self._limiter.allow(via, REVOCATION_TOPIC, self.clock()) and not self._known(
                revocation):
            self.counters["dropped.revocation-rate"] += 1
            return False
        try:
            self.apply(revocation)
        except UcanError:
            self.counters["dropped.bad-revocation"] += 1
        return True

    def known(self, payload: bytes) -> bool:
        """`_known` of a revocation not yet checked (decoded only: no signature work)."""
        try:
            return self._known(decode_message(payload, self.trust).invocation)
        except UcanError:
            return False

    def _known(self, revocation: Invocation) -> bool:
        """Whether it matters here (see `TrustContext.revocation_matters`), or revokes a
        delegation this node has verified in a chain (whose issuers it does not keep)."""
        target = revocation.args.get("revoke")
        return isinstance(target, CID) and (self.trust.revocation_matters(revocation, target)
                                            or target in self.trust.verified)

    def apply(self, revocation: Invocation, *, until: int | None = None) -> None:
        """Apply a revocation (UcanError if it is not a valid one). One that matters here
        is kept, and on disk (through the trust context's `on_keep`), until `grace`
        past `until` (when the revoked delegation expires, if the caller knows) or past
        what the trust context knows of it, for good otherwise; anybody can sign a
        revocation of anything, and a flood of those stays in the bounded in-memory set."""
        self.trust.revocations.add(revocation, until=until)
        self.counters["revocations.applied"] += 1
