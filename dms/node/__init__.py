"""The node: composition root of key, trust, store, mesh, actor system and roles.

`open_node` runs one; `dms node` (the click group `node_command`) runs one from the shell.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dms.node._behaviors import INFO, PEERS, PING, RESOURCES, NodeInfo, NodeResources
    from dms.node._command import node as node_command
    from dms.node._node import DEPLOYMENT_TOPIC, Node, load_node_key, node_of, open_node
    from dms.node._revocations import REVOCATION_TOPIC, RevocationKeeper
else:
    from dms._exports import lazy_exports

    __getattr__, __dir__ = lazy_exports(__name__, {
        "dms.node._behaviors": ("INFO", "PEERS", "PING", "RESOURCES", "NodeInfo", "NodeResources"),
        "dms.node._node": ("DEPLOYMENT_TOPIC", "Node", "load_node_key", "node_of", "open_node"),
        "dms.node._revocations": ("REVOCATION_TOPIC", "RevocationKeeper"),
    }, aliases={"node_command": "dms.node._command:node"})

__all__ = [
    "DEPLOYMENT_TOPIC", "INFO", "PEERS", "PING", "RESOURCES", "REVOCATION_TOPIC", "Node",
    "NodeInfo", "NodeResources", "load_node_key",
    "RevocationKeeper", "node_command", "node_of",
    "open_node",
]
