"""Per-sender state in the actor layer ends with the sender: a rate limiter forgets
refilled buckets (a full bucket is what a new sender gets), and remembered chain
choices are bounded in bytes and swept of choices that can never hold again."""

from __future__ import annotations

from dms.actor import RateLimit, RateLimiter
from dms.actor._chain_choice import SWEEP_EVERY, ChainChoices
from ucan import SigningKey, TrustContext, delegate


def test_the_rate_limiter_forgets_buckets_once_they_have_refilled() -> None:
    limiter = RateLimiter(RateLimit(rate=10.0, burst=2.0))
    for n in range(1000):  # a sender per second, each gone after one message
        assert limiter.allow(f"actor{n}", "/x", float(n))
    assert len(limiter._buckets) == 1  # only the latest, still short of its burst


def test_the_rate_limiter_still_limits_a_sender_whose_bucket_is_empty() -> None:
    limiter = RateLimiter(RateLimit(rate=1.0, burst=1.0))
    assert limiter.allow("greedy", "/x", 0.0)
    for n in range(100):  # others come and go while "greedy" waits
        assert limiter.allow(f"other{n}", "/x", 0.5)
    assert not limiter.allow("greedy", "/x", 0.5)
    assert limiter.allow("greedy", "/x", 1.0)


def grant(issuer: SigningKey, holder: str, exp: int | None = None):  # type: ignore[no-untyped-def]
    return [delegate(issuer, holder, "/shop", expiration=exp)]


def test_remembered_choices_hold_their_byte_bound() -> None:
    issuer, holder = SigningKey.generate(), SigningKey.generate()
    choices = ChainChoices(TrustContext(holder.did), capacity=10**6, max_bytes=50_000)
    chain = grant(issuer, holder.did)
    for n in range(1000):
        choices.remember(("sender", n), issuer.did, chain)
    assert choices.bytes <= 50_000
    assert 0 < len(choices) < 1000
    assert choices.get(("sender", 999), now=0, skew=0, args={}) is not None


def test_remembered_choices_made_stale_by_a_new_grant_are_swept() -> None:
    issuer, holder = SigningKey.generate(), SigningKey.generate()
    trust = TrustContext(holder.did)
    choices = ChainChoices(trust)
    for n in range(100):
        choices.remember(("gone", n), issuer.did, grant(issuer, holder.did))
    trust.provide(*grant(issuer, holder.did))  # every choice above is stale now
    choices.remember(("live", 0), issuer.did, grant(issuer, holder.did))
    for n in range(SWEEP_EVERY):
        choices.get(("missing", n), now=0, skew=0, args={})
    assert len(choices) == 1
    assert choices.get(("live", 0), now=0, skew=0, args={}) is not None


def test_remembered_choices_past_their_chains_expiry_are_swept() -> None:
    issuer, holder = SigningKey.generate(), SigningKey.generate()
    choices = ChainChoices(TrustContext(holder.did))
    choices.remember(("old", 0), issuer.did, grant(issuer, holder.did, exp=100))
    choices.remember(("live", 0), issuer.did, grant(issuer, holder.did, exp=10_000))
    for n in range(SWEEP_EVERY):
        choices.get(("missing", n), now=200, skew=10, args={})
    assert len(choices) == 1
