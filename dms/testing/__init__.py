"""Property-test the authorization of your own behaviors.

- `network` (pytest fixture): a `Testbed` of three (or, parametrized, N) connected nodes
  on an in-memory network whose clocks follow trio's MockClock. The test must take
  pytest-trio's `autojump_clock` too (pytest-trio hands trio.run only the clocks a test
  names itself)::

      from dms.testing import network, grant

      async def test_a_grant_lets_n1_order(network, autojump_clock):
          grant(network[0], network[1], "/shop/order")
          ...

  Or load every fixture at once from a conftest: ``pytest_plugins = ["dms.testing"]``.
- `grant`, `attenuate`, `revoke`: one call each between nodes or actors.
- `AuthorizationMachine`: a hypothesis state machine that grants, attenuates, revokes,
  lets time pass and invokes at random, checking each dispatch against a model you
  state (`expected`); the default model is `GrantGraph`, written from the rules.
"""

from collections.abc import AsyncIterator

import pytest
import trio

from dms.testing.grants import NotTheAudience, Principal, attenuate, grant, revoke
from dms.testing.machine import UCAN_FAILURES, AuthorizationMachine
from dms.testing.model import Grant, GrantGraph, UnsupportedPolicy, covers, policy_holds
from dms.testing.portal import PortalClosed, TrioPortal
from dms.testing.testbed import (
    EPOCH,
    MockClockMissing,
    Testbed,
    node_key,
    open_testbed,
    settle,
    virtual_clock,
)

__all__ = [
    "EPOCH", "UCAN_FAILURES", "AuthorizationMachine", "Grant", "GrantGraph", "MockClockMissing",
    "NotTheAudience", "PortalClosed", "Principal", "Testbed", "TrioPortal", "UnsupportedPolicy",
    "attenuate", "covers", "grant", "network", "node_key", "open_testbed",
    "policy_holds", "revoke", "settle", "virtual_clock",
]


@pytest.fixture
async def network(request: pytest.FixtureRequest,
                  autojump_clock: trio.abc.Clock) -> AsyncIterator[Testbed]:
    """Three connected nodes under the test's MockClock (see the module doc); for
    another number, ``@pytest.mark.parametrize("network", [5], indirect=True)``."""
    size = getattr(request, "param", 3)
    if trio.lowlevel.current_clock() is not autojump_clock:
        raise MockClockMissing(
            "the `network` fixture needs the test to run on trio's MockClock: add "
            "`autojump_clock` to the test function's arguments"
        )
    async with open_testbed(size) as testbed:
        yield testbed
