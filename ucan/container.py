"""UCAN containers (ctn-v1): several tokens carried together as one blob.

Shape: `{"ctn-v1": [token bytes, ...]}` (tokens sorted bytewise, no duplicates),
serialized as CBOR and prefixed by one header byte naming the base encoding and
compression. Token CIDs are not carried: the reader hashes each token itself.
"""

from __future__ import annotations

import base64
import gzip
import zlib
from collections.abc import Iterable

from ucan.codec import decode_unhashed, encode
from ucan.errors import MalformedToken

_KEY = "ctn-v1"
RAW, BASE64, BASE64URL = 0x40, 0x42, 0x43
RAW_GZIP, BASE64_GZIP, BASE64URL_GZIP = 0x4D, 0x4F, 0x50
_GZIPPED = {RAW_GZIP, BASE64_GZIP, BASE64URL_GZIP}
_RAW_HEADERS = {bytes((h,)) for h in (RAW, RAW_GZIP)}
_TEXT_HEADERS = {bytes((h,)) for h in (BASE64, BASE64URL, BASE64_GZIP, BASE64URL_GZIP)}
_MAX_INFLATED = 16 * 1024 * 1024  # a gzip bomb stops here


def encode_container(tokens: Iterable[bytes], header: int = RAW) -> bytes:
    """Serialize tokens as a container with the given header (default: raw bytes)."""
    body = encode({_KEY: sorted(set(map(bytes, tokens)))})
    if header in _GZIPPED:
        body = gzip.compress(body, mtime=0)
    if header in (RAW, RAW_GZIP):
        return bytes((header,)) + body
    if header in (BASE64, BASE64_GZIP):
        return bytes((header,)) + base64.b64encode(body)
    if header in (BASE64URL, BASE64URL_GZIP):
        return bytes((header,)) + base64.urlsafe_b64encode(body).rstrip(b"=")
    raise ValueError(f"unknown container header 0x{header:02x}")


def encode_container_text(tokens: Iterable[bytes]) -> str:
    """The text form people paste around: base64 (standard alphabet, padded)."""
    return encode_container(tokens, BASE64).decode("ascii")


def decode_container(data: bytes | str) -> list[bytes]:
    """The tokens in a container, whatever its header; MalformedToken when it is not one."""
    if type(data) is bytes and data[:1] == b"\x40":  # raw: what nodes send each other
        return _tokens(decode_unhashed(data[1:]))
    if isinstance(data, str):
        data = data.strip().encode("ascii", "replace")
    elif data[:1] not in _RAW_HEADERS and data.lstrip()[:1] in _TEXT_HEADERS:
        data = data.strip()  # text read from a file or a pipe, newline and all
    if not data:
        raise MalformedToken("an empty container")
    header, body = data[0], data[1:]
    try:
        if header in (BASE64, BASE64_GZIP):
            body = base64.b64decode(body, validate=True)
        elif header in (BASE64URL, BASE64URL_GZIP):
            body = base64.urlsafe_b64decode(body + b"=" * (-len(body) % 4))
        elif header not in (RAW, RAW_GZIP):
            raise MalformedToken(f"unknown container header 0x{header:02x}")
        if header in _GZIPPED:
            body = _gunzip(body)
    except (ValueError, OSError, EOFError, zlib.error) as exc:  # zlib: a bad gzip header
        raise MalformedToken(f"container body cannot be decoded: {exc}") from None
    return _tokens(decode_unhashed(body))  # the container is never hashed; each token is


def _tokens(value: object) -> list[bytes]:
    if not (isinstance(value, dict) and len(value) == 1 and isinstance(value.get(_KEY), list)):
        raise MalformedToken('a container is {"ctn-v1": [token bytes...]} and nothing else')
    tokens: list[bytes] = value[_KEY]
    for token in tokens:
        if type(token) is not bytes:
            raise MalformedToken("container entries must be token bytes")
    return tokens


def read_tokens(data: bytes) -> list[bytes]:
    """The token envelopes in a token file's bytes: one raw DAG-CBOR envelope (what
    `ucan grant -o FILE` writes), or a container with any header, binary or base64 text
    with or without a trailing newline (what `--base64` writes and people paste).

    The one reader every command uses, so that a file one accepts the others accept.
    `MalformedToken` when the data is neither; the caller adds the file name.
    """
    if not data.strip():
        raise MalformedToken("empty")
    if data[0] == 0x82:  # a CBOR array of two, [signature, payload]: a raw envelope
        return [data]
    try:
        return decode_container(data)
    except MalformedToken as exc:
        raise MalformedToken(f"neither an envelope nor a container ({exc.message})") from None


def _gunzip(body: bytes) -> bytes:
    import zlib

    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out = inflater.decompress(body, _MAX_INFLATED)
    if inflater.unconsumed_tail:
        raise MalformedToken(f"container inflates past {_MAX_INFLATED} bytes")
    return out
