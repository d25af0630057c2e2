"""The node: composition root of key, trust, store, mesh, actor system and roles.

`open_node` runs one; `dms node` (the click group `node_command`) runs one from the shell.
"""

from dms.node._behaviors import INFO, PEERS, PING, RESOURCES, NodeInfo, NodeResources
from dms.node._command import node as node_command
from dms.node._node import DEPLOYMENT_TOPIC, Node, load_node_key, node_of, open_node
from dms.node._revocations import REVOCATION_TOPIC, RevocationKeeper

__all__ = [
    "DEPLOYMENT_TOPIC", "INFO", "PEERS", "PING", "RESOURCES", "REVOCATION_TOPIC", "Node",
    "NodeInfo", "NodeResources", "load_node_key",
    "RevocationKeeper", "node_command", "node_of",
    "open_node",
]
