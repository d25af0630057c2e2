"""Hostile differential: the decode fast path of `Invocation` (`_checked`, which looks
at each field's `type()` first and runs the named checkers only when something is not
plainly right) accepts and refuses exactly what the full checkers did (the function as
it was at 6e67742, copied below), for type-confused values in every field."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ucan import CID, MalformedToken, SigningKey
from ucan.command import check_command
from ucan.invocation import _OPTIONAL, _REQUIRED, Invocation, _checked
from ucan.token import check_did, check_keys, check_time, check_type


def _old_checked(payload: dict[str, Any], envelope: bytes, signed_bytes: bytes,
                 signature: bytes, cid: CID) -> Invocation:
    """`ucan.invocation._checked` at 6e67742: every field through its checker."""
    check_keys(payload, _REQUIRED, _OPTIONAL, "the payload")
    prf = check_type(payload["prf"], list, "prf")
    if not all(isinstance(link, CID) for link in prf):
        raise MalformedToken("prf must list delegation CIDs")
    aud = payload.get("aud")
    meta = payload.get("meta")
    if meta is not None:
        check_type(meta, dict, "meta")
    cause = payload.get("cause")
    if cause is not None and not isinstance(cause, CID):
        raise MalformedToken("cause must be a CID")
    return Invocation(
        iss=check_did(payload["iss"], "iss"),
        sub=check_did(payload["sub"], "sub"),
        aud=None if aud is None else check_did(aud, "aud"),
        cmd=check_command(payload["cmd"]),
        args=check_type(payload["args"], dict, "args"),
        prf=tuple(prf),
        nonce=check_type(payload["nonce"], bytes, "nonce"),
        exp=check_time(payload["exp"], "exp", nullable=True),
        iat=check_time(payload.get("iat"), "iat", nullable=True),
        meta=meta,
        cause=cause,
        envelope=envelope,
        signed_bytes=signed_bytes,
        signature=signature,
        cid=cid,
    )


class _Bytes(bytes):
    pass


class _Dict(dict):  # type: ignore[type-arg]
    pass


class _List(list):  # type: ignore[type-arg]
    pass


class _Str(str):
    pass


class _Int(int):
    pass


DID = SigningKey.generate().did
LINK = CID.for_bytes(b"proof")
_CONFUSED: list[Any] = [
    None, True, False, 0, 1, -1, 1.0, 0.0, math.nan, math.inf, 2**53 - 1, 2**53, 2**64,
    -(2**64), _Int(5), b"", b"n", _Bytes(b"n"), "", "x", _Str(DID), DID, "did:key:z6Mk",
    "/a", "/a/b", "a", "/", _Str("/a"), {}, {"k": 1}, _Dict(), _Dict(k=1), [], [LINK],
    _List([LINK]), (LINK,), [LINK, "x"], [b"x"], LINK, {1: 2}, bytearray(b"n"),
]
_GOOD: dict[str, Any] = {"iss": DID, "sub": DID, "cmd": "/a", "args": {}, "prf": [LINK],
                         "nonce": b"n", "exp": 1_700_000_000, "aud": DID, "meta": {},
                         "iat": 1_600_000_000, "cause": LINK}
_FIELDS = sorted(_GOOD)


@st.composite
def _payloads(draw: st.DrawFn) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    for field in _FIELDS:
        choice = draw(st.integers(0, 9))  # mostly right: a refusal names one field
        if choice == 0 and (field in _OPTIONAL or draw(st.integers(0, 4)) == 0):
            continue  # absent
        payload[field] = _GOOD[field] if choice < 9 else draw(st.sampled_from(_CONFUSED))
    if draw(st.integers(0, 9)) == 0:
        payload[draw(st.sampled_from(["extra", "h", "pol"]))] = 1
    return payload


def _outcome(check: Any, payload: dict[str, Any]) -> tuple[str, Any]:
    try:
        made = check(payload, b"env", b"signed", b"s" * 64, LINK)
    except MalformedToken:
        return ("refused", None)
    # The values and their exact types: a fast path must not let a subclass through
    # where the checker refused it, nor make another value than the checker's.
    return ("accepted", [(field, type(getattr(made, field)), repr(getattr(made, field)))
                         for field in _FIELDS])

@settings(max_examples=700, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_payloads())
def test_the_fast_path_accepts_and_refuses_exactly_what_the_checkers_did(
        payload: dict[str, Any]) -> None:
    assert _outcome(_checked, payload) == _outcome(_old_checked, payload)


def test_one_bad_field_is_refused_by_the_same_message_as_before() -> None:
    for field in _FIELDS:
        for bad in _CONFUSED:
            payload = {**_GOOD, field: bad}
            messages = []
            for check in (_checked, _old_checked):
                try:
                    check(payload, b"env", b"signed", b"s" * 64, LINK)
                    messages.append(None)
                except MalformedToken as error:
                    messages.append(error.message)
            assert messages[0] == messages[1], (field, bad)
