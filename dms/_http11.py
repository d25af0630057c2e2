"""One HTTP/1.1 exchange over an open trio stream, with h11.

dms is the client of two small HTTP services: firecracker's API socket and the
targets of http health probes. Both send one request per connection and read the
response to its end; the stream's opening, the headers and any timeout stay with
the caller.
"""

from __future__ import annotations

import h11
import trio

_RECEIVE_CHUNK = 65536


async def exchange(
    stream: trio.abc.Stream,
    request: h11.Request,
    body: bytes = b"",
    *,
    max_body: int | None = None,
) -> tuple[int, bytes]:
    """Send `request` (with `body`, if any) and read the response: (status, body).

    With `max_body`, only the body's first `max_body` bytes are kept, though the rest is
    still read. A peer that closes before answering, or answers with something that is
    not HTTP/1.1, raises `h11.ProtocolError`.
    """
    connection = h11.Connection(h11.CLIENT)
    data = connection.send(request)
    if body:
        data += connection.send(h11.Data(data=body))
    await stream.send_all(data + connection.send(h11.EndOfMessage()))
    status, received = 0, bytearray()
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            connection.receive_data(bytes(await stream.receive_some(_RECEIVE_CHUNK)))
        elif isinstance(event, h11.Response):
            status = event.status_code
        elif isinstance(event, h11.Data):
            keep = len(event.data) if max_body is None else max_body - len(received)
            received += event.data[:keep]
        elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
            return status, bytes(received)
