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
- `grant`, `attenuate`, `revoke_everywhere`: one call each between nodes or actors.
- `AuthorizationMachine`: a hypothesis state machine that grants, attenuates, revokes,
  lets time pass and invokes at random, checking each dispatch against a model you
  state (`expected`); the default model is `GrantGraph`, written from the rules.

The pieces that need the test tools load when first used, so ``import dms.testing``
(a `Testbed`, `grant`, the model) works without pytest or hypothesis installed; `network`
needs pytest and pytest-trio, `AuthorizationMachine` needs hypothesis (``pip install
pydms[testing]``).
"""

from typing import Any

from dms.testing._grants import NotTheAudience, Principal, attenuate, grant, revoke_everywhere
from dms.testing._model import Grant, GrantGraph, UnsupportedPolicy, covers, policy_holds
from dms.testing._portal import PortalClosed, TrioPortal
from dms.testing._testbed import (
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
    "policy_holds", "revoke_everywhere", "settle", "virtual_clock",
]

_LAZY = {  # name -> the module that defines it, imported on first use
    "network": "dms.testing._fixtures",
    "AuthorizationMachine": "dms.testing._machine",
    "UCAN_FAILURES": "dms.testing._machine",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    # pytest finds the `network` fixture of ``pytest_plugins = ["dms.testing"]`` here
    return sorted(set(globals()) | set(__all__))
