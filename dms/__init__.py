"""dms: actor nodes that exchange UCAN-authorized messages and deploy compute ensembles.

The runtime users script against::

    async with dms.open_node(listen="tcp://127.0.0.1:0") as node:
        @node.root.behavior("/demo/echo")
        async def echo(message):
            return message.args
"""

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

__all__ = [
    "DEPLOYMENT_TOPIC", "REVOCATION_TOPIC", "Actor", "AdmissionPolicy", "BehaviorFailed",
    "ExceedsParent", "Handle", "Message", "Node", "RateLimit", "RemoteError", "RequestTimeout",
    "Role", "Undeliverable", "behavior", "open_node",
]
