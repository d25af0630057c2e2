"""The transport a node runs on: every scheme nodes speak, behind one `connect`.

A node listens on one address, so on one carrier (`tcp://` by default, `ws://` behind a
proxy), but the peers it learns of may listen on either: a bootstrap list can mix them,
and peer exchange passes on whatever address each peer announces. `NodeTransport` dials
each address over the carrier its scheme names (`dms.net._address`). Its carriers share
one endpoint and one nursery: the node is one peer, with one set of counters, announcing
the same listen address whichever carrier a link runs over, so a peer that reached it
over websocket learns the tcp:// address to dial it back on.
"""

from __future__ import annotations

import nacl.signing
import trio

from dms.net._address import Scheme, parse_node_address
from dms.net._link import DEFAULT_LINK_SETTINGS, Link, LinkHandler, LinkSettings
from dms.net._tcp import TcpTransport
from dms.net._transport import SecureTransport
from dms.net._websocket import WebsocketTransport


class NodeTransport(SecureTransport):
    """The `Transport` over TCP and websocket: each address dialed or listened on over
    the carrier its scheme names."""

    def __init__(
        self, key: nacl.signing.SigningKey, settings: LinkSettings = DEFAULT_LINK_SETTINGS
    ) -> None:
        super().__init__(key, settings)
        self._carriers: dict[Scheme, TcpTransport | WebsocketTransport] = {
            "tcp": TcpTransport(key, settings, sharing=self),
            "ws": WebsocketTransport(key, settings, sharing=self),
        }

    async def listen(
        self,
        address: str,
        handle_link: LinkHandler,
        *,
        task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        carrier = self._carrier_for(address)
        await carrier.listen(address, handle_link, task_status=task_status)

    def check_address(self, address: str) -> None:
        parse_node_address(address)

    async def connect(self, address: str, expect_peer: str | None = None) -> Link:
        return await self._carrier_for(address).connect(address, expect_peer)

    def _carrier_for(self, address: str) -> TcpTransport | WebsocketTransport:
        return self._carriers[parse_node_address(address).scheme]
