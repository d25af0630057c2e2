"""Checks shared by delegation and invocation payload parsing."""

from __future__ import annotations

import os
from typing import Any

from ucan.did import public_key_from_did
from ucan.errors import MalformedToken

NONCE_SIZE = 12
# JavaScript-safe integer range: timestamps must round-trip through every implementation.
MAX_SAFE_TIME = _MAX_SAFE = 2**53 - 1


def new_nonce() -> bytes:
    return os.urandom(NONCE_SIZE)


def check_keys(payload: dict[str, Any], required: set[str], optional: set[str], what: str) -> None:
    missing = required - payload.keys()
    if missing:
        raise MalformedToken(f"{what} is missing {', '.join(sorted(missing))}")
    unknown = payload.keys() - required - optional
    if unknown:
        raise MalformedToken(f"{what} has unknown field(s) {', '.join(sorted(unknown))}")


def check_did(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise MalformedToken(f"{field} must be a DID string, got {value!r}")
    try:
        public_key_from_did(value)  # MalformedToken for anything but an Ed25519 did:key
    except MalformedToken as exc:
        raise MalformedToken(f"{field}: {exc.message}") from None
    return value


def check_time(value: Any, field: str, *, nullable: bool) -> int | None:
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_SAFE:
        raise MalformedToken(f"{field} must be a Unix time in seconds, got {value!r}")
    return value


def check_type(value: Any, kind: type, field: str) -> Any:
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise MalformedToken(f"{field} must be {kind.__name__}, got {value!r}")
    return value
