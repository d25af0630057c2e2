"""The native DAG-CBOR codec (cbrrr) against the cbor2 reference: same bytes out, same
accept/refuse answer for every input, the official vectors and the nesting limit."""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ucan import _dag_cbor_reference as reference
from ucan import codec
from ucan._ipld_limits import MAX_DEPTH
from ucan.codec import CID
from ucan.errors import MalformedToken

pytestmark = pytest.mark.skipif(
    not codec.NATIVE, reason="cbrrr (the native DAG-CBOR extension) is not installed")

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ucan-1.0.0"

cids = st.binary(min_size=1, max_size=64).map(CID.for_bytes)
scalars = (
    st.none() | st.booleans() | st.integers(-(2**64), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text() | st.binary() | cids
)
ipld = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=5),
    max_leaves=25,
)


def outcome(action: Callable[[bytes], Any], data: bytes) -> tuple[str, Any]:
    """('ok', value) or ('refused', None); anything but MalformedToken escapes and fails."""
    try:
        return "ok", action(data)
    except MalformedToken:
        return "refused", None


def fixture_tokens() -> list[bytes]:
    """Every token envelope the official vectors carry, valid and invalid cases alike."""
    def unpad(text: str) -> bytes:
        return base64.b64decode(text + "=" * (-len(text) % 4))

    tokens = [base64.b64decode(case["token"])
              for case in json.loads((FIXTURES / "delegation.json").read_text())["valid"]]
    invocations = json.loads((FIXTURES / "invocation.json").read_text())
    for case in invocations["valid"] + invocations["invalid"]:
        for token in [case["invocation"], *case["proofs"]]:
            tokens.append(unpad(token["/"]["bytes"]))
    return tokens


TOKENS = fixture_tokens()


def test_the_vectors_hold_tokens() -> None:
    assert len(TOKENS) > 20


@pytest.mark.parametrize("token", TOKENS, ids=lambda t: CID.for_bytes(t).raw[-4:].hex())
def test_every_official_token_decodes_alike_and_re_encodes_byte_for_byte(token: bytes) -> None:
    native = codec.decode(token)
    assert native == reference.decode(token)
    assert codec.encode(native) == reference.encode(native) == token


# Each case: bytes, and what it gets wrong. Both codecs must refuse all of them.
NON_CANONICAL = [
    (b"\xfa\x3f\xc0\x00\x00", "32-bit float"),
    (b"\xf9\x3e\x00", "16-bit float"),
    (b"\x18\x05", "integer with a longer head than needed"),
    (b"\x19\x00\x05", "integer with a 2-byte head for a 1-byte value"),
    (b"\x39\x00\x05", "negative integer with a longer head"),
    (b"\x59\x00\x01a", "byte string with a longer head"),
    (b"\x78\x01a", "text string with a longer head"),
    (b"\x98\x01\x01", "array with a longer head"),
    (b"\xb8\x01\x61a\x01", "map with a longer head"),
    (b"\xd9\x00\x2a\x41\x00", "tag 42 with a longer head"),
    (b"\xa2\x61b\x01\x61a\x02", "keys out of order"),
    (b"\xa2\x62aa\x01\x61b\x02", "longer key before shorter key"),
    (b"\xa2\x61a\x01\x61a\x02", "duplicate keys"),
    (b"\x9f\x01\xff", "indefinite-length array"),
    (b"\xbf\x61a\x01\xff", "indefinite-length map"),
    (b"\x7f\x61a\xff", "indefinite-length text"),
    (b"\x5f\x41a\xff", "indefinite-length bytes"),
    (b"\xc1\x01", "tag 1"),
    (b"\xd8\x2b\x41\x00", "tag 43"),
    (b"\xf7", "undefined"),
    (b"\xf0", "simple value 16"),
    (b"\xf8\x20", "simple value 32"),
    (b"\xf8\x14", "false in a two-byte form"),
    (b"\xa1\x01\x02", "integer map key"),
    (b"\xa1\x41a\x02", "byte-string map key"),
    (b"\xd8\x2a\x41\x01", "tag 42 without the 0x00 prefix"),
    (b"\xd8\x2a\x61a", "tag 42 around text"),
    (b"\xd8\x2a\x42\x00\x05", "tag 42 around bytes that are no CIDv1"),
    (b"\xfb\x7f\xf8\x00\x00\x00\x00\x00\x00", "NaN"),
    (b"\xfb\x7f\xf0\x00\x00\x00\x00\x00\x00", "infinity"),
    (b"\xfb\xff\xf0\x00\x00\x00\x00\x00\x00", "negative infinity"),
    (b"\x62\xff\xfe", "text that is not UTF-8"),
    (b"\x1c", "reserved additional information"),
    (b"\x01\x02", "trailing bytes"),
    (b"", "nothing"),
    (b"\x82\x01", "a truncated array"),
    (b"\x9b\x00\x00\x00\x10\x00\x00\x00\x00", "an array claiming 2**36 items"),
    (b"\x5b\x00\x00\x00\x10\x00\x00\x00\x00", "a byte string claiming 64 GiB"),
]


@pytest.mark.parametrize("data,why", NON_CANONICAL, ids=[why for _, why in NON_CANONICAL])
def test_non_canonical_input_is_refused_by_both_codecs(data: bytes, why: str) -> None:
    assert outcome(codec.decode, data)[0] == "refused"
    assert outcome(reference.decode, data)[0] == "refused"


@pytest.mark.parametrize("data", [
    b"\x18\x05", b"\x59\x00\x01a", b"\xfa\x3f\xc0\x00\x00", b"\xb8\x01\x61a\x19\x00\x01"])
def test_unhashed_reading_takes_long_heads_and_short_floats_on_both_paths(data: bytes) -> None:
    assert codec.decode_unhashed(data) == reference.decode_unhashed(data)


@pytest.mark.parametrize("data", [b"\xf9\x7c\x01", b"\xfa\x7f\x80\x00\x00", b"\x81\xf9\xfc\x00"])
def test_unhashed_reading_still_refuses_nan_and_infinities_in_short_floats(data: bytes) -> None:
    for decoder in (codec.decode_unhashed, reference.decode_unhashed):
        with pytest.raises(MalformedToken):
            decoder(data)


def nested(depth: int, leaf: Any = 1, in_maps: bool = False) -> Any:
    value = leaf
    for _ in range(depth):
        value = {"a": value} if in_maps else [value]
    return value


@pytest.mark.parametrize("in_maps", [False, True], ids=["lists", "maps"])
@pytest.mark.parametrize("leaf", [1, CID.for_bytes(b"x")], ids=["int", "cid"])
def test_nesting_up_to_the_limit_passes_and_one_more_is_refused_alike(
        in_maps: bool, leaf: Any) -> None:
    deepest = reference.encode(nested(MAX_DEPTH, leaf, in_maps))
    assert codec.encode(nested(MAX_DEPTH, leaf, in_maps)) == deepest
    assert codec.decode(deepest) == reference.decode(deepest)
    for encoder in (codec.encode, reference.encode):
        with pytest.raises(MalformedToken, match="nested deeper"):
            encoder(nested(MAX_DEPTH + 1, leaf, in_maps))
    head = b"\xa1\x61a" if in_maps else b"\x81"
    too_deep = head + deepest
    for decoder in (codec.decode, reference.decode, codec.decode_unhashed):
        with pytest.raises(MalformedToken):
            decoder(too_deep)


def test_hostile_nesting_is_refused_without_recursing() -> None:
    # a million nested arrays in a megabyte: decoded on an explicit stack, then refused
    data = b"\x81" * 1_000_000 + b"\x01"
    with pytest.raises(MalformedToken, match="nested deeper"):
        codec.decode(data)
    with pytest.raises(MalformedToken):
        codec.decode_unhashed(data)


def test_many_string_bytes_in_the_head_range_do_not_fake_deep_nesting() -> None:
    # the quick scan counts 0x80..0xbf bytes; inside strings they are no heads
    value = {"sig": bytes(range(0x80, 0xC0)) * 4, "n": [[1]]}
    assert codec.decode(codec.encode(value)) == value


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(ipld)
def test_native_and_reference_encode_any_value_to_the_same_bytes(value: Any) -> None:
    data = codec.encode(value)
    assert data == reference.encode(value)
    assert codec.decode(data) == reference.decode(data) == value or value != value


@given(st.recursive(
    st.integers(-3, 3) | st.text(max_size=3) | st.tuples(st.integers(0, 3)),
    lambda inner: st.lists(inner, max_size=3) | st.tuples(inner, inner)
    | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=10,
))
def test_tuples_and_the_like_encode_as_the_reference_encodes_them(value: Any) -> None:
    assert codec.encode(value) == reference.encode(value)


@pytest.mark.parametrize("value", [{1: 2}, {"a": {1}}, 2**64, -(2**64) - 1, float("inf"),
                                   float("nan"), object(), "\udc80", {"a": b"x", 2.5: 1}])
def test_both_codecs_refuse_values_dag_cbor_cannot_hold(value: Any) -> None:
    for encoder in (codec.encode, reference.encode):
        with pytest.raises(MalformedToken):
            encoder(value)


@settings(max_examples=500)
@given(st.binary(max_size=64))
def test_random_bytes_get_the_same_answer_from_both(data: bytes) -> None:
    assert outcome(codec.decode, data) == outcome(reference.decode, data)
    assert outcome(codec.decode_unhashed, data) == outcome(reference.decode_unhashed, data)


def mutations(data: bytes) -> st.SearchStrategy[bytes]:
    n = len(data)
    return st.one_of(
        st.tuples(st.integers(0, n - 1), st.integers(0, 7)).map(
            lambda p: data[:p[0]] + bytes((data[p[0]] ^ (1 << p[1]),)) + data[p[0] + 1:]),
        st.tuples(st.integers(0, n - 1), st.integers(0, 255)).map(
            lambda p: data[:p[0]] + bytes((p[1],)) + data[p[0] + 1:]),
        st.tuples(st.integers(0, n), st.binary(min_size=1, max_size=3)).map(
            lambda p: data[:p[0]] + p[1] + data[p[0]:]),
        st.tuples(st.integers(0, n - 1), st.integers(1, 3)).map(
            lambda p: data[:p[0]] + data[p[0] + p[1]:]),
    )


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(ipld.map(reference.encode), st.sampled_from(TOKENS)).flatmap(mutations))
def test_mutated_encodings_get_the_same_answer_from_both(data: bytes) -> None:
    assert outcome(codec.decode, data) == outcome(reference.decode, data)
    assert outcome(codec.decode_unhashed, data) == outcome(reference.decode_unhashed, data)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_native_floats_are_always_64_bit(value: float) -> None:
    assert codec.encode(value) == b"\xfb" + struct.pack(">d", value)


def test_without_the_extension_the_reference_codec_answers(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(codec, "_native", None)  # what an install without cbrrr runs
    token = TOKENS[0]
    assert codec.encode(codec.decode(token)) == token
    with pytest.raises(MalformedToken, match="re-encode differently"):
        codec.decode(b"\x18\x05")
    assert codec.decode_unhashed(b"\x18\x05") == 5
