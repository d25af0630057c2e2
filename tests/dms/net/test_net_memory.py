"""The in-process network: simulated latency, bandwidth and loss, deterministic under
trio's MockClock (the `autojump_clock` fixture)."""

from __future__ import annotations

import nacl.signing
import pytest
import trio
import trio.testing

import dms.net._handshake
from dms.net import BadAddress, ConnectFailed, Link, LinkConditions, MemoryNetwork
from dms.net._session import COUNTER_BYTES, TAG_BYTES
from dms.net._suites import XSALSA20_POLY1305
from ucan.did import did_from_public_key

ALICE = nacl.signing.SigningKey(b"\x0a" * 32)
BOB = nacl.signing.SigningKey(b"\x0b" * 32)
CAROL = nacl.signing.SigningKey(b"\x0c" * 32)


def did(key):
    return did_from_public_key(bytes(key.verify_key))


async def record_arrivals(network: MemoryNetwork, frames: list[bytes], quiet_for: float = 30.0):
    """Send `frames` from ALICE to BOB; return [(arrival time - start, frame)] at BOB."""
    arrivals: list[tuple[float, bytes]] = []
    done = trio.Event()

    async def collect(link: Link) -> None:
        while True:
            with trio.move_on_after(quiet_for):
                frame = await link.receive()
                arrivals.append((trio.current_time(), frame))
                continue
            done.set()
            return

    with trio.fail_after(1000):
        async with trio.open_nursery() as nursery, network.transport(ALICE) as alice:
            address = await nursery.start(network.transport(BOB).listen, "memory://bob", collect)
            link = await alice.connect(address)
            start = trio.current_time()
            for frame in frames:
                await link.send(frame)
            await done.wait()
            nursery.cancel_scope.cancel()
    return [(round(t - start, 9), f) for t, f in arrivals]


async def test_latency_delays_every_frame_by_exactly_the_latency(autojump_clock):
    network = MemoryNetwork(default=LinkConditions(latency=0.25))
    arrivals = await record_arrivals(network, [b"a", b"b"])
    assert arrivals == [(0.25, b"a"), (0.25, b"b")]


async def test_a_frame_already_due_is_received_without_a_timer(autojump_clock, monkeypatch):
    # A timer per frame that had arrived cost every in-memory figure ~10 %.
    import dms.net._memory as memory

    timers = []
    real = memory.trio.sleep_until

    async def counted(deadline: float) -> None:
        timers.append(deadline)
        await real(deadline)

    monkeypatch.setattr(memory.trio, "sleep_until", counted)
    arrivals = await record_arrivals(MemoryNetwork(), [b"a", b"b", b"c"], quiet_for=1.0)
    assert [f for _, f in arrivals] == [b"a", b"b", b"c"] and timers == []


async def test_without_a_bandwidth_limit_frames_go_from_the_senders_task_and_in_order(
        autojump_clock):
    """The carrier is buffered, as TCP is: a frame is handed over in `send_nowait`
    (no writer task woken); past a full receive window the rest wait in the send
    buffer and the writer delivers them, in order, as the receiver reads."""
    network = MemoryNetwork(window=4)
    received: list[bytes] = []

    async def collect(link: Link) -> None:
        await trio.sleep(1)  # not reading yet: the window fills
        while len(received) < 20:
            received.append(await link.receive())

    with trio.fail_after(100):
        async with trio.open_nursery() as nursery, network.transport(ALICE) as alice:
            address = await nursery.start(network.transport(BOB).listen, "memory://bob", collect)
            link = await alice.connect(address)
            for n in range(20):  # no checkpoint in between
                link.send_nowait(b"%d" % n)
            # Four fill the window, the fifth waits in the carrier's own buffer.
            assert alice.metrics["link.frames_direct"] == 5
            while len(received) < 20:
                await trio.sleep(0.1)
            nursery.cancel_scope.cancel()
    assert received == [b"%d" % n for n in range(20)]


async def test_bandwidth_serializes_frames_on_the_wire(autojump_clock, monkeypatch):
    # One suite on both sides, whatever the CPU: the frame's size is the suite's.
    monkeypatch.setattr(dms.net._handshake, "supported_suites", lambda: (XSALSA20_POLY1305,))
    payload = bytes(1000 - COUNTER_BYTES - TAG_BYTES[XSALSA20_POLY1305])  # 1000 sealed
    network = MemoryNetwork(default=LinkConditions(latency=0.1, bandwidth=10_000.0))
    arrivals = await record_arrivals(network, [payload] * 5)
    assert [t for t, _ in arrivals] == [0.2, 0.3, 0.4, 0.5, 0.6]


async def test_loss_is_deterministic_for_a_seed(autojump_clock):
    frames = [n.to_bytes(2, "big") for n in range(200)]
    runs = []
    for seed in (7, 7, 8):
        network = MemoryNetwork(default=LinkConditions(loss=0.25), seed=seed)
        runs.append([f for _, f in await record_arrivals(network, frames)])
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]
    assert 120 < len(runs[0]) < 180
    assert runs[0] == sorted(runs[0])  # what arrives is still in order


async def test_conditions_apply_to_one_pair_in_both_directions(autojump_clock):
    network = MemoryNetwork()
    network.set_conditions(did(BOB), did(ALICE), LinkConditions(latency=1.5))
    assert network.conditions_between(did(ALICE), did(BOB)).latency == 1.5
    assert network.conditions_between(did(ALICE), did(CAROL)) == LinkConditions()
    assert await record_arrivals(network, [b"x"]) == [(1.5, b"x")]


def test_conditions_reject_nonsense():
    with pytest.raises(ValueError, match="loss"):
        LinkConditions(loss=1.5)
    with pytest.raises(ValueError, match="latency"):
        LinkConditions(latency=-1)
    with pytest.raises(ValueError, match="bandwidth"):
        LinkConditions(bandwidth=0)


async def test_connect_to_unbound_address_names_it(autojump_clock):
    network = MemoryNetwork()
    async with network.transport(ALICE) as alice:
        with pytest.raises(ConnectFailed, match="memory://nobody"):
            await alice.connect("memory://nobody")
        with pytest.raises(BadAddress, match="ws://x:1"):
            await alice.connect("ws://x:1")


async def test_listening_twice_on_one_name_is_refused(autojump_clock):
    network = MemoryNetwork()

    async def ignore(link: Link) -> None:
        pass

    async with trio.open_nursery() as nursery:
        first = await nursery.start(network.transport(ALICE).listen, "memory://", ignore)
        second = await nursery.start(network.transport(BOB).listen, "memory://", ignore)
        assert first != second
        with pytest.raises(BadAddress, match="already in use"):
            await nursery.start(network.transport(CAROL).listen, first, ignore)
        nursery.cancel_scope.cancel()


async def test_a_link_handler_that_fails_closes_that_link_and_the_listener_goes_on(
        autojump_clock):
    network = MemoryNetwork()
    served: list[str] = []

    async def fragile(link: Link) -> None:
        frame = await link.receive()
        if frame == b"poison":
            raise RuntimeError("a bug that remote input reaches")
        served.append(link.remote_peer)

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery, network.transport(ALICE) as alice, \
                network.transport(CAROL) as carol:
            bob = network.transport(BOB)
            address = await nursery.start(bob.listen, "memory://bob", fragile)
            await (await alice.connect(address)).send(b"poison")
            await trio.testing.wait_all_tasks_blocked()
            await (await carol.connect(address)).send(b"fine")
            await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()
    assert served == [did(CAROL)]
