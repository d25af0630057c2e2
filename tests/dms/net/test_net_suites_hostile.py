"""Hostile review of cipher-suite negotiation: a peer or a man in the middle that lies
about offers, replays greetings, reflects frames or sends frames past the limit."""

from __future__ import annotations

import functools
import os

import nacl._sodium
import nacl.bindings
import nacl.encoding
import nacl.hash
import nacl.public
import nacl.signing
import pytest
import trio

import dms.net._link as link_module
import dms.net._suites as suites_module
from dms.net import MAX_FRAME, Link, LinkClosed, LinkSettings, TcpTransport, WebsocketTransport
from dms.net._errors import HandshakeFailed
from dms.net._handshake import InitiatorHandshake, ResponderHandshake, SessionKeys
from dms.net._link import MAX_HANDSHAKE_MESSAGE
from dms.net._session import (
    _AEGIS_PAD,
    COUNTER_BYTES,
    FRAME_OVERHEAD,
    TAG_BYTES,
    FrameTampered,
    SecureSession,
)
from dms.net._suites import AEGIS256, XSALSA20_POLY1305, encode_offer, parse_offer

BOTH = (AEGIS256, XSALSA20_POLY1305)
OLD = (XSALSA20_POLY1305,)
ALICE = nacl.signing.SigningKey(b"\x0c" * 32)
BOB = nacl.signing.SigningKey(b"\x0d" * 32)
SUITES = (XSALSA20_POLY1305, AEGIS256)


def handshake(dialer: tuple[str, ...], listener: tuple[str, ...]) -> tuple[SessionKeys, SessionKeys]:
    initiator = InitiatorHandshake(ALICE, "", suites=dialer)
    responder = ResponderHandshake(BOB, "", suites=listener)
    finish, dialer_keys = initiator.receive_reply(responder.receive_hello(initiator.start()))
    return dialer_keys, responder.receive_finish(finish)


# --- offer parsing -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offer", "parsed"),
    [
        (b"\x01\x08aegis25\xe9", OLD),  # non-ASCII: an unknown name, dropped
        (b"\x01\x08AEGIS256", OLD),  # names are case-sensitive
        (b"\x02\x08aegis256\x08aegis256", (AEGIS256,)),  # duplicates count once
        (b"\x01\x03foo", OLD),  # unknown names only: the mandatory suite
        (b"\x01\x20" + b"\xff" * 32, OLD),  # 32 bytes of non-ASCII, the longest name
    ],
)
def test_odd_but_well_formed_offers_parse_to_known_names_only(offer, parsed):
    assert parse_offer(offer, "HELLO") == parsed


@pytest.mark.parametrize(
    ("offer", "problem"),
    [
        (b"\xff", "suite offer of 255 names"),
        (b"\x01", "suite offer ends early"),
        (b"\x01\xff" + b"a" * 255, "suite name of 255 bytes"),
        (b"\x01\x08aegis256\x00", "1 bytes after the suite offer"),
    ],
)
def test_more_malformed_offers_are_refused_naming_the_problem(offer, problem):
    with pytest.raises(HandshakeFailed, match=f"malformed HELLO: {problem}"):
        parse_offer(offer, "HELLO")


def test_a_hello_with_a_malformed_offer_leaves_the_responder_unusable_not_half_open():
    responder = ResponderHandshake(BOB, "", suites=BOTH)
    hello = InitiatorHandshake(ALICE, "", suites=OLD).start()
    with pytest.raises(HandshakeFailed):
        responder.receive_hello(hello + b"\x01")
    with pytest.raises(HandshakeFailed, match="state 'done'"):
        responder.receive_hello(hello)


# --- downgrade by a man in the middle ----------------------------------------------


def _rewrite(message: bytes, offer: bytes, trailer: int) -> bytes:
    """`message` (HELLO, or REPLY with its `trailer`-byte signature) with its offer
    replaced by `offer`; the address is empty in these tests."""
    body_end = len(message) - trailer
    head = 1 + 32 + 32 + 2
    return message[:head] + offer + message[body_end:]


@pytest.mark.parametrize(
    "offer",
    [
        encode_offer((XSALSA20_POLY1305, AEGIS256)),  # reordered
        encode_offer(("aegis257", XSALSA20_POLY1305)),  # replaced, same length
        encode_offer((AEGIS256,)),  # the mandatory suite stripped
        b"",  # stripped
    ],
)
def test_a_rewritten_dialer_offer_fails_the_handshake_at_the_dialer(offer):
    initiator = InitiatorHandshake(ALICE, "", suites=BOTH)
    responder = ResponderHandshake(BOB, "", suites=BOTH)
    hello = initiator.start()
    reply = responder.receive_hello(_rewrite(hello, offer, 0))
    with pytest.raises(HandshakeFailed, match="signature is invalid"):
        initiator.receive_reply(reply)


@pytest.mark.parametrize(
    "offer",
    [
        encode_offer((XSALSA20_POLY1305, AEGIS256)),
        encode_offer(("aegis257", XSALSA20_POLY1305)),
        b"",
    ],
)
def test_a_rewritten_listener_offer_fails_the_handshake_at_the_dialer(offer):
    initiator = InitiatorHandshake(ALICE, "", suites=BOTH)
    responder = ResponderHandshake(BOB, "", suites=BOTH)
    reply = responder.receive_hello(initiator.start())
    with pytest.raises(HandshakeFailed, match="signature is invalid"):
        initiator.receive_reply(_rewrite(reply, offer, 64))


def test_a_replayed_hello_with_other_offers_cannot_be_finished():
    """A HELLO recorded from an earlier session offering only the old suite, replayed
    to the listener: the recorded FINISH does not verify over the new transcript, and
    the attacker has neither the dialer's signing key nor its ephemeral key."""
    old = InitiatorHandshake(ALICE, "", suites=OLD)
    old_hello = old.start()
    old_finish, _ = old.receive_reply(ResponderHandshake(BOB, "", suites=BOTH).receive_hello(old_hello))
    replayed = ResponderHandshake(BOB, "", suites=BOTH)
    replayed.receive_hello(old_hello)
    with pytest.raises(HandshakeFailed, match="signature is invalid"):
        replayed.receive_finish(old_finish)


def test_a_peer_claiming_aegis256_without_hardware_aes_gets_it_only_if_we_offer_it(monkeypatch):
    """The remote's offer cannot be checked; our own offer is the only guard."""
    monkeypatch.setattr(suites_module, "hardware_aes", lambda: False)
    liar = InitiatorHandshake(ALICE, "", suites=BOTH)
    honest = ResponderHandshake(BOB, "")  # asks `supported_suites`: no AES, no AEGIS
    finish, dialer_keys = liar.receive_reply(honest.receive_hello(liar.start()))
    assert dialer_keys.suite == honest.receive_finish(finish).suite == XSALSA20_POLY1305


# --- key separation, cross-suite, reflection, overflow -----------------------------


def test_the_same_handshake_secrets_under_another_suite_give_other_keys():
    """Both ends with the same ephemeral keys; only the offers differ."""
    eph_i, eph_r = nacl.public.PrivateKey(b"\x01" * 32), nacl.public.PrivateKey(b"\x02" * 32)
    keys = {}
    for offers in (OLD, BOTH):
        initiator = InitiatorHandshake(ALICE, "", suites=offers, ephemeral=eph_i)
        responder = ResponderHandshake(BOB, "", suites=offers, ephemeral=eph_r)
        finish, dialer = initiator.receive_reply(responder.receive_hello(initiator.start()))
        keys[dialer.suite] = dialer
    old, new = keys[XSALSA20_POLY1305], keys[AEGIS256]
    assert {old.send_key, old.receive_key}.isdisjoint({new.send_key, new.receive_key})


def test_old_format_peers_on_both_sides_derive_the_original_keys():
    eph_i, eph_r = nacl.public.PrivateKey(b"\x03" * 32), nacl.public.PrivateKey(b"\x04" * 32)
    initiator = InitiatorHandshake(ALICE, "", suites=OLD, ephemeral=eph_i)
    responder = ResponderHandshake(BOB, "", suites=OLD, ephemeral=eph_r)
    hello = initiator.start()
    assert len(hello) == 1 + 32 + 32 + 2  # no offer byte at all
    reply = responder.receive_hello(hello)
    finish, dialer = initiator.receive_reply(reply)
    listener = responder.receive_finish(finish)
    shared = nacl.bindings.crypto_scalarmult(bytes(eph_i), bytes(eph_r.public_key))
    original = nacl.hash.blake2b(b"i2r" + dialer.transcript_hash, digest_size=32, key=shared,
                                 person=b"dms-net/1 key", encoder=nacl.encoding.RawEncoder)
    assert dialer.send_key == listener.receive_key == original
    assert dialer.suite == listener.suite == XSALSA20_POLY1305


@pytest.mark.parametrize("offers", [OLD, BOTH])
def test_a_frame_reflected_to_its_sender_fails_authentication(offers):
    dialer_keys, listener_keys = handshake(offers, offers)
    dialer, listener = SecureSession(dialer_keys), SecureSession(listener_keys)
    frame = dialer.seal(b"to the listener")
    with pytest.raises(FrameTampered):
        dialer.open(frame)
    assert listener.open(frame) == b"to the listener"  # and the dialer's state is intact
    assert dialer.open(listener.seal(b"back")) == b"back"


@pytest.mark.parametrize("sealed_under", SUITES)
def test_a_frame_from_one_suite_never_opens_in_the_other_with_the_same_key(sealed_under):
    """Even given the same 32-byte key (which the derivation never gives)."""
    key = os.urandom(32)
    other = AEGIS256 if sealed_under == XSALSA20_POLY1305 else XSALSA20_POLY1305

    def session(suite: str) -> SecureSession:
        return SecureSession(SessionKeys(key, key, "did:key:x", None, b"", suite=suite))

    for size in (0, 1, 16, 1000):
        frame = session(sealed_under).seal(bytes(size))
        with pytest.raises(FrameTampered):
            session(other).open(frame)


@pytest.mark.parametrize("suite", SUITES)
def test_the_send_counter_stops_before_it_wraps(suite):
    key = os.urandom(32)
    sender = SecureSession(SessionKeys(key, key, "did:key:x", None, b"", suite=suite))
    receiver = SecureSession(SessionKeys(key, key, "did:key:x", None, b"", suite=suite))
    sender._send_counter = receiver._receive_counter = 2**64 - 2
    assert receiver.open(sender.seal(b"last")) == b"last"
    with pytest.raises(OverflowError, match="exhausted"):
        sender.seal(b"one too many")
    with pytest.raises(OverflowError):
        sender.seal(b"still")  # stays refused, no wrap to counter 0


@pytest.mark.parametrize("suite", SUITES)
def test_a_failed_open_returns_nothing_and_keeps_the_expected_counter(suite):
    key = os.urandom(32)
    sender = SecureSession(SessionKeys(key, key, "did:key:x", None, b"", suite=suite))
    receiver = SecureSession(SessionKeys(key, key, "did:key:x", None, b"", suite=suite))
    frame = sender.seal(b"secret payload")
    for bad in (frame[:-1] + bytes([frame[-1] ^ 1]), frame[: receiver.overhead]):
        with pytest.raises(FrameTampered):
            receiver.open(bad)
    assert receiver.open(frame) == b"secret payload"


# --- the reader's limit on both carriers -------------------------------------------

LIMIT = 4096


async def _oversize_probe(carrier, suite: str, payload: int) -> bytes | str:
    """A hostile dialer seals a `payload`-byte frame itself (past the send check) for a
    listener whose links carry at most LIMIT bytes; what the listener's receive gives."""
    outcome: list[bytes | str] = []
    done = trio.Event()

    async def record(link: Link) -> None:
        try:
            outcome.append(await link.receive())
        except LinkClosed as exc:
            outcome.append(str(exc))
        done.set()

    settings = LinkSettings(max_frame=LIMIT)
    scheme = "tcp" if carrier is TcpTransport else "ws"
    with trio.fail_after(10):
        async with (
            carrier(ALICE) as client,
            carrier(BOB, settings) as server,
            trio.open_nursery() as nursery,
        ):
            address = await nursery.start(server.listen, f"{scheme}://127.0.0.1:0", record)
            link = await client.connect(address, expect_peer=server.peer_id)
            assert link.suite == suite
            await link._carrier.send_message(link._session.seal(b"x" * payload))
            await done.wait()
            await link.aclose()
            nursery.cancel_scope.cancel()
    return outcome[0]


@pytest.mark.parametrize("carrier", [TcpTransport, WebsocketTransport])
@pytest.mark.parametrize("suite", SUITES)
async def test_a_frame_of_the_largest_payload_arrives_under_either_suite(
    monkeypatch, carrier, suite
):
    monkeypatch.setattr(suites_module, "hardware_aes", lambda: suite == AEGIS256)
    got = await _oversize_probe(carrier, suite, LIMIT)
    assert got == b"x" * LIMIT


@pytest.mark.parametrize("carrier", [TcpTransport, WebsocketTransport])
@pytest.mark.parametrize("suite", SUITES)
@pytest.mark.parametrize("excess", [1, 16])
async def test_a_payload_past_the_limit_is_refused_under_either_suite(
    monkeypatch, carrier, suite, excess
):
    """XSalsa20 adds 24 bytes, AEGIS-256 40: a reader that allows 40 under both would
    hand an XSalsa20 peer's payload of up to max_frame + 16 to the node."""
    monkeypatch.setattr(suites_module, "hardware_aes", lambda: suite == AEGIS256)
    got = await _oversize_probe(carrier, suite, LIMIT + excess)
    assert isinstance(got, str) and "oversize" in got


@pytest.mark.parametrize("carrier", [TcpTransport, WebsocketTransport])
@pytest.mark.parametrize("suite", SUITES)
async def test_the_dialers_reader_takes_max_frame_and_refuses_one_byte_more(
    monkeypatch, carrier, suite
):
    """The default limit, read by the dialing side (trio-websocket's reader on ws://,
    sized for MAX_FRAME + 40): a hostile listener's MAX_FRAME + 1 is never delivered,
    and is named and counted as oversize even when trio-websocket refused it itself."""
    monkeypatch.setattr(suites_module, "hardware_aes", lambda: suite == AEGIS256)
    got: list[bytes | str] = []

    async def hostile(link: Link) -> None:
        for size in (MAX_FRAME, MAX_FRAME + 1):
            await link._carrier.send_message(link._session.seal(b"y" * size))
        with pytest.raises(LinkClosed):  # reading answers the dialer's close at once
            await link.receive()

    scheme = "tcp" if carrier is TcpTransport else "ws"
    with trio.fail_after(20):
        async with carrier(ALICE) as client, carrier(BOB) as server, trio.open_nursery() as nursery:
            address = await nursery.start(server.listen, f"{scheme}://127.0.0.1:0", hostile)
            link = await client.connect(address, expect_peer=server.peer_id)
            assert link.suite == suite
            got.append(await link.receive())
            with pytest.raises(LinkClosed) as closed:
                await link.receive()
            got.append(str(closed.value))
            nursery.cancel_scope.cancel()
    assert got[0] == b"y" * MAX_FRAME
    assert isinstance(got[1], str) and "rejected an oversize frame" in got[1]
    assert client.metrics["link.rejected_oversize"] == 1


def test_the_hand_written_aegis_sizes_match_libsodium():
    lib = nacl._sodium.lib
    assert lib.crypto_aead_aegis256_abytes() == TAG_BYTES[AEGIS256] == 32
    assert lib.crypto_aead_aegis256_npubbytes() == 32 == len(_AEGIS_PAD) + COUNTER_BYTES
    assert lib.crypto_aead_aegis256_keybytes() == 32
    assert FRAME_OVERHEAD == 40


def test_the_largest_greeting_fits_the_handshake_reader():
    """An address of 1024 bytes and 16 names of 32: the REPLY the reader must take."""
    offer = encode_offer([f"{n:02d}" + "s" * 30 for n in range(16)])
    assert len(offer) == 1 + 16 * 33
    responder = ResponderHandshake(BOB, "ws://" + "h" * 1019, suites=BOTH)
    hello = InitiatorHandshake(ALICE, "", suites=OLD).start()
    reply = responder.receive_hello(hello)
    largest = len(reply) - len(encode_offer(BOTH)) + len(offer)
    assert largest <= MAX_HANDSHAKE_MESSAGE
    assert parse_offer(offer, "REPLY") == OLD


@pytest.mark.parametrize("carrier", [TcpTransport, WebsocketTransport])
@pytest.mark.parametrize("old_side", ["dialer", "listener"])
async def test_an_old_format_peer_on_either_side_links_under_xsalsa20(
    monkeypatch, carrier, old_side
):
    """One side offers AEGIS-256, the other sends the format without an offer."""
    monkeypatch.setattr(suites_module, "hardware_aes", lambda: True)
    name = "InitiatorHandshake" if old_side == "dialer" else "ResponderHandshake"
    monkeypatch.setattr(link_module, name, functools.partial(getattr(link_module, name), suites=OLD))
    accepted: list[Link] = []

    async def echo(link: Link) -> None:
        accepted.append(link)
        await link.send(await link.receive())

    scheme = "tcp" if carrier is TcpTransport else "ws"
    with trio.fail_after(10):
        async with carrier(ALICE) as client, carrier(BOB) as server, trio.open_nursery() as nursery:
            address = await nursery.start(server.listen, f"{scheme}://127.0.0.1:0", echo)
            link = await client.connect(address, expect_peer=server.peer_id)
            await link.send(b"z" * 5000)
            assert await link.receive() == b"z" * 5000
            assert link.suite == accepted[0].suite == XSALSA20_POLY1305
            await link.aclose()
            nursery.cancel_scope.cancel()
