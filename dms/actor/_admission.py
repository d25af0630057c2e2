"""The dispatch decision, sans-IO: bytes in, a verdict out.

The order is the security contract (ARCHITECTURE.md section 4): decode, signature,
replay, time bounds (expiry; a request issued no later than now, give or take the
skew), chain validation (with the trust context's CID cache), subject is
this node, an anchor or the audience actor itself, rate limit. Nothing reaches a behavior without passing all of
it. A message's CID enters the replay cache only once it is accepted; one that cannot be
recorded durably is refused, unless its behavior was declared replay-harmless
(`declare_replay_harmless`): then it is remembered in memory only. Forged, replayed and rate-limited traffic is dropped and counted; a well-signed
but unauthorized request is refused with the UCAN failure so its sender can be told.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import attrs

from dms.actor._behavior import marked_behaviors
from dms.actor._ratelimit import RateLimit, RateLimiter
from dms.actor._replay import ReplayCache, ReplayMemory, ReplayNotKept
from dms.actor._wire import REPLY, Envelope, decode_message
from ucan import (
    Chain,
    Expired,
    InvalidAudience,
    Invocation,
    MalformedToken,
    TooEarly,
    TrustContext,
    UcanError,
    verify_signature,
)
from ucan.policy import POLICY_BUDGET, Budget


@attrs.frozen
class Accept:
    """Authorized: dispatch to `actor` (None: deliver to the topic's subscribers)."""

    envelope: Envelope
    chain: Chain
    actor: str | None
    topic: str | None


@attrs.frozen
class Refuse:
    """Well-signed but not authorized; `error` names the failure for the error reply."""

    envelope: Envelope
    error: UcanError


@attrs.frozen
class Drop:
    """Not worth an answer (malformed, forged, replayed, rate-limited)."""

    reason: str


@attrs.frozen
class ReplyIn:
    """A signed, fresh reply; the node matches it against its outstanding requests."""

    envelope: Envelope


Verdict = Accept | Refuse | Drop | ReplyIn


@attrs.frozen
class AdmissionPolicy:
    skew: float = attrs.field(default=60.0, validator=lambda _, __, v: _skew_checked(v))
    """Seconds of clock difference tolerated on exp and iat. An accepted message's id is
    remembered until its exp plus this (the replay window), so a soak compresses it;
    below 5 s, a reply delayed a moment on a busy node is refused as expired (seen at 1 s
    on a loaded 2-core machine)."""
    max_ttl: float = 600.0  # messages must expire within this: bounds the replay cache
    rate_limit: RateLimit = RateLimit()  # per (sender, command), after the chain
    link_budget: RateLimit = RateLimit(rate=5000.0, burst=10000.0)
    """Frames per second per link peer, spent before any decoding or signature check:
    one connected peer's flood cannot take the whole node's verification time."""
    policy_steps: RateLimit = RateLimit(rate=50_000.0, burst=float(POLICY_BUDGET) * 2)
    """Policy evaluation steps per second per link peer (100k steps cost about 0.2 s
    here): a grant holder's heavy policies take at most about a tenth of the node's
    time, and other peers' messages wait behind one of them, not behind a stream."""
    refusal_budget: RateLimit = RateLimit(rate=50.0, burst=200.0)
    """Refusals answered per second per link peer: each costs a signature and a cache
    entry for the refused message's lifetime; past it refusals go unanswered."""
    node_refusal_budget: RateLimit = RateLimit(rate=200.0, burst=400.0)
    """Refusals answered per second by the whole node, after the link peer's budget:
    a new link peer costs a stranger one handshake, so per-peer budgets alone do not
    bound what fresh identities make the node sign (about a tenth of a core here)."""


def _skew_checked(skew: float) -> None:
    if not skew >= MIN_SKEW:  # NaN too
        raise ValueError(f"AdmissionPolicy.skew must be at least {MIN_SKEW:g} s, got {skew}")


MIN_SKEW = 5.0

DEFAULT_POLICY = AdmissionPolicy()


class Admission:
    def __init__(
        self,
        trust: TrustContext,
        is_local_actor: Callable[[str], bool],
        policy: AdmissionPolicy = DEFAULT_POLICY,
        *,
        replays: ReplayMemory | None = None,
    ) -> None:
        self.trust = trust
        self.is_local_actor = is_local_actor
        self.policy = policy
        self.metrics: Counter[str] = Counter()
        self._replays: ReplayMemory = ReplayCache() if replays is None else replays
        self._limiter = RateLimiter(policy.rate_limit)
        self._policy_steps = RateLimiter(policy.policy_steps)
        self._harmless: dict[str, frozenset[str]] = {}

    def declare_replay_harmless(self, actor: str, role: object) -> None:
        """Declare the behaviors of `role` (registered on local `actor`) marked
        `@behavior(..., replay_harmless=True)`. A unicast message to `actor` whose
        command is exactly one of theirs (not one routed to them by prefix) is accepted
        when the replay memory cannot keep its id where it survives a restart (a full
        disk): the id is then remembered in memory, so a copy is still dropped in this
        process. Every other message is refused then, as before. Declarations of actors
        no longer local are pruned on each call, and an actor's are forgotten when it
        stops (`forget_actor`): a lasting actor spawned again with the same id does not
        inherit its predecessor's."""
        for gone in [known for known in self._harmless if not self.is_local_actor(known)]:
            del self._harmless[gone]
        declared = frozenset(spec.command for spec in marked_behaviors(role)
                             if spec.replay_harmless)
        if declared and self.is_local_actor(actor):
            self._harmless[actor] = declared
        else:
            self._harmless.pop(actor, None)

    def forget_actor(self, actor: str) -> None:
        """`actor` stopped: its replay-harmless declarations go with it (an actor given
        its id again declares its own, or has none)."""
        self._harmless.pop(actor, None)

    def admit(self, data: bytes, *, now: float, topic: str | None = None,
              via: str | None = None, screened: Envelope | None = None) -> Verdict:
        """Decide on one message; `via` is the link peer it came from (None: this node),
        whose policy-step budget its chain's policies are evaluated within. `screened`
        is the envelope decoded from exactly `data` whose invocation signature was
        already checked (the publication screen's): the only steps it spares."""
        self.metrics["received"] += 1
        if screened is None:
            try:
                envelope = decode_message(data, self.trust)
            except MalformedToken:
                return self._drop("malformed")
            if not verify_signature(envelope.invocation.iss, envelope.invocation.signed_bytes,
                                    envelope.invocation.signature):
                return self._drop("forged")
        else:
            envelope = screened
        inv = envelope.invocation
        if self._replays.seen(inv.cid):
            return self._drop("replayed")
        policy = self.policy
        if inv.exp is None or inv.exp > now + policy.max_ttl + policy.skew:
            return self._refuse(envelope, Expired(
                f"invocation {inv.cid}: messages must expire within {policy.max_ttl:g} s "
                f"(expires at {inv.exp}, now {int(now)} by this node's clock; a sender's "
                f"clock may be off by {policy.skew:g} s)"))
        if now > inv.exp + policy.skew:
            return self._refuse(envelope, Expired(
                f"invocation {inv.cid}: expired at {inv.exp} (now {int(now)} by this "
                f"node's clock; a sender's clock may be off by {policy.skew:g} s)"))

        if inv.cmd == REPLY:
            if topic is not None or not self.is_local_actor(inv.audience):
                return self._drop("misaddressed-reply")
            # A reply replayed after a restart finds no request waiting for it: one that
            # cannot be recorded is taken all the same, remembered in this process only.
            try:
                self._remember(inv, now)
            except ReplayNotKept:
                assert inv.exp is not None
                self._replays.remember_in_memory(inv.cid, inv.exp + policy.skew, now)
            return ReplyIn(envelope)

        if inv.iat is not None and inv.iat > now + policy.skew:
            # A request issued in our future: the sender's clock is ahead, and acting on
            # it would answer with a reply its sender's clock sees as long expired. (A
            # reply from the future is taken: its error may name the clocks better.)
            return self._refuse(envelope, TooEarly(
                f"invocation {inv.cid}: issued at {inv.iat}, {inv.iat - int(now)} s after "
                f"now ({int(now)}) by this node's clock; a sender's clock may be off by "
                f"{policy.skew:g} s"))

        if topic is None:
            if inv.aud is None:
                return self._refuse(envelope, InvalidAudience(
                    f"invocation {inv.cid} names no audience: a unicast message must"))
            if not self.is_local_actor(inv.audience):
                return self._refuse(envelope, InvalidAudience(
                    f"invocation {inv.cid} is addressed to {inv.audience}, no such actor here"))
            audiences = owners = {inv.audience}  # an actor owns its own id
        else:
            if inv.aud is not None or inv.args.get("topic") != topic:
                return self._refuse(envelope, InvalidAudience(
                    f"invocation {inv.cid} was published on {topic} but is not a broadcast "
                    f"for that topic"))
            audiences, owners = {inv.sub}, set()
        steps = None
        if via is not None:
            available = int(self._policy_steps.available(via, "policy", now))
            if available < 1:
                return self._drop("policy-budget")
            steps = Budget(min(POLICY_BUDGET, available))
        try:
            chain = self.trust.authorize(inv, envelope.proofs, now=int(now),
                                         audiences=audiences, owners=owners,
                                         signature_checked=True, skew=int(policy.skew),
                                         policy_budget=steps)
        except UcanError as error:
            return self._refuse(envelope, error)
        finally:
            if via is not None and steps is not None and steps.spent:
                self._policy_steps.charge(via, "policy", now, steps.spent)
        # Per (sender, capability): the command the sender was delegated, not the one
        # it invokes, or every made-up suffix (`/shop/order/n1`, routed to the behavior
        # of `/shop/order`) would bring a fresh bucket.
        held = chain.delegations[-1].cmd if chain.delegations else inv.cmd
        if not self._limiter.allow(inv.iss, held, now):
            return self._drop("rate-limited")
        # Only an accepted message burns its CID: a copy with damaged proofs, refused,
        # must not stop the genuine message that follows it.
        try:
            self._remember(inv, now)
        except ReplayNotKept as error:  # fail closed: unrecorded, it could run twice
            if topic is not None or inv.cmd not in self._harmless.get(inv.audience, ()):
                return self._refuse(envelope, error)
            # Run twice (once more after a restart), it leaves what one run would.
            assert inv.exp is not None
            self._replays.remember_in_memory(inv.cid, inv.exp + policy.skew, now)
            self.metrics["accepted.unrecorded"] += 1
        self.metrics["accepted"] += 1
        return Accept(envelope, chain, None if topic else inv.audience, topic)

    def _remember(self, inv: Invocation, now: float) -> None:
        assert inv.exp is not None
        self._replays.remember(inv.cid, inv.exp + self.policy.skew, now)

    def _drop(self, reason: str) -> Drop:
        self.metrics[f"dropped.{reason}"] += 1
        return Drop(reason)

    def _refuse(self, envelope: Envelope, error: UcanError) -> Refuse:
        self.metrics[f"refused.{error.name}"] += 1
        return Refuse(envelope, error)
