"""Half-open handshake slots per source: one host's flood of silent connections cannot
keep another host's dialer from completing its handshake."""

from __future__ import annotations

import contextlib

import nacl.signing
import pytest
import trio
import trio.testing
import trio_websocket
from hypothesis import given, settings
from hypothesis import strategies as st

from dms.net import Link, LinkConditions, LinkSettings, MemoryNetwork, NetError, WebsocketTransport
from dms.net._address import parse_node_address
from dms.net._handshake_slots import EvictionReason, HandshakeSlots
from dms.net._link import CarrierClosed
from dms.net._websocket import source_of

# -- the policy, sans-IO -------------------------------------------------------------------

operations = st.lists(
    st.one_of(
        st.tuples(st.just("admit"), st.sampled_from("abcdef")),
        st.tuples(st.just("release"), st.integers(min_value=0, max_value=200)),
    ),
    max_size=120,
)


@settings(max_examples=200)
@given(operations, st.integers(min_value=1, max_value=12), st.integers(min_value=1, max_value=6))
def test_a_newcomer_only_ever_evicts_its_own_source_or_from_the_largest_when_full(
        steps, capacity, per_source):
    slots = HandshakeSlots[int](capacity, per_source)
    held: dict[int, str] = {}  # the model: attempt -> source, oldest first
    for number, (operation, argument) in enumerate(steps):
        if operation == "release":
            slots.release(argument)
            held.pop(argument, None)
            continue
        source = argument
        counts = {s: list(held.values()).count(s) for s in set(held.values())}
        eviction = slots.admit(source, number)
        assert number in slots  # the newcomer always gets a slot
        if counts.get(source, 0) >= per_source:
            # at its own limit: its own oldest goes, nobody else's
            oldest_own = next(a for a, s in held.items() if s == source)
            assert eviction is not None and eviction.reason is EvictionReason.SAME_SOURCE
            assert (eviction.attempt, eviction.source) == (oldest_own, source)
        elif len(held) >= capacity:
            # table full: the oldest of a source holding the most slots goes
            assert eviction is not None and eviction.reason is EvictionReason.TABLE_FULL
            assert counts[eviction.source] == max(counts.values())
            assert eviction.attempt == next(a for a, s in held.items() if s == eviction.source)
        else:
            assert eviction is None
        if eviction is not None:
            del held[eviction.attempt]
        held[number] = source
        assert len(slots) == len(held) <= capacity
        assert all(slots.held_by(s) == list(held.values()).count(s) <= per_source
                   for s in "abcdef")


def test_a_full_table_of_equal_sources_evicts_the_globally_oldest():
    slots = HandshakeSlots[str](3, 2)
    for attempt, source in [("a1", "a"), ("b1", "b"), ("c1", "c")]:
        assert slots.admit(source, attempt) is None
    eviction = slots.admit("d", "d1")
    assert eviction is not None and (eviction.attempt, eviction.source) == ("a1", "a")


def test_slot_limits_below_one_are_refused_naming_the_limit():
    with pytest.raises(ValueError, match="per_source must be >= 1, got 0"):
        HandshakeSlots[int](4, 0)
    with pytest.raises(ValueError, match="handshakes_per_source"):
        LinkSettings(handshakes_per_source=0)


@pytest.mark.parametrize(("ip", "source"), [
    ("127.0.0.2", "127.0.0.2"),
    ("::ffff:10.1.2.3", "10.1.2.3"),
    ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
    ("2001:db8:1:2:bbbb::7", "2001:db8:1:2::/64"),
    ("fe80::1%eth0", "fe80::/64"),
])
def test_an_ipv6_host_counts_as_its_slash_64_and_a_mapped_ipv4_as_ipv4(ip, source):
    assert source_of(ip) == source


# -- the listener, on the memory transport ---------------------------------------------------


async def echo_once(link: Link) -> None:
    await link.send(await link.receive())


async def test_a_flood_of_half_open_connections_from_one_host_does_not_stop_another_host(
        autojump_clock):
    # Each handshake message takes 10 ms and the attacker opens a silent connection every
    # millisecond: without per-source slots, 16 of them push an honest attempt out of
    # the table before its FINISH arrives.
    network = MemoryNetwork(default=LinkConditions(latency=0.01))
    server = network.transport(nacl.signing.SigningKey.generate(),
                               LinkSettings(pending_handshakes=16, handshakes_per_source=4),
                               host="10.0.0.1")
    attempts, completed = 20, 0
    with trio.fail_after(60):
        async with server, trio.open_nursery() as nursery:
            address = await nursery.start(server.listen, "memory://server", echo_once)
            opened = 0

            async def flood() -> None:
                nonlocal opened
                while True:
                    network.open_carrier(address, host="10.6.6.6")  # and never a word
                    opened += 1
                    await trio.sleep(0.001)

            nursery.start_soon(flood)
            async with network.transport(nacl.signing.SigningKey.generate(),
                                          host="10.0.0.2") as honest:
                for _ in range(attempts):
                    with contextlib.suppress(NetError):
                        link = await honest.connect(address, expect_peer=server.peer_id)
                        await link.send(b"hello")
                        completed += await link.receive() == b"hello"
                        await link.aclose()
            nursery.cancel_scope.cancel()
    assert completed >= 0.95 * attempts
    assert server.metrics["link.handshakes_evicted_per_source"] > 500
    assert server.metrics["link.handshakes_evicted"] == 0  # never the honest host's slot
    assert opened > 500


async def test_a_host_at_its_limit_evicts_its_own_oldest_attempt(autojump_clock):
    network = MemoryNetwork()
    server = network.transport(nacl.signing.SigningKey.generate(),
                               LinkSettings(handshakes_per_source=2))
    async with server, trio.open_nursery() as nursery:
        address = await nursery.start(server.listen, "memory://server", echo_once)
        first, *_ = (network.open_carrier(address, host="h") for _ in range(3))
        other = network.open_carrier(address, host="elsewhere")
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(CarrierClosed):  # the oldest was closed by the listener
            await first.receive_message(4096)
        assert server.metrics["link.handshakes_evicted_per_source"] == 1
        assert server.metrics["link.handshakes_failed"] == 1
        await other.send_message(b"not a hello")  # the other host's attempt still stands
        with pytest.raises(CarrierClosed):
            await other.receive_message(4096)
        assert server.metrics["link.handshakes_failed"] == 2
        nursery.cancel_scope.cancel()


# -- the listener, on websockets over loopback ---------------------------------------------

ATTACKER_SOURCE = "127.0.0.2"  # the loopback interface answers all of 127/8


async def open_silent_websocket(nursery: trio.Nursery, host: str, port: int):
    """An upgraded websocket from ATTACKER_SOURCE that never says HELLO."""
    sock = trio.socket.socket()
    await sock.bind((ATTACKER_SOURCE, 0))
    await sock.connect((host, port))
    return await trio_websocket.wrap_client_stream(nursery, trio.SocketStream(sock), host, "/")


async def test_silent_websockets_from_one_address_do_not_stop_a_dialer_from_another():
    # A small table so that the flood can outpace an honest handshake; with per-source
    # slots the flood only ever evicts its own attempts.
    server = WebsocketTransport(nacl.signing.SigningKey.generate(),
                                LinkSettings(pending_handshakes=4))
    attempts, completed = 20, 0
    with trio.fail_after(60):
        async with server, trio.open_nursery() as nursery:
            address = await nursery.start(server.listen, "ws://127.0.0.1:0", echo_once)
            parsed = parse_node_address(address)
            host, port = parsed.host, parsed.port
            stop_flood = trio.Event()

            async def flood() -> None:
                async with trio.open_nursery() as connections:
                    while not stop_flood.is_set():
                        with contextlib.suppress(OSError, trio_websocket.HandshakeError,
                                                 trio.BrokenResourceError):
                            ws = await open_silent_websocket(connections, host, port)
                            connections.start_soon(hold_then_close, ws)
                    connections.cancel_scope.cancel()

            async def hold_then_close(ws) -> None:
                with contextlib.suppress(trio_websocket.ConnectionClosed):
                    await ws.get_message()  # until the listener closes it
                await ws.aclose()

            for _ in range(8):
                nursery.start_soon(flood)
            await trio.sleep(0.2)  # the flood is in full swing
            async with WebsocketTransport(nacl.signing.SigningKey.generate()) as honest:
                for _ in range(attempts):
                    with contextlib.suppress(NetError):
                        link = await honest.connect(address, expect_peer=server.peer_id)
                        await link.send(b"hello")
                        completed += await link.receive() == b"hello"
                        await link.aclose()
            stop_flood.set()
            nursery.cancel_scope.cancel()
    assert completed >= 0.95 * attempts
    assert server.metrics["link.handshakes_evicted"] + server.metrics[
        "link.handshakes_evicted_per_source"] > attempts
