"""ctn-v1 containers: every header round trips; damaged containers are named."""

from __future__ import annotations

import base64
import gzip

import pytest

from ucan import SigningKey, delegate, invoke
from ucan.codec import encode
from ucan.container import (
    BASE64,
    BASE64_GZIP,
    BASE64URL,
    BASE64URL_GZIP,
    RAW,
    RAW_GZIP,
    decode_container,
    encode_container,
    encode_container_text,
    read_tokens,
)
from ucan.errors import MalformedToken

KEY = SigningKey.from_seed(b"\x07" * 32)
TOKENS = [delegate(KEY, KEY.did, f"/c/{n}", expiration=None).envelope for n in range(3)]
HEADERS = [RAW, BASE64, BASE64URL, RAW_GZIP, BASE64_GZIP, BASE64URL_GZIP]


@pytest.mark.parametrize("header", HEADERS, ids=lambda h: f"0x{h:02x}")
def test_every_header_round_trips_the_tokens_sorted_without_duplicates(header: int) -> None:
    data = encode_container([*TOKENS, TOKENS[0]], header)
    assert data[0] == header
    assert decode_container(data) == sorted(TOKENS)


@pytest.mark.parametrize("header", [BASE64, BASE64URL, BASE64_GZIP, BASE64URL_GZIP])
def test_text_headers_decode_from_str_with_surrounding_whitespace(header: int) -> None:
    text = encode_container(TOKENS, header).decode("ascii")
    assert decode_container(f"  {text}\n") == sorted(TOKENS)
    assert decode_container(f"{text}\n".encode()) == sorted(TOKENS)


def test_text_form_is_standard_padded_base64() -> None:
    text = encode_container_text(TOKENS)
    assert text[0] == "B"
    base64.b64decode(text[1:], validate=True)


def test_unknown_header_is_named() -> None:
    with pytest.raises(MalformedToken, match="header 0x41"):
        decode_container(b"\x41" + encode({"ctn-v1": TOKENS}))
    with pytest.raises(ValueError):
        encode_container(TOKENS, 0x41)


@pytest.mark.parametrize("body", [{"ctn-v2": []}, {"ctn-v1": [1]}, {"ctn-v1": []} | {"x": 1},
                                  ["ctn-v1"]])
def test_a_body_that_is_not_a_container_is_refused(body: object) -> None:
    with pytest.raises(MalformedToken):
        decode_container(bytes((RAW,)) + encode(body))


def test_a_gzip_bomb_stops_at_the_limit() -> None:
    bomb = gzip.compress(b"\x00" * (17 * 1024 * 1024))
    with pytest.raises(MalformedToken, match="inflates past"):
        decode_container(bytes((RAW_GZIP,)) + bomb)


def test_an_empty_container_and_bad_base64_are_refused() -> None:
    with pytest.raises(MalformedToken):
        decode_container(b"")
    with pytest.raises(MalformedToken):
        decode_container(b"B!!!")


def test_an_invocation_travels_with_its_proofs() -> None:
    grant = delegate(KEY, KEY.did, "/c", expiration=None)
    inv = invoke(KEY, KEY.did, "/c/x", {}, [grant.cid], expiration=None)
    assert set(decode_container(encode_container([inv.envelope, grant.envelope]))) == {
        inv.envelope, grant.envelope}


def test_bytes_after_the_container_value_are_refused() -> None:
    from ucan.container import RAW, decode_container, encode_container
    from ucan.errors import MalformedToken

    blob = encode_container([b"token"], RAW)
    assert decode_container(blob) == [b"token"]
    with pytest.raises(MalformedToken, match="follow"):
        decode_container(blob + b"\x00")


# -- token files: the one reader the ucan and dms commands share ----------------------------


def test_a_token_file_holding_one_raw_envelope_reads_as_that_envelope() -> None:
    assert read_tokens(TOKENS[0]) == [TOKENS[0]]


@pytest.mark.parametrize("header", HEADERS, ids=lambda h: f"0x{h:02x}")
def test_a_token_file_holding_a_container_reads_as_its_tokens(header: int) -> None:
    data = encode_container(TOKENS, header)
    if header not in (RAW, RAW_GZIP):
        data += b"\n"  # text as written by `ucan grant --base64`, or pasted
    assert read_tokens(data) == sorted(TOKENS)


@pytest.mark.parametrize("data", [b"", b"\n  \n", b"not a token", b"\xa1\x61x\x01"])
def test_a_token_file_that_is_neither_is_refused_saying_so(data: bytes) -> None:
    with pytest.raises(MalformedToken, match="empty|neither an envelope nor a container"):
        read_tokens(data)


def test_the_token_file_reader_is_public_and_the_one_the_ucan_command_uses() -> None:
    import ucan
    import ucan.cli

    assert ucan.read_tokens is read_tokens
    assert ucan.cli.read_tokens is read_tokens


@pytest.mark.parametrize("text", ["M00", "OAAAA", "H4sI"])
def test_a_gzip_container_with_a_broken_body_is_malformed(text: str) -> None:
    """Found by the decoder fuzz: a bad gzip header escaped as zlib.error."""
    with pytest.raises(MalformedToken):
        decode_container(text)
