"""The UCAN envelope: `[signature, {"h": varsig header, "<type tag>": payload}]`.

The signature covers the DAG-CBOR bytes of the inner map (the signature payload). Only
Ed25519 over DAG-CBOR is spoken here; any other varsig header is refused, never guessed.
A token's CID is CIDv1(dag-cbor, sha2-256) of the whole envelope's bytes.
"""

from __future__ import annotations

from typing import Any, Protocol

import attrs

from ucan.codec import CID, decode, encode
from ucan.errors import MalformedToken

# varsig v1: prefix 0x34, version 0x01, ed25519 (0xed01), edwards25519 (0xed01),
# sha2-512 (0x13), payload encoding DAG-CBOR (0x71).
ED25519_DAG_CBOR_HEADER = bytes.fromhex("3401ed01ed011371")
SIGNATURE_SIZE = 64

DELEGATION_TAG = "ucan/dlg@1.0.0"
INVOCATION_TAG = "ucan/inv@1.0.0"
# Deployed implementations still emit the release-candidate tags; read them, never write them.
ACCEPTED_TAGS = {
    DELEGATION_TAG: DELEGATION_TAG,
    "ucan/dlg@1.0.0-rc.1": DELEGATION_TAG,
    INVOCATION_TAG: INVOCATION_TAG,
    "ucan/inv@1.0.0-rc.1": INVOCATION_TAG,
}


class Signer(Protocol):
    @property
    def did(self) -> str: ...

    def sign(self, message: bytes) -> bytes: ...


@attrs.frozen
class Unsealed:
    """A decoded envelope. `kind` is the 1.0.0 tag even when an rc tag was read."""

    kind: str
    payload: dict[str, Any]
    signature: bytes
    signed_bytes: bytes
    envelope: bytes
    cid: CID


def seal(payload: dict[str, Any], kind: str, signer: Signer) -> Unsealed:
    """Sign `payload` as a token of `kind` (a 1.0.0 tag) and build its envelope."""
    if kind not in (DELEGATION_TAG, INVOCATION_TAG):
        raise ValueError(f"unknown token kind {kind!r}")
    signed_bytes = encode({"h": ED25519_DAG_CBOR_HEADER, kind: payload})
    signature = signer.sign(signed_bytes)
    envelope = _envelope_head(signature) + signed_bytes
    return Unsealed(kind, payload, signature, signed_bytes, envelope, CID.for_bytes(envelope))


_ED25519_ENVELOPE_HEAD = b"\x82\x58\x40"  # array(2), then a 64-byte string's head


def _envelope_head(signature: bytes) -> bytes:
    # array(2), then the signature as a byte string (64 bytes -> 0x58 0x40 head)
    if len(signature) == SIGNATURE_SIZE:
        return _ED25519_ENVELOPE_HEAD + signature
    return b"\x82" + encode(signature)


def unseal(data: bytes) -> Unsealed:
    """Decode an envelope strictly. The signature is not checked here (see `verify`)."""
    data = bytes(data)
    value = decode(data)
    if not (isinstance(value, list) and len(value) == 2):
        raise MalformedToken("an envelope is a 2-element array [signature, payload]")
    signature, inner = value
    if not isinstance(signature, bytes):
        raise MalformedToken("the envelope's signature must be bytes")
    if not (isinstance(inner, dict) and len(inner) == 2 and "h" in inner):
        raise MalformedToken('the signature payload must be {"h": header, "<tag>": payload}')
    header = inner["h"]
    if header != ED25519_DAG_CBOR_HEADER:
        shown = header.hex() if isinstance(header, bytes) else repr(header)
        raise MalformedToken(f"unsupported varsig header {shown} (only Ed25519 over DAG-CBOR)")
    first, second = inner  # the tag is the key that is not "h"
    tag = second if first == "h" else first
    kind = ACCEPTED_TAGS.get(tag)
    if kind is None:
        raise MalformedToken(f"unknown token type tag {tag!r}")
    payload = inner[tag]
    if not isinstance(payload, dict):
        raise MalformedToken(f"the {tag} payload must be a map")
    head = 1 + _byte_string_head_size(len(signature))  # array(2) + signature's head
    signed_from = head + len(signature)
    return Unsealed(kind, payload, signature, data[signed_from:], data, CID.for_bytes(data))


def _byte_string_head_size(length: int) -> int:
    """Bytes in the canonical CBOR head of a byte string of `length`."""
    if length < 24:
        return 1
    if length < 0x100:
        return 2
    if length < 0x10000:
        return 3
    return 5 if length < 0x100000000 else 9
