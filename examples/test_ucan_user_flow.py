"""How a user property-tests their own authorization rule with `ucan.testing`.

The rule under test: "a provider accepts a bid request when the chain validates and
the requested cpu fits the chain's ceiling". Hypothesis draws valid chains, invocations
inside and outside them, and labelled attacks; the rule must agree with each label.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ucan import TrustContext, UcanError
from ucan.testing import Scenario, ValidChain, chains, invocations, scenarios


def provider_accepts(scenario: Scenario) -> str | None:
    """The user's rule: None when accepted, else the failure name."""
    trust = TrustContext(scenario.invocation.audience, anchors=[scenario.invocation.sub])
    for revocation in scenario.revocations:
        trust.revocations.add(revocation)
    try:
        trust.authorize(scenario.invocation, scenario.proofs, now=scenario.now)
    except UcanError as failure:
        return failure.name
    return None


@settings(max_examples=30, deadline=None)
@given(scenarios(depth=st.integers(1, 3)))
def test_the_provider_rule_names_every_attack(scenario: Scenario) -> None:
    assert provider_accepts(scenario) == scenario.error, scenario.label


@settings(max_examples=20, deadline=None)
@given(chains(depth=2), st.data())
def test_requests_within_the_ceiling_are_accepted(chain: ValidChain, data: st.DataObject) -> None:
    inv = data.draw(invocations(chain, proven=True))
    scenario = Scenario("within", None, inv, chain.delegations, chain.now)
    assert provider_accepts(scenario) is None
