"""Strict DAG-CBOR and CIDs.

Signatures and CIDs are computed over bytes, so a token must have exactly one
encoding. `decode` accepts only what `encode` would produce: canonical map-key order
(length first, then bytewise), shortest integer and length heads, 64-bit floats,
definite lengths, string keys, no duplicate keys, no tags but 42 (CIDs), no
undefined/simple values, no NaN or infinities. It decodes with cbor2 (C speed) and then
re-encodes and compares, which rejects every non-canonical form at once.

CIDs on the hot path are built by hand (CIDv1, dag-cbor, sha2-256, base32); the
multiformats package is the reference they are tested against.
"""

from __future__ import annotations

import base64
import hashlib
import io
import math
import struct
from collections.abc import Callable
from typing import Any

import cbor2

from ucan.errors import MalformedToken

DAG_CBOR = 0x71
RAW = 0x55
SHA2_256 = 0x12
_CID_TAG = 42
_MAX_DEPTH = 64
_INT_MIN = -(2**64)
_INT_MAX = 2**64 - 1


class CID:
    """A CIDv1 (binary form in `raw`); `str()` is the base32 multibase text form."""

    __slots__ = ("raw", "_text", "_hash")

    def __init__(self, raw: bytes) -> None:
        if len(raw) < 4 or raw[0] != 0x01:
            raise MalformedToken(f"not a CIDv1: {raw[:8].hex()}...")
        self.raw = bytes(raw)
        self._text: str | None = None
        self._hash = hash(self.raw)

    @classmethod
    def for_bytes(cls, data: bytes, codec: int = DAG_CBOR) -> CID:
        """The CIDv1 (sha2-256) addressing `data` encoded with `codec`."""
        cid = object.__new__(cls)  # well-formed by construction: skip __init__'s checks
        cid.raw = bytes((0x01, codec, SHA2_256, 0x20)) + hashlib.sha256(data).digest()
        cid._text = None
        cid._hash = hash(cid.raw)
        return cid

    @classmethod
    def parse(cls, text: str) -> CID:
        """Parse the base32 ('b...') text form; other multibases go through multiformats."""
        if not isinstance(text, str) or not text:
            raise MalformedToken(f"not a CID: {text!r}")
        if text[0] == "b":
            body = text[1:].upper()
            try:
                raw = base64.b32decode(body + "=" * (-len(body) % 8))
            except ValueError:
                raise MalformedToken(f"not a base32 CID: {text!r}") from None
            cid = cls(raw)
            if str(cid) != text or not _well_formed(raw):  # no bits dropped, a real multihash
                raise MalformedToken(f"not a CID: {text!r}")
            return cid
        try:
            from multiformats import CID as ReferenceCID

            ref = ReferenceCID.decode(text)
        except Exception as exc:
            raise MalformedToken(f"not a CID: {text!r} ({exc})") from None
        if ref.version != 1:
            raise MalformedToken(f"only CIDv1 is accepted: {text!r}")
        return cls(bytes(ref))

    def __str__(self) -> str:
        if self._text is None:
            self._text = "b" + base64.b32encode(self.raw).decode("ascii").rstrip("=").lower()
        return self._text

    def __repr__(self) -> str:
        return f"CID({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CID) and other.raw == self.raw

    def __hash__(self) -> int:
        return self._hash


def _well_formed(raw: bytes) -> bool:
    """A CIDv1's bytes: version, codec, then a multihash whose digest fills the rest."""
    try:
        from multiformats import CID as ReferenceCID

        ReferenceCID.decode(raw)
    except Exception:
        return False
    return True


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


def _check_value(value: Any, depth: int = 0) -> None:
    """Reject Python values DAG-CBOR has no form for (the encoder handles the rest).

    Exact-type dispatch first: this runs on every token signed, so the common shapes
    (maps of strings, bytes and small ints) must cost a few dict lookups.
    """
    kind = type(value)
    if kind in _LEAVES:
        return
    if kind is int:
        if not _INT_MIN <= value <= _INT_MAX:
            raise MalformedToken(f"integer {value} is outside the 64-bit range")
        return
    if depth > _MAX_DEPTH:
        raise MalformedToken(f"nesting deeper than {_MAX_DEPTH}")
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise MalformedToken(f"map keys must be strings, got {type(key).__name__}")
            if type(item) not in _LEAVES:
                _check_value(item, depth + 1)
    elif kind is list or kind is tuple:
        for item in value:
            if type(item) not in _LEAVES:
                _check_value(item, depth + 1)
    elif isinstance(value, (str, bytes, float)):
        return
    elif isinstance(value, int):
        _check_value(int(value), depth)
    elif isinstance(value, dict):
        _check_value(dict(value), depth)
    elif isinstance(value, (list, tuple)):
        _check_value(list(value), depth)
    else:
        raise MalformedToken(f"DAG-CBOR cannot hold a value of type {kind.__name__}")


def encode(value: Any) -> bytes:
    """Canonical DAG-CBOR bytes of an IPLD value (dict/list/str/bytes/int/float/bool/None/CID)."""
    _check_value(value)
    return _encode_checked(value)


def _encode_checked(value: Any) -> bytes:
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
    definite lengths, tag 42 only) without insisting on the shortest byte form.

    For wrappers whose bytes are never signed or hashed (containers): what they carry
    is decoded strictly on its own. Trailing bytes after the value are refused.
    """
    stream = io.BytesIO(data)
    try:
        value = cbor2.CBORDecoder(
            stream,
            tag_hook=_tag_hook,
            object_hook=_object_hook,
            semantic_decoders=_SEMANTIC,
            allow_indefinite=False,
            allow_duplicate_keys=False,
            max_depth=_MAX_DEPTH,
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
    return value
