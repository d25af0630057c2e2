"""The handshake state machine, without I/O, and through both transports."""

from __future__ import annotations

import attrs
import nacl.public
import nacl.signing
import pytest
import trio

from dms.net import (
    HandshakeFailed,
    HandshakeTimeout,
    Link,
    LinkSettings,
    MemoryNetwork,
    PeerMismatch,
    WebsocketTransport,
)
from dms.net._handshake import InitiatorHandshake, ResponderHandshake
from ucan.did import did_from_public_key


def did(key: nacl.signing.SigningKey) -> str:
    return did_from_public_key(bytes(key.verify_key))


@pytest.fixture
def keys() -> tuple[nacl.signing.SigningKey, nacl.signing.SigningKey]:
    return nacl.signing.SigningKey(b"\x01" * 32), nacl.signing.SigningKey(b"\x02" * 32)


def test_handshake_proves_both_identities_and_derives_mirrored_keys(keys):
    alice, bob = keys
    dialer = InitiatorHandshake(alice, "ws://a:1", expect_peer=did(bob))
    listener = ResponderHandshake(bob, "ws://b:2")
    reply = listener.receive_hello(dialer.start())
    finish, dialer_keys = dialer.receive_reply(reply)
    listener_keys = listener.receive_finish(finish)
    assert dialer_keys.remote_peer == did(bob)
    assert listener_keys.remote_peer == did(alice)
    assert dialer_keys.remote_address == "ws://b:2"
    assert listener_keys.remote_address == "ws://a:1"
    assert dialer_keys.send_key == listener_keys.receive_key
    assert dialer_keys.receive_key == listener_keys.send_key
    assert dialer_keys.send_key != dialer_keys.receive_key
    assert dialer_keys.transcript_hash == listener_keys.transcript_hash


def test_handshake_without_listen_address_announces_none(keys):
    alice, bob = keys
    dialer, listener = InitiatorHandshake(alice), ResponderHandshake(bob)
    finish, dialer_keys = dialer.receive_reply(listener.receive_hello(dialer.start()))
    assert listener.receive_finish(finish).remote_address is None
    assert dialer_keys.remote_address is None


def test_wrong_expected_peer_raises_peer_mismatch_naming_both(keys):
    alice, bob = keys
    stranger = did(nacl.signing.SigningKey.generate())
    dialer = InitiatorHandshake(alice, expect_peer=stranger, dialed_address="ws://b:2")
    listener = ResponderHandshake(bob)
    with pytest.raises(PeerMismatch) as caught:
        dialer.receive_reply(listener.receive_hello(dialer.start()))
    assert stranger in str(caught.value) and did(bob) in str(caught.value)
    assert "ws://b:2" in str(caught.value)


def test_reply_signed_by_another_key_is_rejected(keys):
    alice, bob = keys
    dialer, listener = InitiatorHandshake(alice), ResponderHandshake(bob)
    reply = bytearray(listener.receive_hello(dialer.start()))
    reply[-1] ^= 1
    with pytest.raises(HandshakeFailed, match="signature is invalid"):
        dialer.receive_reply(bytes(reply))


def test_reply_with_swapped_identity_is_rejected(keys):
    """A man in the middle cannot put his own ephemeral key under the victim's identity."""
    alice, bob = keys
    dialer, listener = InitiatorHandshake(alice), ResponderHandshake(bob)
    reply = bytearray(listener.receive_hello(dialer.start()))
    reply[1:33] = bytes(nacl.public.PrivateKey.generate().public_key)
    with pytest.raises(HandshakeFailed):
        dialer.receive_reply(bytes(reply))


def test_finish_from_reflected_responder_signature_is_rejected(keys):
    alice, bob = keys
    dialer, listener = InitiatorHandshake(alice), ResponderHandshake(bob)
    reply = listener.receive_hello(dialer.start())
    with pytest.raises(HandshakeFailed):
        listener.receive_finish(b"\x03" + reply[-64:])


def test_low_order_ephemeral_key_is_rejected(keys):
    alice, bob = keys
    dialer, listener = InitiatorHandshake(alice), ResponderHandshake(bob)
    hello = bytearray(dialer.start())
    hello[1:33] = bytes(32)  # the identity point: shared secret would be all zeros
    reply = listener.receive_hello(bytes(hello))
    with pytest.raises(HandshakeFailed):
        listener.receive_finish(b"\x03" + bytes(64))
    assert reply


def test_steps_out_of_order_are_refused(keys):
    alice, bob = keys
    dialer = InitiatorHandshake(alice)
    with pytest.raises(HandshakeFailed, match="receive_reply"):
        dialer.receive_reply(b"\x02")
    listener = ResponderHandshake(bob)
    with pytest.raises(HandshakeFailed, match="receive_finish"):
        listener.receive_finish(b"\x03" + bytes(64))


@pytest.mark.parametrize("message", [b"", b"\x02" + bytes(10), b"\x01" + bytes(64) + b"\xff\xff"])
def test_malformed_hello_is_rejected(keys, message):
    with pytest.raises(HandshakeFailed, match="malformed"):
        ResponderHandshake(keys[1]).receive_hello(message)


async def _echo(link: Link) -> None:
    while True:
        await link.send(await link.receive())


async def _connect_checks_the_expected_peer(dialer, listener, address, bob) -> None:
    stranger = did(nacl.signing.SigningKey.generate())
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery, dialer:
            bound = await nursery.start(listener.listen, address, _echo)
            with pytest.raises(PeerMismatch):
                await dialer.connect(bound, expect_peer=stranger)
            link = await dialer.connect(bound, expect_peer=did(bob))
            assert link.remote_peer == did(bob)
            assert link.remote_address == bound
            await link.send(b"ping")
            assert await link.receive() == b"ping"
            await link.aclose()
            nursery.cancel_scope.cancel()
    assert dialer.metrics["link.handshakes_failed"] == 1
    assert dialer.metrics["link.handshakes_ok"] == 1


async def test_memory_connect_with_wrong_expected_peer_fails(keys, autojump_clock):
    alice, bob = keys
    network = MemoryNetwork()
    await _connect_checks_the_expected_peer(
        network.transport(alice), network.transport(bob), "memory://", bob
    )


async def test_websocket_connect_with_wrong_expected_peer_fails(keys):
    alice, bob = keys
    await _connect_checks_the_expected_peer(
        WebsocketTransport(alice), WebsocketTransport(bob), "ws://127.0.0.1:0", bob
    )


async def test_handshake_timeout_names_the_address():
    """A websocket server that never answers the handshake."""

    async def silent(request):
        ws = await request.accept()
        await trio.sleep_forever()
        del ws

    from trio_websocket import serve_websocket

    settings = LinkSettings(handshake_timeout=0.3)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(serve_websocket, silent, "127.0.0.1", 0, None)
            address = f"ws://127.0.0.1:{server.port}"
            async with WebsocketTransport(nacl.signing.SigningKey.generate(), settings) as t:
                with pytest.raises(HandshakeTimeout, match=address):
                    await t.connect(address)
            nursery.cancel_scope.cancel()


LOW_ORDER_POINTS = [
    bytes(32),  # zero
    (1).to_bytes(32, "little"),  # u = 1
    bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),  # order 8
]


@pytest.mark.parametrize("point", LOW_ORDER_POINTS, ids=["zero", "one", "order8"])
def test_a_dialer_that_signs_a_low_order_ephemeral_key_fails_the_handshake(keys, point):
    alice, bob = keys
    dialer, listener = InitiatorHandshake(alice), ResponderHandshake(bob)
    dialer._greeting = attrs.evolve(dialer._greeting, ephemeral=point)  # a hostile dialer
    finish, _ = dialer.receive_reply(listener.receive_hello(dialer.start()))
    with pytest.raises(HandshakeFailed, match="low-order"):
        listener.receive_finish(finish)  # its signature is good: the point is what is bad


@pytest.mark.parametrize("point", LOW_ORDER_POINTS, ids=["zero", "one", "order8"])
def test_a_listener_that_signs_a_low_order_ephemeral_key_fails_the_handshake(keys, point):
    alice, bob = keys
    dialer, listener = InitiatorHandshake(alice), ResponderHandshake(bob)
    listener._greeting = attrs.evolve(listener._greeting, ephemeral=point)  # a hostile listener
    with pytest.raises(HandshakeFailed, match="low-order"):
        dialer.receive_reply(listener.receive_hello(dialer.start()))
