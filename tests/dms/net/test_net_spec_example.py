"""spec/transport.md quotes the worked example byte for byte.

The example is fixed keys in, exact bytes out, once per session suite (both sides
offering only the mandatory XSalsa20-Poly1305, and both offering AEGIS-256). Print them
with ``.venv/bin/python tests/dms/net/test_net_spec_example.py``.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import nacl.public
import nacl.signing

from dms.net._handshake import InitiatorHandshake, ResponderHandshake
from dms.net._mesh_wire import Publish, Unicast, encode
from dms.net._session import SecureSession
from dms.net._suites import AEGIS256, XSALSA20_POLY1305
from ucan.did import did_from_public_key


def _hex(label: str, data: bytes) -> str:
    lines = textwrap.wrap(data.hex(" "), 48)
    body = "\n".join("    " + line for line in lines)
    return f"{label} ({len(data)} bytes)\n{body}"


def worked_example(suites: tuple[str, ...] = (XSALSA20_POLY1305,)) -> str:
    dialer_key = nacl.signing.SigningKey(bytes(range(1, 33)))
    listener_key = nacl.signing.SigningKey(bytes(range(33, 65)))
    dialer = InitiatorHandshake(
        dialer_key,
        "ws://10.0.0.1:9000",
        expect_peer=did_from_public_key(bytes(listener_key.verify_key)),
        ephemeral=nacl.public.PrivateKey(bytes([0x11] * 32)),
        suites=suites,
    )
    listener = ResponderHandshake(
        listener_key,
        "ws://10.0.0.2:9000",
        ephemeral=nacl.public.PrivateKey(bytes([0x22] * 32)),
        suites=suites,
    )
    hello = dialer.start()
    reply = listener.receive_hello(hello)
    finish, dialer_keys = dialer.receive_reply(reply)
    assert listener.receive_finish(finish).receive_key == dialer_keys.send_key
    assert dialer_keys.suite == (AEGIS256 if AEGIS256 in suites else XSALSA20_POLY1305)
    sender = SecureSession(dialer_keys)
    publish = encode(Publish(b"\x01\x71\x12\x20" + bytes(4), "/nunet/deployment", 8, b"hello"))
    unicast = encode(Unicast(b"ping"))
    sealed_publish = sender.seal(publish)
    sealed_unicast = sender.seal(unicast)
    parts = [
        "dialer    " + did_from_public_key(bytes(dialer_key.verify_key)),
        "listener  " + dialer_keys.remote_peer,
        _hex("HELLO  dialer -> listener", hello),
        _hex("REPLY  listener -> dialer", reply),
        _hex("FINISH dialer -> listener", finish),
        _hex("transcript hash", dialer_keys.transcript_hash),
        _hex("key dialer->listener (i2r)", dialer_keys.send_key),
        _hex("key listener->dialer (r2i)", dialer_keys.receive_key),
        _hex("mesh PUBLISH (plaintext)", publish),
        _hex("sealed frame 0 (PUBLISH)", sealed_publish),
        _hex("mesh UNICAST (plaintext)", unicast),
        _hex("sealed frame 1 (UNICAST)", sealed_unicast),
    ]
    return "\n".join(parts) + "\n"


SPEC = Path(__file__).parents[3] / "spec" / "transport.md"


def test_spec_quotes_the_worked_example_verbatim():
    assert worked_example() in SPEC.read_text()


def test_spec_quotes_the_aegis256_worked_example_verbatim():
    assert worked_example((AEGIS256, XSALSA20_POLY1305)) in SPEC.read_text()


if __name__ == "__main__":
    print(worked_example(), end="")
    print("--- both offering aegis256 ---")
    print(worked_example((AEGIS256, XSALSA20_POLY1305)), end="")
