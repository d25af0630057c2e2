"""Strict DAG-CBOR: round trips, canonical form only, CIDs agreeing with multiformats."""

from __future__ import annotations

import struct
from typing import Any

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from multiformats import CID as ReferenceCID
from multiformats import multihash

from ucan.codec import CID, decode, decode_unhashed, encode
from ucan.errors import MalformedToken

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


def canonical_key(key: str) -> tuple[int, bytes]:
    encoded = key.encode()
    return len(encoded), encoded


def keys_in_order(data: bytes) -> bool:
    """Every map in `data`, read by plain cbor2 (no hooks), lists its keys canonically."""
    def walk(value: Any) -> bool:
        if isinstance(value, dict):
            keys = list(value)
            return keys == sorted(keys, key=canonical_key) and all(map(walk, value.values()))
        if isinstance(value, list):
            return all(map(walk, value))
        return True

    return walk(cbor2.loads(data, tag_hook=lambda _, tag: tag))


@settings(max_examples=300)
@given(ipld)
def test_any_ipld_value_round_trips_and_reencodes_identically(value: Any) -> None:
    data = encode(value)
    again = decode(data)
    assert encode(again) == data
    assert keys_in_order(data)


@given(st.dictionaries(st.text(max_size=6), st.integers(0, 100), min_size=2, max_size=6))
def test_map_keys_are_ordered_length_first_then_bytewise(value: dict[str, int]) -> None:
    assert list(decode(encode(value))) == sorted(value, key=canonical_key)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_floats_are_always_64_bit(value: float) -> None:
    assert encode(value) == b"\xfb" + struct.pack(">d", value)


@given(st.binary(max_size=300))
def test_hand_built_cid_agrees_with_multiformats(data: bytes) -> None:
    reference = ReferenceCID("base32", 1, "dag-cbor", multihash.digest(data, "sha2-256"))
    ours = CID.for_bytes(data)
    assert str(ours) == str(reference)
    assert ours.raw == bytes(reference)
    assert CID.parse(str(reference)) == ours


def test_cid_parses_other_multibases_through_multiformats() -> None:
    ours = CID.for_bytes(b"x")
    as_base58 = ReferenceCID.decode(str(ours)).encode("base58btc")
    assert CID.parse(as_base58) == ours


@pytest.mark.parametrize("data,why", [
    (b"\xfa\x3f\xc0\x00\x00", "32-bit float"),
    (b"\xf9\x3e\x00", "16-bit float"),
    (b"\x18\x05", "integer with a longer head than needed"),
    (b"\x59\x00\x01a", "byte string with a longer head than needed"),
    (b"\xa2\x61b\x01\x61a\x02", "keys out of order"),
    (b"\xa2\x62aa\x01\x61b\x02", "longer key before shorter key"),
    (b"\xa2\x61a\x01\x61a\x02", "duplicate keys"),
    (b"\x9f\x01\xff", "indefinite-length array"),
    (b"\x7f\x61a\xff", "indefinite-length string"),
    (b"\xc1\x01", "tag other than 42"),
    (b"\xf7", "undefined"),
    (b"\xa1\x01\x02", "integer map key"),
    (b"\xd8\x2a\x41\x01", "tag 42 without the 0x00 prefix"),
    (b"\xfb\x7f\xf8\x00\x00\x00\x00\x00\x00", "NaN"),
    (b"\x01\x02", "trailing bytes"),
])
def test_non_canonical_or_non_ipld_input_is_refused(data: bytes, why: str) -> None:
    with pytest.raises(MalformedToken):
        decode(data)


def test_decode_unhashed_accepts_long_heads_but_not_bad_keys() -> None:
    assert decode_unhashed(b"\x18\x05") == 5
    with pytest.raises(MalformedToken):
        decode_unhashed(b"\xa2\x61b\x01\x61a\x02")


@pytest.mark.parametrize("value", [{1: 2}, {"a": {1}}, 2**64, -(2**64) - 1, float("inf"),
                                   object()])
def test_encode_refuses_values_dag_cbor_cannot_hold(value: Any) -> None:
    with pytest.raises(MalformedToken):
        encode(value)


@pytest.mark.parametrize("text", [
    "bafynotacid",  # decodes to bytes that start like a CIDv1, but are no CID
    "bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zz",  # padding bits set
    "bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52",  # digest cut short
])
def test_a_text_that_is_not_exactly_a_cid_is_refused(text: str) -> None:
    with pytest.raises(MalformedToken):
        CID.parse(text)


def test_a_cid_text_parses_back_to_itself() -> None:
    text = "bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
    assert str(CID.parse(text)) == text
