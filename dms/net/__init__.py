"""The network layer: secure links between nodes, and the mesh on top.

A `Transport` (`MemoryTransport` for tests; for real `NodeTransport`, which dials
`tcp://` addresses with `TcpTransport` and `ws://` ones with `WebsocketTransport`, see
`parse_node_address`) opens `Link`s: ordered, reliable, authenticated and encrypted
connections to one peer, whose identity (a did:key) is proven in a handshake. A `Mesh`
keeps a bounded-degree overlay of links to peers and offers unicast, Plumtree pubsub
(eager spanning trees with lazy repair) with dedup and a hop limit, peer exchange and
RTT measurement. The wire
format is specified in spec/transport.md.
"""

from dms.backoff import Backoff
from dms.net._address import NodeAddress, parse_node_address
from dms.net._degree import DegreeLimits, LinkRole
from dms.net._errors import (
    BadAddress,
    ConnectFailed,
    FrameTooLarge,
    HandshakeFailed,
    HandshakeTimeout,
    LinkBusy,
    LinkClosed,
    ListenFailed,
    MeshNotRunning,
    NetError,
    PeerMismatch,
    PeerUnreachable,
    TransportNotOpen,
)
from dms.net._inbox import Inbox, InboxLimits
from dms.net._link import MAX_FRAME, Link, LinkHandler, LinkSettings
from dms.net._memory import LinkConditions, MemoryNetwork, MemoryTransport
from dms.net._mesh import MAX_PAYLOAD, Delivery, Mesh
from dms.net._metrics import Metrics
from dms.net._node_transport import NodeTransport
from dms.net._peers import PeerInfo, PeerTable
from dms.net._seen import SeenMessages
from dms.net._tcp import TcpTransport
from dms.net._transport import Transport
from dms.net._websocket import WebsocketTransport

__all__ = [
    "MAX_FRAME",
    "MAX_PAYLOAD",
    "Backoff",
    "BadAddress",
    "ConnectFailed",
    "DegreeLimits",
    "Delivery",
    "FrameTooLarge",
    "HandshakeFailed",
    "HandshakeTimeout",
    "Inbox",
    "InboxLimits",
    "Link",
    "LinkBusy",
    "LinkClosed",
    "LinkConditions",
    "LinkHandler",
    "LinkRole",
    "ListenFailed",
    "LinkSettings",
    "MemoryNetwork",
    "MemoryTransport",
    "Mesh",
    "MeshNotRunning",
    "Metrics",
    "NetError",
    "NodeAddress",
    "NodeTransport",
    "PeerInfo",
    "PeerMismatch",
    "PeerTable",
    "PeerUnreachable",
    "SeenMessages",
    "TcpTransport",
    "Transport",
    "TransportNotOpen",
    "WebsocketTransport",
    "parse_node_address",
]
