"""Sealed frames: replayed, reordered, tampered and oversize frames end the link.

Links run over the in-process carrier under trio's MockClock (the `autojump_clock`
fixture): their deadlines are virtual, so a loaded machine cannot trip them."""

from __future__ import annotations

import nacl.signing
import pytest
import trio

from dms.net import FrameTooLarge, LinkBusy, LinkClosed, LinkSettings, Metrics
from dms.net._handshake import InitiatorHandshake, ResponderHandshake
from dms.net._link import DEFAULT_LINK_SETTINGS, SecureEndpoint
from dms.net._memory import carrier_pair
from dms.net._session import FrameReordered, FrameReplayed, FrameTampered, SecureSession


def session_pair() -> tuple[SecureSession, SecureSession]:
    dialer = InitiatorHandshake(nacl.signing.SigningKey.generate())
    listener = ResponderHandshake(nacl.signing.SigningKey.generate())
    finish, dialer_keys = dialer.receive_reply(listener.receive_hello(dialer.start()))
    return SecureSession(dialer_keys), SecureSession(listener.receive_finish(finish))


def test_sealed_frames_open_in_order_only_once():
    sender, receiver = session_pair()
    first, second = sender.seal(b"one"), sender.seal(b"two")
    assert receiver.open(first) == b"one"
    with pytest.raises(FrameReplayed):
        receiver.open(first)
    assert receiver.open(second) == b"two"


def test_frame_from_the_future_is_reordered():
    sender, receiver = session_pair()
    sender.seal(b"skipped")
    with pytest.raises(FrameReordered, match="counter 1 arrived before 0"):
        receiver.open(sender.seal(b"late"))


@pytest.mark.parametrize("position", [0, 7, 8, 23, 24, -1])
def test_any_flipped_bit_is_tampering_or_misordering(position):
    sender, receiver = session_pair()
    frame = bytearray(sender.seal(b"payload!"))
    frame[position] ^= 0x01
    with pytest.raises((FrameTampered, FrameReordered)):
        receiver.open(bytes(frame))


def test_frame_cannot_be_reflected_to_its_sender():
    sender, _ = session_pair()
    with pytest.raises(FrameTampered):
        sender.open(sender.seal(b"mirror"))


class TappedCarrier:
    """A carrier whose sent messages the test can read and inject again."""

    def __init__(self, inner):
        self.inner = inner
        self.sent: list[bytes] = []
        self.hold_next = False

    async def send_message(self, data: bytes) -> None:
        self.sent.append(data)
        if self.hold_next:
            self.hold_next = False
            return
        await self.inner.send_message(data)

    async def receive_message(self, limit: int) -> bytes:
        return await self.inner.receive_message(limit)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def open_tapped_links(nursery, settings=DEFAULT_LINK_SETTINGS):
    left, right = carrier_pair()
    tap = TappedCarrier(left)
    metrics = Metrics()
    dialer = SecureEndpoint(nacl.signing.SigningKey.generate(), settings, Metrics())
    listener = SecureEndpoint(nacl.signing.SigningKey.generate(), settings, metrics)
    accepted = []

    async def accept():
        accepted.append(await listener.accept(right))

    async with trio.open_nursery() as handshake:
        handshake.start_soon(accept)
        sending = await dialer.dial(tap, "memory://test", None)
    receiving = accepted[0]
    nursery.start_soon(sending.run_writer)
    nursery.start_soon(receiving.run_writer)
    return sending, receiving, tap, metrics


@pytest.mark.parametrize(
    ("attack", "counter"),
    [
        ("replay", "link.rejected_replayed"),
        ("reorder", "link.rejected_reordered"),
        ("tamper", "link.rejected_tampered"),
    ],
)
async def test_bad_frame_on_the_wire_closes_the_link(autojump_clock, attack, counter):
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            sending, receiving, tap, metrics = await open_tapped_links(nursery)
            await sending.send(b"first")
            assert await receiving.receive() == b"first"
            first = tap.sent[-1]
            if attack == "replay":
                await tap.inner.send_message(first)
            elif attack == "reorder":
                tap.hold_next = True  # "second" is held back on the wire
                await sending.send(b"second")
                await sending.send(b"third")
            else:
                frame = bytearray(first)
                frame[0:8] = (1).to_bytes(8, "big")
                frame[-1] ^= 0x80
                await tap.inner.send_message(bytes(frame))
            with pytest.raises(LinkClosed, match="rejected"):
                await receiving.receive()
            assert metrics[counter] == 1
            with pytest.raises(LinkClosed):
                await receiving.send(b"after")
            with pytest.raises(LinkClosed):
                await sending.receive()
            nursery.cancel_scope.cancel()


async def test_send_buffer_full_raises_link_busy_without_blocking(autojump_clock):
    settings = LinkSettings(send_buffer=4)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            sending, receiving, _, _ = await open_tapped_links(nursery, settings)
            # The receiver never reads: the memory window (1024) then the buffer (4) fill.
            with pytest.raises(LinkBusy, match=sending.remote_peer):
                for _ in range(2000):
                    await sending.send(b"x")
            nursery.cancel_scope.cancel()


async def test_send_buffer_past_its_bytes_raises_link_busy_and_drains_back(autojump_clock):
    """The buffer was bounded in frames only: 256 frames of 370 KB (or 4 MiB) queued for
    one slow peer. Now a frame past the bytes bound is refused, whatever the count."""
    settings = LinkSettings(send_buffer=1000, send_buffer_bytes=10_000, max_frame=4000)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            sending, receiving, _, _ = await open_tapped_links(nursery, settings)
            # No checkpoint in between: the writer takes nothing out meanwhile.
            for _ in range(3):
                sending.send_nowait(bytes(3000))
            with pytest.raises(LinkBusy, match="3 frames, 9000 bytes waiting"):
                sending.send_nowait(bytes(3000))
            assert sending._metrics["link.dropped_busy"] == 1
            assert [len(await receiving.receive()) for _ in range(3)] == [3000] * 3
            sending.send_nowait(bytes(4000))  # drained: room again
            assert len(await receiving.receive()) == 4000
            nursery.cancel_scope.cancel()


def test_a_send_buffer_that_cannot_hold_a_largest_frame_is_refused():
    with pytest.raises(ValueError, match="send_buffer_bytes .1000. must hold a largest frame"):
        LinkSettings(send_buffer_bytes=1000, max_frame=2000)


async def test_oversize_frame_is_refused_on_send(autojump_clock):
    settings = LinkSettings(max_frame=1024)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            sending, _, _, _ = await open_tapped_links(nursery, settings)
            with pytest.raises(FrameTooLarge, match="1025 bytes, the limit is 1024"):
                await sending.send(bytes(1025))
            nursery.cancel_scope.cancel()


async def test_closing_one_side_ends_the_other_after_buffered_frames(autojump_clock):
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            sending, receiving, _, _ = await open_tapped_links(nursery)
            for n in range(3):
                await sending.send(bytes([n]))
            await sending.aclose()
            assert [await receiving.receive() for _ in range(3)] == [b"\x00", b"\x01", b"\x02"]
            with pytest.raises(LinkClosed, match="remote"):
                await receiving.receive()
            nursery.cancel_scope.cancel()


def test_a_sealed_frame_is_the_counter_then_the_secretbox_of_spec_transport() -> None:
    import os

    import nacl.bindings

    from dms.net._handshake import SessionKeys

    key = os.urandom(32)
    session = SecureSession(SessionKeys(key, key, "peer", None, b""))
    for counter, payload in enumerate([b"", b"one", os.urandom(70_000)]):
        header = counter.to_bytes(8, "big")
        sealed = session.seal(payload)
        assert sealed == header + nacl.bindings.crypto_secretbox(payload, bytes(16) + header, key)
        assert session.open(sealed) == payload
