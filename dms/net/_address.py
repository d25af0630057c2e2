"""The addresses nodes listen on and dial, parsed in one place.

    tcp://HOST:PORT          the plain TCP link, the default between nodes
    ws://HOST:PORT[/PATH]    the websocket link, for proxies and browsers; the path is
                             the request target a dialer sends (a reverse proxy may route
                             on it), a listener answers on every path

HOST is a name, an IPv4 address or a bracketed IPv6 address (``tcp://[::1]:7000``);
PORT is 0 to 65535 (0: a listener picks a free one). Everything else (another scheme,
no port, user info, a query, a fragment, white space) is refused with a `BadAddress`
that names the address and the problem, so a typo in a config or a flag is one clear
line, not a dial that retries forever.
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

import attrs

from dms.net._errors import BadAddress

Scheme = Literal["tcp", "ws"]
SCHEMES: tuple[Scheme, ...] = ("tcp", "ws")
FORMS = "tcp://HOST:PORT or ws://HOST:PORT[/PATH]"
_PATH = re.compile(r"/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*")


@attrs.frozen
class NodeAddress:
    """A parsed node address; `str()` gives it back in its canonical form."""

    scheme: Scheme
    host: str
    port: int
    path: str = "/"

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        path = "" if self.path == "/" else self.path
        return f"{self.scheme}://{host}:{self.port}{path}"


def parse_node_address(address: str, *, scheme: Scheme | None = None,
                       listening: bool = False) -> NodeAddress:
    """The `NodeAddress` of `address`; `BadAddress` names what is wrong with it.

    `scheme`: the one scheme the caller speaks (a single-carrier transport).
    `listening`: the address is to listen on, so it has no path (a listener answers on
    every path; a path given to it would promise routing it does not do).
    """
    if not isinstance(address, str):
        raise BadAddress(repr(address), f"an address is a string ({FORMS}), "
                                        f"not {type(address).__name__}")
    if not address.isprintable() or any(c.isspace() for c in address):
        raise BadAddress(address, "an address has no spaces or control characters")
    named, separator, _ = address.partition("://")
    if not separator:
        raise BadAddress(address, f"an address starts with its scheme: {FORMS}")
    if named not in SCHEMES:
        raise BadAddress(address, f"{named!r} is not a scheme nodes speak: use {FORMS}")
    if scheme is not None and named != scheme:
        raise BadAddress(address, f"this transport speaks {scheme}://, not {named}://")
    try:
        parts = urlsplit(address)
        port = parts.port
    except ValueError as exc:
        raise BadAddress(address, str(exc)) from None
    if parts.username is not None or parts.password is not None:
        raise BadAddress(address, f"an address has no user info: {FORMS}")
    if not parts.hostname or port is None:
        raise BadAddress(address, f"an address needs a host and a port: {FORMS}")
    if parts.query or parts.fragment or address.endswith(("?", "#")):
        raise BadAddress(address, f"an address has no query or fragment: {FORMS}")
    path = parts.path or "/"
    if named == "tcp" and path != "/":
        raise BadAddress(address, "a tcp:// address has no path: tcp://HOST:PORT")
    if listening and path != "/":
        raise BadAddress(address, f"a node listens on {named}://HOST:PORT, with no path "
                                  f"(a path is for dialing through a proxy)")
    if not _PATH.fullmatch(path):
        raise BadAddress(address, f"the path {path!r} has characters a URL path cannot")
    return NodeAddress(named, parts.hostname, port, path)
