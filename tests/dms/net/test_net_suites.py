"""Session cipher suites: both seal and check frames alike, the handshake picks AEGIS-256
iff both sides offer it, and a man in the middle cannot strip the offer unnoticed."""

from __future__ import annotations

import os
import struct

import nacl.bindings
import nacl.signing
import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

import dms.net._suites as suites_module
from dms.net import Link, TcpTransport, WebsocketTransport
from dms.net._errors import HandshakeFailed
from dms.net._handshake import InitiatorHandshake, ResponderHandshake, SessionKeys
from dms.net._session import (
    COUNTER_BYTES,
    FRAME_OVERHEAD,
    TAG_BYTES,
    FrameReordered,
    FrameReplayed,
    FrameTampered,
    SecureSession,
)
from dms.net._suites import (
    AEGIS256,
    MAX_OFFERED,
    XSALSA20_POLY1305,
    choose,
    encode_offer,
    parse_offer,
    supported_suites,
)

SUITES = (XSALSA20_POLY1305, AEGIS256)
BOTH = (AEGIS256, XSALSA20_POLY1305)
ALICE = nacl.signing.SigningKey(b"\x0a" * 32)
BOB = nacl.signing.SigningKey(b"\x0b" * 32)


def pair(suite: str) -> tuple[SecureSession, SecureSession]:
    key = os.urandom(32)
    keys = SessionKeys(key, key, "did:key:test", None, b"", suite=suite)
    return SecureSession(keys), SecureSession(keys)


def handshake(
    dialer: tuple[str, ...] | None, listener: tuple[str, ...] | None
) -> tuple[SessionKeys, SessionKeys]:
    initiator = InitiatorHandshake(ALICE, "tcp://127.0.0.1:1", suites=dialer)
    responder = ResponderHandshake(BOB, "tcp://127.0.0.1:2", suites=listener)
    finish, dialer_keys = initiator.receive_reply(responder.receive_hello(initiator.start()))
    return dialer_keys, responder.receive_finish(finish)


@pytest.mark.parametrize("suite", SUITES)
def test_each_suite_round_trips_frames_in_order(suite):
    sender, receiver = pair(suite)
    for payload in (b"", b"one", bytes(range(256)) * 300):
        frame = sender.seal(payload)
        assert len(frame) == len(payload) + COUNTER_BYTES + TAG_BYTES[suite]
        assert receiver.open(frame) == payload


@pytest.mark.parametrize("suite", SUITES)
def test_each_suite_rejects_a_replayed_frame(suite):
    sender, receiver = pair(suite)
    frame = sender.seal(b"once")
    receiver.open(frame)
    with pytest.raises(FrameReplayed, match="counter 0 already seen"):
        receiver.open(frame)


@pytest.mark.parametrize("suite", SUITES)
def test_each_suite_rejects_a_frame_that_skips_ahead(suite):
    sender, receiver = pair(suite)
    sender.seal(b"dropped")
    with pytest.raises(FrameReordered, match="counter 1 arrived before 0"):
        receiver.open(sender.seal(b"second"))
    assert receiver.open(pair_frame_zero(sender, b"again")) == b"again"


def pair_frame_zero(sender: SecureSession, payload: bytes) -> bytes:
    """A frame 0 under the sender's key, as if sent again: the rejected frame left the
    receiver where it was, still expecting 0."""
    again = SecureSession(SessionKeys(sender._send_key, sender._send_key, "", None, b"",
                                       suite=sender.suite))
    return again.seal(payload)


@pytest.mark.parametrize("suite", SUITES)
@pytest.mark.parametrize("where", ["first body byte", "middle", "last byte"])
def test_each_suite_rejects_a_changed_byte_anywhere(suite, where):
    sender, receiver = pair(suite)
    frame = sender.seal(b"payload bytes")
    changed = bytearray(frame)
    changed[{"first body byte": COUNTER_BYTES, "middle": len(frame) // 2, "last byte": -1}[where]] ^= 1
    with pytest.raises(FrameTampered, match="frame 0 failed authentication"):
        receiver.open(bytes(changed))
    assert receiver.open(frame) == b"payload bytes"  # the rejection changed nothing


@pytest.mark.parametrize("suite", SUITES)
def test_each_suite_rejects_a_changed_counter(suite):
    sender, receiver = pair(suite)
    receiver.open(sender.seal(b"zero"))
    frame = bytearray(sender.seal(b"one"))
    frame[COUNTER_BYTES - 1] = 2  # counter 1 relabelled 2: reordered before the tag is checked
    with pytest.raises(FrameReordered):
        receiver.open(bytes(frame))
    frame[COUNTER_BYTES - 1] = 1
    assert receiver.open(bytes(frame)) == b"one"


@pytest.mark.parametrize("suite", SUITES)
def test_a_frame_sealed_under_one_suite_does_not_open_under_the_other(suite):
    key = os.urandom(32)
    other = AEGIS256 if suite == XSALSA20_POLY1305 else XSALSA20_POLY1305
    sender = SecureSession(SessionKeys(key, key, "", None, b"", suite=suite))
    receiver = SecureSession(SessionKeys(key, key, "", None, b"", suite=other))
    with pytest.raises(FrameTampered):
        receiver.open(sender.seal(b"confused"))


@pytest.mark.parametrize("suite", SUITES)
def test_each_suite_rejects_truncated_frames(suite):
    sender, receiver = pair(suite)
    frame = sender.seal(b"whole")
    with pytest.raises(FrameTampered, match="failed authentication"):
        receiver.open(frame[:-1])
    short = COUNTER_BYTES + TAG_BYTES[suite] - 1
    with pytest.raises(FrameTampered, match=f"frame of {short} bytes is shorter"):
        receiver.open(frame[:short])
    assert receiver.open(frame) == b"whole"  # the rejections changed nothing


def test_a_session_refuses_an_unknown_suite_or_a_short_key_naming_it():
    with pytest.raises(ValueError, match="suite: unknown session cipher 'rot13'"):
        SecureSession(SessionKeys(bytes(32), bytes(32), "", None, b"", suite="rot13"))
    with pytest.raises(ValueError, match="keys: session keys must be 32 bytes each"):
        SecureSession(SessionKeys(bytes(32), bytes(31), "", None, b"", suite=AEGIS256))


@pytest.mark.parametrize("suite", SUITES)
def test_frame_bytes_follow_the_spec_layout(suite):
    key = bytes(range(32))
    session = SecureSession(SessionKeys(key, key, "", None, b"", suite=suite))
    session.seal(b"first")
    frame = session.seal(b"payload")
    header = struct.pack(">Q", 1)
    if suite == AEGIS256:  # ciphertext then 32-byte tag; nonce 24 zero bytes + counter
        body = nacl.bindings.crypto_aead_aegis256_encrypt(b"payload", None, bytes(24) + header, key)
    else:  # crypto_secretbox without its zero padding: tag first; nonce 16 zero bytes + counter
        body = nacl.bindings.crypto_secretbox(b"payload", bytes(16) + header, key)
    assert frame == header + body
    assert FRAME_OVERHEAD == COUNTER_BYTES + 32  # what carriers allow for: the larger tag


@settings(max_examples=60, deadline=None)
@given(suite=st.sampled_from(SUITES), payloads=st.lists(st.binary(max_size=2048), max_size=6))
def test_seal_then_open_returns_any_payloads(suite, payloads):
    sender, receiver = pair(suite)
    assert [receiver.open(sender.seal(payload)) for payload in payloads] == payloads


@pytest.mark.parametrize(
    ("dialer", "listener", "chosen"),
    [
        (BOTH, BOTH, AEGIS256),
        (BOTH, (XSALSA20_POLY1305,), XSALSA20_POLY1305),
        ((XSALSA20_POLY1305,), BOTH, XSALSA20_POLY1305),
        ((XSALSA20_POLY1305,), (XSALSA20_POLY1305,), XSALSA20_POLY1305),
        ((AEGIS256,), (AEGIS256,), AEGIS256),  # the mandatory suite is implied
        (("chacha-future", AEGIS256), (AEGIS256, "other"), AEGIS256),  # unknown ignored
        (("chacha-future",), BOTH, XSALSA20_POLY1305),
    ],
)
def test_negotiation_picks_aegis256_iff_both_offer_it(dialer, listener, chosen):
    dialer_keys, listener_keys = handshake(dialer, listener)
    assert dialer_keys.suite == listener_keys.suite == chosen
    assert dialer_keys.send_key == listener_keys.receive_key
    sender, receiver = SecureSession(dialer_keys), SecureSession(listener_keys)
    assert receiver.open(sender.seal(b"agreed")) == b"agreed"


@pytest.mark.parametrize("side", ["dialer", "listener"])
def test_a_side_without_hardware_aes_never_gets_aegis256(monkeypatch, side):
    real = suites_module.hardware_aes
    calls = iter([side != "dialer", side != "listener"])  # dialer builds its offer first
    monkeypatch.setattr(suites_module, "hardware_aes", lambda: next(calls) and real())
    dialer_keys, listener_keys = handshake(None, None)
    assert dialer_keys.suite == listener_keys.suite == XSALSA20_POLY1305


def test_a_node_offers_aegis256_only_with_hardware_aes(monkeypatch):
    monkeypatch.setattr(suites_module, "hardware_aes", lambda: False)
    assert supported_suites() == (XSALSA20_POLY1305,)
    monkeypatch.setattr(suites_module, "hardware_aes", lambda: True)
    assert supported_suites() == BOTH
    monkeypatch.delattr(nacl.bindings, "crypto_aead_aegis256_encrypt")
    assert supported_suites() == (XSALSA20_POLY1305,)  # a libsodium without AEGIS


def test_offering_only_the_mandatory_suite_sends_todays_bytes():
    today = InitiatorHandshake(ALICE, "tcp://a:1", suites=(XSALSA20_POLY1305,)).start()
    offering = InitiatorHandshake(ALICE, "tcp://a:1", suites=BOTH).start()
    assert len(today) == 1 + 32 + 32 + 2 + len("tcp://a:1")
    assert offering[len(today) :] == encode_offer(BOTH)
    assert encode_offer(BOTH) == b"\x02\x08aegis256\x10xsalsa20poly1305"


def _strip_offer(message: bytes, trailer: int) -> bytes:
    """What a man in the middle sends on: the message without its suite offer."""
    body = message[: len(message) - trailer]
    (length,) = struct.unpack_from(">H", body, 65)
    return body[: 67 + length] + message[len(message) - trailer :]


def test_stripping_the_dialers_offer_fails_the_handshake():
    initiator = InitiatorHandshake(ALICE, "tcp://a:1", suites=BOTH)
    responder = ResponderHandshake(BOB, "tcp://b:2", suites=BOTH)
    reply = responder.receive_hello(_strip_offer(initiator.start(), 0))
    with pytest.raises(HandshakeFailed, match="responder .* transcript signature is invalid"):
        initiator.receive_reply(reply)


def test_stripping_the_listeners_offer_fails_the_handshake():
    initiator = InitiatorHandshake(ALICE, "tcp://a:1", suites=BOTH)
    responder = ResponderHandshake(BOB, "tcp://b:2", suites=BOTH)
    reply = responder.receive_hello(initiator.start())
    with pytest.raises(HandshakeFailed, match="responder .* transcript signature is invalid"):
        initiator.receive_reply(_strip_offer(reply, 64))


def test_a_dialer_that_saw_a_stripped_reply_cannot_finish_for_it():
    # the stripped REPLY re-signed is impossible without BOB's key; a FINISH over the
    # dialer's view of the transcript does not verify at the listener either
    initiator = InitiatorHandshake(ALICE, "tcp://a:1", suites=BOTH)
    responder = ResponderHandshake(BOB, "tcp://b:2", suites=BOTH)
    hello = initiator.start()
    genuine = ResponderHandshake(BOB, "tcp://b:2", suites=(XSALSA20_POLY1305,))
    finish, _ = initiator.receive_reply(genuine.receive_hello(hello))
    responder.receive_hello(hello)
    with pytest.raises(HandshakeFailed, match="dialer .* transcript signature is invalid"):
        responder.receive_finish(finish)


def test_keys_are_separate_per_suite():
    import dms.net._handshake as handshake_module

    shared, transcript = bytes(range(32)), bytes(32)
    aegis = handshake_module._session_key(shared, b"i2r", transcript, AEGIS256)
    xsalsa = handshake_module._session_key(shared, b"i2r", transcript, XSALSA20_POLY1305)
    assert aegis != xsalsa


@pytest.mark.parametrize(
    ("offer", "problem"),
    [
        (b"\x00", "suite offer of 0 names"),
        (bytes([MAX_OFFERED + 1]) + b"\x01a" * (MAX_OFFERED + 1), "suite offer of 17 names"),
        (b"\x02\x08aegis256", "suite offer ends early"),
        (b"\x01\x00", "suite name of 0 bytes"),
        (b"\x01\x21" + b"a" * 33, "suite name of 33 bytes"),
        (b"\x01\x08aegis25", "suite name of 8 bytes"),
        (b"\x01\x08aegis256zz", "2 bytes after the suite offer"),
    ],
)
def test_a_malformed_offer_fails_the_handshake_naming_the_problem(offer, problem):
    hello = InitiatorHandshake(ALICE, "", suites=(XSALSA20_POLY1305,)).start()
    responder = ResponderHandshake(BOB, "", suites=BOTH)
    with pytest.raises(HandshakeFailed, match=f"malformed HELLO: {problem}"):
        responder.receive_hello(hello + offer)
    dialer = InitiatorHandshake(ALICE, "", suites=BOTH)
    reply = ResponderHandshake(BOB, "", suites=(XSALSA20_POLY1305,)).receive_hello(dialer.start())
    with pytest.raises(HandshakeFailed, match=f"malformed REPLY: {problem}"):
        dialer.receive_reply(reply[:-64] + offer + reply[-64:])


def test_an_offer_parses_to_the_known_names_in_order():
    assert parse_offer(b"", "HELLO") == (XSALSA20_POLY1305,)
    assert parse_offer(encode_offer(("x", AEGIS256, AEGIS256)), "HELLO") == (AEGIS256,)
    assert parse_offer(encode_offer(("x", "y")), "HELLO") == (XSALSA20_POLY1305,)
    assert choose(BOTH, (XSALSA20_POLY1305,)) == XSALSA20_POLY1305
    with pytest.raises(ValueError, match="suites: at most 16 names"):
        encode_offer([f"s{n}" for n in range(MAX_OFFERED + 1)])


@pytest.mark.parametrize("carrier", [TcpTransport, WebsocketTransport])
@pytest.mark.parametrize("aes", [True, False])
async def test_both_carriers_negotiate_and_carry_frames(monkeypatch, carrier, aes):
    monkeypatch.setattr(suites_module, "hardware_aes", lambda: aes)
    expected = AEGIS256 if aes else XSALSA20_POLY1305
    accepted: list[Link] = []

    async def echo(link: Link) -> None:
        accepted.append(link)
        while True:
            await link.send(await link.receive())

    scheme = "tcp" if carrier is TcpTransport else "ws"
    with trio.fail_after(10):
        async with carrier(ALICE) as client, carrier(BOB) as server, trio.open_nursery() as nursery:
            address = await nursery.start(server.listen, f"{scheme}://127.0.0.1:0", echo)
            link = await client.connect(address, expect_peer=server.peer_id)
            await link.send(b"x" * 70_000)
            assert await link.receive() == b"x" * 70_000
            assert link.suite == accepted[0].suite == expected
            await link.aclose()
            nursery.cancel_scope.cancel()
