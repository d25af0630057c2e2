"""dms: actor nodes that exchange UCAN-authorized messages and deploy compute ensembles.

The runtime users script against::

    async with dms.open_node(listen="tcp://127.0.0.1:0") as node:
        @node.root.behavior("/demo/echo")
        async def echo(message):
            return message.args

These names are imported on first use (`dms._exports`), not with the package: every
`dms.*` module imports this package first, and `dms --version` must not pay for the node.
"""

from typing import TYPE_CHECKING

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
else:
    from dms._exports import lazy_exports

    __getattr__, __dir__ = lazy_exports(__name__, {
        "dms.actor": (
            "Actor", "AdmissionPolicy", "BehaviorFailed", "ExceedsParent", "Handle", "Message",
            "RateLimit", "RemoteError", "RequestTimeout", "Role", "Undeliverable", "behavior",
        ),
        "dms.node": ("DEPLOYMENT_TOPIC", "REVOCATION_TOPIC", "Node", "open_node"),
    })

__all__ = [
    "DEPLOYMENT_TOPIC", "REVOCATION_TOPIC", "Actor", "AdmissionPolicy", "BehaviorFailed",
    "ExceedsParent", "Handle", "Message", "Node", "RateLimit", "RemoteError", "RequestTimeout",
    "Role", "Undeliverable", "behavior", "open_node",
]
