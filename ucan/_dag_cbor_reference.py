"""The reference DAG-CBOR codec: cbor2 with hooks, then a re-encode compare.

It is the oracle the native codec is tested against, the lenient reader behind
`decode_unhashed` (bytes that are the data model but not its shortest form), and the
whole codec where the native extension is not installed. Slow where it matters:
cbor2 calls back into Python for every CID, float and map.
"""

from __future__ import annotations

import io
import math
import struct
from collections.abc import Callable
from typing import Any

import cbor2

from ucan._cid import CID
from ucan._ipld_limits import INT_MAX, INT_MIN, MAX_DEPTH, check_depth
from ucan.errors import MalformedToken

_CID_TAG = 42


def _encode_float(encoder: Any, value: float) -> None:
    if not math.isfinite(value):
        raise MalformedToken("DAG-CBOR forbids NaN and infinities")
    encoder.write(b"\xfb" + struct.pack(">d", value))


def _encode_cid(encoder: Any, value: CID) -> None:
    encoder.write(b"\xd8\x2a")  # tag 42
    encoder.encode(b"\x00" + value.raw)


def _refuse(kind: str) -> Callable[[Any, Any], None]:
    def refuse(encoder: Any, value: Any) -> None:
        raise MalformedToken(f"DAG-CBOR cannot hold {kind}")

    return refuse


_ENCODERS: dict[type, Callable[[Any, Any], None]] = {
    float: _encode_float,
    CID: _encode_cid,
    type(cbor2.undefined): _refuse("undefined"),
    cbor2.CBORSimpleValue: _refuse("simple values"),
    set: _refuse("sets"),
    frozenset: _refuse("sets"),
}


_LEAVES = frozenset({str, bytes, float, bool, type(None), CID})


def check_value(value: Any, depth: int = 1) -> None:
    """Reject Python values DAG-CBOR has no form for (the encoder handles the rest).

    `depth` is the nesting level `value` would sit at if it is a map or list.
    Exact-type dispatch first: the common shapes must cost a few dict lookups.
    """
    kind = type(value)
    if kind in _LEAVES:
        return
    if kind is int:
        if not INT_MIN <= value <= INT_MAX:
            raise MalformedToken(f"integer {value} is outside the 64-bit range")
        return
    if depth > MAX_DEPTH and isinstance(value, (dict, list, tuple)):
        raise MalformedToken(f"maps and lists nested deeper than {MAX_DEPTH}")
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise MalformedToken(f"map keys must be strings, got {type(key).__name__}")
            if type(item) not in _LEAVES:
                check_value(item, depth + 1)
    elif kind is list or kind is tuple:
        for item in value:
            if type(item) not in _LEAVES:
                check_value(item, depth + 1)
    elif isinstance(value, (str, bytes, float)):
        return
    elif isinstance(value, int):
        check_value(int(value), depth)
    elif isinstance(value, dict):
        check_value(dict(value), depth)
    elif isinstance(value, (list, tuple)):
        check_value(list(value), depth)
    else:
        raise MalformedToken(f"DAG-CBOR cannot hold a value of type {kind.__name__}")


def encode(value: Any) -> bytes:
    """Canonical DAG-CBOR bytes of an IPLD value (dict/list/str/bytes/int/float/bool/None/CID)."""
    check_value(value)
    try:
        return cbor2.dumps(value, canonical=True, encoders=_ENCODERS)
    except MalformedToken:
        raise
    except (cbor2.CBOREncodeError, ValueError, TypeError, OverflowError) as exc:
        raise MalformedToken(f"cannot encode as DAG-CBOR: {exc}") from None


def _tag_hook(*args: Any) -> Any:
    tag = next(arg for arg in args if isinstance(arg, cbor2.CBORTag))
    raise MalformedToken(f"tag {tag.tag} is not allowed in DAG-CBOR (only 42, CIDs)")


def _decode_cid(data: Any, *_: Any) -> CID:
    if not isinstance(data, bytes) or len(data) < 2 or data[0] != 0x00:
        raise MalformedToken("tag 42 must hold a binary CID with a 0x00 prefix")
    return CID(data[1:])


def _refuse_semantic(*_: Any) -> Any:
    raise MalformedToken("a CBOR tag other than 42 (CID) is not allowed in DAG-CBOR")


# cbor2 interprets many tags natively; DAG-CBOR allows only 42.
_SEMANTIC: dict[int, Callable[..., Any]] = {
    tag: _refuse_semantic for tag in (*range(0, 1100), 55799)
}
_SEMANTIC[_CID_TAG] = _decode_cid


def _canonical_key(key: str) -> tuple[int, bytes]:
    encoded = key.encode("utf-8")
    return len(encoded), encoded


def _object_hook(*args: Any) -> dict[Any, Any]:
    # cbor2 6 calls (value, immutable); cbor2 5 called (decoder, value).
    value: dict[Any, Any] = args[0] if isinstance(args[0], dict) else args[1]
    for key in value:
        if not isinstance(key, str):
            raise MalformedToken(f"map keys must be strings, got {type(key).__name__}")
    # Key order is checked here so that `decode` can re-encode without sorting (2x faster).
    if len(value) > 1:
        keys = list(value)
        if keys != sorted(keys, key=_canonical_key):
            raise MalformedToken(f"map keys {keys!r} are not in canonical DAG-CBOR order")
    return value


def decode(data: bytes) -> Any:
    """Decode canonical DAG-CBOR; MalformedToken for anything else."""
    value = decode_unhashed(data)
    # Keys are already known to be in canonical order, so an order-preserving re-encode
    # must reproduce the input exactly; any longer-than-needed head, short float or
    # other non-canonical form shows up as a difference.
    try:
        again = cbor2.dumps(value, encoders=_ENCODERS)
    except MalformedToken:
        raise
    except (cbor2.CBOREncodeError, ValueError, TypeError, OverflowError) as exc:
        raise MalformedToken(f"cannot re-encode as DAG-CBOR: {exc}") from None
    if again != bytes(data):
        raise MalformedToken("not canonical DAG-CBOR (it would re-encode differently)")
    return value


def decode_unhashed(data: bytes) -> Any:
    """Decode the DAG-CBOR data model (string keys in canonical order, no duplicates,
    definite lengths, tag 42 only) without insisting on the shortest byte form."""
    data = bytes(data)
    stream = io.BytesIO(data)
    try:
        value = cbor2.CBORDecoder(
            stream,
            tag_hook=_tag_hook,
            object_hook=_object_hook,
            semantic_decoders=_SEMANTIC,
            allow_indefinite=False,
            allow_duplicate_keys=False,
            # room for a CID (a tag around a byte string) at the deepest level;
            # `check_depth` then applies the data-model rule exactly
            max_depth=MAX_DEPTH + 2,
        ).decode()
    except MalformedToken:
        raise
    except Exception as exc:
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, MalformedToken):
            raise cause from None
        raise MalformedToken(f"not valid CBOR: {exc}") from None
    if stream.tell() != len(data):
        raise MalformedToken(f"{len(data) - stream.tell()} bytes follow the CBOR value")
    check_depth(value, data)
    encode(value)  # refuses what cbor2 reads but the data model lacks: NaN in a short float
    return value
