"""A link's send buffer: bounds in frames and bytes, the relayed share, own frames first."""

from __future__ import annotations

import trio

from dms.net._outbox import Outbox


async def taken(outbox: Outbox) -> list[bytes]:
    frames = []
    while len(outbox):
        frame = await outbox.take()
        assert frame is not None
        frames.append(frame)
    return frames


async def test_the_nodes_own_frames_go_out_before_relayed_ones_each_in_order():
    outbox = Outbox(frames=10, total_bytes=1000, relay_share=0.5)
    for frame, relayed in [(b"r1", True), (b"o1", False), (b"r2", True), (b"o2", False)]:
        assert outbox.put(frame, relayed=relayed)
    assert await taken(outbox) == [b"o1", b"o2", b"r1", b"r2"]
    assert outbox.bytes == 0


def test_relayed_frames_fill_their_share_only_and_own_frames_the_rest():
    outbox = Outbox(frames=4, total_bytes=100, relay_share=0.5)
    assert outbox.put(b"r", relayed=True) and outbox.put(b"r", relayed=True)
    assert not outbox.put(b"r", relayed=True)  # two frames: half of four
    assert outbox.put(b"o") and outbox.put(b"o")
    assert not outbox.put(b"o")  # the whole buffer
    by_bytes = Outbox(frames=100, total_bytes=100, relay_share=0.5)
    assert by_bytes.put(bytes(50), relayed=True)
    assert not by_bytes.put(bytes(1), relayed=True)  # half of the bytes
    assert by_bytes.put(bytes(50))
    assert not by_bytes.put(bytes(1))


async def test_a_closed_outbox_gives_what_it_holds_then_the_end():
    outbox = Outbox(frames=4, total_bytes=100, relay_share=0.5)
    outbox.put(b"last")
    outbox.close()
    assert not outbox.put(b"late")
    assert await outbox.take() == b"last"
    assert await outbox.take() is None


async def test_the_writer_waits_for_a_frame_and_wakes_on_one():
    outbox = Outbox(frames=4, total_bytes=100, relay_share=0.5)
    got: list[bytes | None] = []

    async def writer() -> None:
        got.append(await outbox.take())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(writer)
        await trio.testing.wait_all_tasks_blocked()
        assert got == []
        outbox.put(b"x", relayed=True)
    assert got == [b"x"]
