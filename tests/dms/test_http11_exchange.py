"""`exchange`: one request out, the response's status and body back, over a stream."""

from __future__ import annotations

import h11
import pytest
import trio
import trio.testing

from dms._http11 import exchange


async def serve_one(
    stream: trio.abc.Stream, status: int, chunks: list[bytes], seen: list[h11.Event]
) -> None:
    """An h11 server answering one request with `chunks` as its body."""
    connection = h11.Connection(h11.SERVER)
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            connection.receive_data(bytes(await stream.receive_some()))
            continue
        seen.append(event)
        if isinstance(event, h11.EndOfMessage):
            break
    length = str(sum(len(chunk) for chunk in chunks))
    data = connection.send(h11.Response(status_code=status, headers=[("Content-Length", length)]))
    for chunk in chunks:
        data += connection.send(h11.Data(data=chunk))
    await stream.send_all(data + connection.send(h11.EndOfMessage()))


def put(path: str, length: int) -> h11.Request:
    headers = [("Host", "localhost"), ("Content-Length", str(length))]
    return h11.Request(method="PUT", target=path, headers=headers)


async def test_request_body_is_sent_and_response_body_returned() -> None:
    client, server = trio.testing.memory_stream_pair()
    seen: list[h11.Event] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve_one, server, 201, [b"made ", b"it"], seen)
        status, body = await exchange(client, put("/things", 5), b"thing")
    assert (status, body) == (201, b"made it")
    assert isinstance(seen[0], h11.Request) and seen[0].target == b"/things"
    assert [e.data for e in seen if isinstance(e, h11.Data)] == [b"thing"]


async def test_max_body_keeps_the_start_and_still_reads_to_the_end() -> None:
    client, server = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve_one, server, 200, [b"abc", b"defgh"], [])
        status, body = await exchange(client, put("/", 0), max_body=4)
    assert (status, body) == (200, b"abcd")


async def test_malformed_response_raises_protocol_error() -> None:
    client, server = trio.testing.memory_stream_pair()
    await server.send_all(b"not http at all\r\n\r\n")
    with pytest.raises(h11.ProtocolError):
        await exchange(client, put("/", 0))


async def test_peer_closing_before_answering_raises_protocol_error() -> None:
    client, server = trio.testing.memory_stream_pair()

    async def hang_up() -> None:
        await server.receive_some()
        await server.aclose()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(hang_up)
        with pytest.raises(h11.ProtocolError):
            await exchange(client, put("/", 0))
