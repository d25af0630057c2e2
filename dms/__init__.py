"""dms: actor nodes that exchange UCAN-authorized messages and deploy compute ensembles.

The runtime users script against::

    async with dms.open_node(listen="tcp://127.0.0.1:0") as node:
        @node.root.behavior("/demo/echo")
        async def echo(message):
            return message.args

The names below are loaded on first use (PEP 562), not when `dms` is imported: every
`dms.*` module imports this package first, and a command such as `dms --version` must
not pay for the whole node (actors, mesh, provider) to print one line.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dms.actor import (
        Actor,
        AdmissionPolicy,
        BehaviorFailed,
        ExceedsParent,
        Handle,
        Message,
        RateLimit,
        RemoteError,
        RequestTimeout,
        Role,
        Undeliverable,
        behavior,
    )
    from dms.node import DEPLOYMENT_TOPIC, REVOCATION_TOPIC, Node, open_node

_HOME = {
    **dict.fromkeys(
        ("Actor", "AdmissionPolicy", "BehaviorFailed", "ExceedsParent", "Handle", "Message",
         "RateLimit", "RemoteError", "RequestTimeout", "Role", "Undeliverable", "behavior"),
        "dms.actor"),
    **dict.fromkeys(("DEPLOYMENT_TOPIC", "REVOCATION_TOPIC", "Node", "open_node"), "dms.node"),
}
"""Which subpackage defines each re-exported name."""

__all__ = [
    "DEPLOYMENT_TOPIC", "REVOCATION_TOPIC", "Actor", "AdmissionPolicy", "BehaviorFailed",
    "ExceedsParent", "Handle", "Message", "Node", "RateLimit", "RemoteError", "RequestTimeout",
    "Role", "Undeliverable", "behavior", "open_node",
]


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'dms' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # later lookups are plain module attributes
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
