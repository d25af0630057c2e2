"""Strict DAG-CBOR and CIDs.

Signatures and CIDs are computed over bytes, so a token must have exactly one
encoding. `decode` accepts only what `encode` would produce: canonical map-key order
(length first, then bytewise), shortest integer and length heads, 64-bit floats,
definite lengths, string keys, no duplicate keys, no tags but 42 (CIDs), no
undefined/simple values, no NaN or infinities, at most 64 nested maps and lists, no
trailing bytes.

The codec is cbrrr (C, no Python callbacks but the CID constructor): its decoder
refuses every non-canonical form above by itself, with an explicit stack instead of
recursion, so what is left to check here is the nesting limit. Where cbrrr is not
installed (it ships as source only and needs a C compiler), the cbor2 reference in
`ucan._dag_cbor_reference` does the same job ten times slower; `NATIVE` says which
one runs. Both are held to the same accept/refuse answers by the tests.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from ucan import _dag_cbor_reference as _reference
from ucan._cid import CID as CID
from ucan._ipld_limits import MAX_ITEMS, check_cost, check_depth
from ucan.errors import MalformedToken

_native: ModuleType | None
try:
    from cbrrr import _cbrrr as _native
except ImportError:  # pragma: no cover - depends on the platform's build
    _native = None

NATIVE = _native is not None


def encode(value: Any) -> bytes:
    """Canonical DAG-CBOR bytes of an IPLD value (dict/list/str/bytes/int/float/bool/None/CID)."""
    if _native is None:
        return _reference.encode(value)
    try:
        data: bytes = _native.encode_dag_cbor(value, CID, False)
    except TypeError:
        # Not plain dict/list/str/...: tuples and subclasses are normalised (and
        # anything DAG-CBOR cannot hold is refused, by name) by the reference.
        return _reference.encode(value)
    except ValueError as exc:  # NaN, infinities, integers past 64 bits, bad unicode
        raise MalformedToken(f"cannot encode as DAG-CBOR: {exc}") from None
    check_depth(value, data)
    return data


def decode(data: bytes) -> Any:
    """Decode canonical DAG-CBOR; MalformedToken for anything else."""
    if type(data) is not bytes:
        data = bytes(data)
    if len(data) > MAX_ITEMS:  # what fits under the item limit cannot pass it
        check_cost(data)
    if _native is None:
        return _reference.decode(data)
    return _decode_native(data)


def _decode_native(data: bytes) -> Any:
    assert _native is not None
    try:
        value, length = _native.decode_dag_cbor(data, CID, False)
    except MalformedToken:  # from the CID constructor
        raise
    except (ValueError, TypeError, OverflowError) as exc:  # UnicodeDecodeError included
        raise MalformedToken(f"not canonical DAG-CBOR: {exc}") from None
    if length != len(data):
        raise MalformedToken(f"{len(data) - length} bytes follow the CBOR value")
    check_depth(value, data)
    return value


def decode_unhashed(data: bytes) -> Any:
    """Decode the DAG-CBOR data model (string keys in canonical order, no duplicates,
    definite lengths, tag 42 only) without insisting on the shortest byte form.

    For wrappers whose bytes are never signed or hashed (containers): what they carry
    is decoded strictly on its own. Trailing bytes after the value are refused.
    Canonical bytes take the native path; only the rest pay for the reference, and
    nothing is decoded at all past the cost limits (`check_cost`).
    """
    if type(data) is not bytes:
        data = bytes(data)
    if len(data) > MAX_ITEMS:
        check_cost(data)
    if _native is not None:
        try:
            return _decode_native(data)
        except MalformedToken:
            pass
    return _reference.decode_unhashed(data)
