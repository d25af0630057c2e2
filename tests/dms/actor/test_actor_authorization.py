"""Authorization as a property: random grant graphs among several nodes (attenuation,
expiry, not-before, revocation by issuers and by strangers) and random invocations;
a behavior runs exactly when the plain reference model (`dms.testing.GrantGraph`) says
it should, and every refusal comes back named after its UCAN failure.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

from dms.testing import AuthorizationMachine


class GrantGraphs(AuthorizationMachine):
    size = 4
    # Policies are left out here: with several chains of different policies the sender
    # picks a chain without looking at the args (reported to the runtime's owner), so a
    # model that asks "is there any chain" disagrees. Policies on single chains are
    # covered in test_actor_admission and examples/test_my_flow.py.
    policies = ([],)
    lifetimes = (None, 5, 60, 3600)
    delays = (None, 30)


TestGrantGraphs = GrantGraphs.TestCase
TestGrantGraphs.settings = settings(
    max_examples=60, stateful_step_count=25, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
