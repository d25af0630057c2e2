"""Every decoder that reads bytes from the network or from disk, fed random and mutated
input: it answers with its own named error or a value, never anything else, and fast.

A few hundred cases each here; `DMS_FUZZ_EXAMPLES=10000 pytest tests/dms/test_decoders_fuzz.py`
runs the long mode.
"""

from __future__ import annotations

import contextlib
import os
import time
import tracemalloc
from pathlib import Path
from typing import Any

import nacl.signing
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dms.ensemble import EnsembleError, load_ensemble
from dms.net import HandshakeFailed
from dms.net._handshake import InitiatorHandshake, ResponderHandshake, SessionKeys
from dms.net._mesh_wire import MalformedMeshFrame
from dms.net._mesh_wire import decode as decode_mesh_frame
from dms.net._session import FrameRejected, SecureSession
from ucan import (
    Delegation,
    Invocation,
    SigningKey,
    UcanError,
    decode,
    decode_container,
    delegate,
    encode_container,
    invoke,
    read_tokens,
)
from ucan.keystore import FAST_INSECURE, Keystore, KeystoreError
from ucan.store import TokenStore

EXAMPLES = int(os.environ.get("DMS_FUZZ_EXAMPLES", "200"))
fuzz = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
SLOW = 1.0  # seconds one input may take, generously, on a loaded 2-core machine

KEY = SigningKey.from_seed(bytes(32))
GRANT = delegate(KEY, KEY.did, "/fuzz", expiration=None)
INVOCATION = invoke(KEY, KEY.did, "/fuzz/x", {"n": 1, "list": [1, 2]}, [GRANT.cid],
                    expiration=None)
SAMPLES = [GRANT.envelope, INVOCATION.envelope,
           encode_container([INVOCATION.envelope, GRANT.envelope])]


def mutated(samples: list[bytes]) -> st.SearchStrategy[bytes]:
    """Real messages with bytes flipped, cut, inserted or appended, and random bytes."""
    def mutate(draw: Any) -> bytes:
        data = bytearray(draw(st.sampled_from(samples)))
        for _ in range(draw(st.integers(1, 4))):
            kind = draw(st.sampled_from(["flip", "cut", "insert", "append"]))
            at = draw(st.integers(0, max(0, len(data) - 1)))
            if kind == "flip" and data:
                data[at] ^= draw(st.integers(1, 255))
            elif kind == "cut":
                del data[at:]
            elif kind == "insert":
                data[at:at] = draw(st.binary(min_size=1, max_size=8))
            else:
                data += draw(st.binary(min_size=1, max_size=64))
        return bytes(data)

    return st.one_of(st.composite(lambda draw: mutate(draw))(), st.binary(max_size=512))


def within_time(decode_one: Any, data: Any, allowed: tuple[type[BaseException], ...]) -> None:
    """Decode one input: only an allowed error, under `SLOW` seconds, and at most
    `memory_bound(input)` bytes allocated at the peak (a decompression or length bomb
    shows here)."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with contextlib.suppress(*allowed):
            decode_one(data)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < SLOW * 3  # tracing allocations slows decoding about threefold
    assert peak <= memory_bound(data), f"{peak} bytes allocated for a {len(data)}-byte input"


def memory_bound(data: Any) -> int:
    """A decoder may use 1 MiB plus 64 bytes per input byte (parsed objects, copies)."""
    return 1024 * 1024 + 64 * len(data)


@fuzz
@given(mutated(SAMPLES))
def test_dag_cbor_containers_and_tokens_fail_only_with_ucan_errors(data: bytes) -> None:
    for decoder in (decode, decode_container, read_tokens, Delegation.decode, Invocation.decode):
        within_time(decoder, data, (UcanError,))


@fuzz
@given(st.text(max_size=300))
def test_container_text_fails_only_with_ucan_errors(text: str) -> None:
    within_time(decode_container, text, (UcanError,))


ALICE, BOB = nacl.signing.SigningKey(b"\x01" * 32), nacl.signing.SigningKey(b"\x02" * 32)
_dialer = InitiatorHandshake(ALICE, "ws://a:1")
_listener = ResponderHandshake(BOB, "ws://b:2")
HELLO = _dialer.start()
REPLY = _listener.receive_hello(HELLO)
FINISH, _ = _dialer.receive_reply(REPLY)


@fuzz
@given(mutated([HELLO]))
def test_a_hello_fails_only_as_a_failed_handshake(data: bytes) -> None:
    within_time(ResponderHandshake(BOB).receive_hello, data, (HandshakeFailed,))


@fuzz
@given(mutated([REPLY]))
def test_a_reply_fails_only_as_a_failed_handshake(data: bytes) -> None:
    dialer = InitiatorHandshake(ALICE)
    dialer.start()
    within_time(dialer.receive_reply, data, (HandshakeFailed,))


@fuzz
@given(mutated([FINISH]))
def test_a_finish_fails_only_as_a_failed_handshake(data: bytes) -> None:
    dialer, listener = InitiatorHandshake(ALICE), ResponderHandshake(BOB)
    listener.receive_hello(dialer.start())
    within_time(listener.receive_finish, data, (HandshakeFailed,))


KEYS = SessionKeys(bytes(32), bytes(32), "did:key:x", None, bytes(32))
SEALED = SecureSession(KEYS).seal(b"a link frame")


@fuzz
@given(mutated([SEALED]))
def test_a_link_frame_fails_only_as_rejected(data: bytes) -> None:
    within_time(SecureSession(SessionKeys(bytes(32), bytes(32), "x", None, b"")).open, data,
                (FrameRejected,))


MESH_FRAMES = [bytes([kind]) + bytes(range(40)) for kind in range(1, 6)]


@fuzz
@given(mutated(MESH_FRAMES))
def test_a_mesh_frame_fails_only_as_malformed(data: bytes) -> None:
    within_time(decode_mesh_frame, data, (MalformedMeshFrame,))


@fuzz
@given(st.one_of(st.text(max_size=400), st.binary(max_size=400)))
def test_ensemble_text_fails_only_with_ensemble_errors(text: str | bytes) -> None:
    within_time(load_ensemble, text, (EnsembleError,))


@pytest.fixture(scope="module")
def keystore(tmp_path_factory: pytest.TempPathFactory) -> Keystore:
    keys = Keystore(tmp_path_factory.mktemp("keys"), limits=FAST_INSECURE)
    keys.create("k", "pass")
    return keys


@fuzz
@given(data=st.data())
def test_a_damaged_key_file_fails_only_with_keystore_errors(keystore: Keystore,
                                                            data: st.DataObject) -> None:
    path = keystore.path_of("k")
    original = path.read_bytes()
    try:
        damaged = data.draw(mutated([original]))
        path.write_bytes(damaged)
        within_time(lambda _: keystore.load("k", "pass"), damaged, (KeystoreError,))
    finally:
        path.write_bytes(original)


@fuzz
@given(mutated([GRANT.envelope]))
def test_a_damaged_token_store_file_fails_only_with_ucan_errors(data: bytes) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        store = TokenStore(directory)
        store.put_delegation(GRANT)
        (Path(directory) / f"{GRANT.cid}.ucan").write_bytes(data)
        within_time(lambda _: list(store.delegations()), data, (UcanError,))
