"""The admission, fairness and node budgets are the ones spec/security.md states: a
changed default must change the spec with it."""

from __future__ import annotations

import pytest

from dms.actor import DEFAULT_POLICY, AdmissionPolicy, FairShare, RateLimit, decode_message
from dms.actor._wire import MAX_PROOFS
from dms.node._node import GREETING_LIMIT, SCREEN_BUDGET
from dms.node._revocations import REVOCATION_BUDGET
from ucan import MalformedToken, SigningKey, TrustContext, encode_container
from ucan.policy import POLICY_BUDGET


def test_the_admission_and_node_budgets_are_the_documented_defaults():
    policy = DEFAULT_POLICY
    assert (policy.skew, policy.max_ttl) == (60.0, 600.0)
    assert policy.link_budget == RateLimit(rate=5000.0, burst=10_000.0)
    assert policy.policy_steps == RateLimit(rate=50_000.0, burst=200_000.0)
    assert POLICY_BUDGET == 100_000
    assert policy.rate_limit == RateLimit(rate=1000.0, burst=2000.0)
    assert policy.refusal_budget == RateLimit(rate=50.0, burst=200.0)
    assert policy.node_refusal_budget == RateLimit(rate=200.0, burst=400.0)
    assert (SCREEN_BUDGET.rate, SCREEN_BUDGET.burst) == (2000.0, 5000.0)
    assert (REVOCATION_BUDGET.rate, REVOCATION_BUDGET.burst) == (50.0, 500.0)
    assert GREETING_LIMIT == 1024
    share = FairShare()
    assert (share.slots, share.queue, share.queue_bytes) == (64, 1024, 32 * 1024 * 1024)
    assert (share.per_sender_slots, share.per_sender_queue) == (32, 128)
    assert share.per_sender_bytes == 8 * 1024 * 1024


def test_a_message_of_more_than_33_tokens_is_malformed_before_any_is_decoded():
    trust = TrustContext(SigningKey.generate().did)
    junk = [bytes([n]) * 40 for n in range(MAX_PROOFS + 2)]  # no token at all
    with pytest.raises(MalformedToken, match=r"34 tokens \(at most 33\)"):
        decode_message(encode_container(junk), trust)


@pytest.mark.parametrize("skew", [0.0, 4.9, -1.0, float("nan")])
def test_a_skew_under_5_seconds_is_refused_naming_the_field(skew):
    with pytest.raises(ValueError, match="AdmissionPolicy.skew must be at least 5 s"):
        AdmissionPolicy(skew=skew)
    assert AdmissionPolicy(skew=5.0).skew == 5.0  # the bound itself is a valid window
