"""Invocations: a signed request that a subject perform a command, with its proof chain."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from ucan.codec import CID
from ucan.command import check_command
from ucan.envelope import INVOCATION_TAG, Signer, Unsealed, seal, unseal
from ucan.errors import MalformedToken
from ucan.token import (
    MAX_SAFE_TIME,
    check_did,
    check_keys,
    check_time,
    check_type,
    new_nonce,
)

_REQUIRED = {"iss", "sub", "cmd", "args", "prf", "nonce", "exp"}
_OPTIONAL = {"aud", "meta", "iat", "cause"}
_FIELDS = frozenset(_REQUIRED | _OPTIONAL)


@attrs.frozen
class Invocation:
    iss: str
    sub: str
    aud: str | None
    cmd: str
    args: dict[str, Any]
    prf: tuple[CID, ...]
    nonce: bytes
    exp: int | None
    iat: int | None
    meta: dict[str, Any] | None
    cause: CID | None
    envelope: bytes = attrs.field(repr=False)
    signed_bytes: bytes = attrs.field(repr=False)
    signature: bytes = attrs.field(repr=False)
    cid: CID

    @property
    def audience(self) -> str:
        """Who must execute it: `aud`, or the subject when `aud` is absent."""
        return self.aud if self.aud is not None else self.sub

    @classmethod
    def decode(cls, data: bytes) -> Invocation:
        """Parse envelope bytes; MalformedToken for anything but a well-formed invocation."""
        return cls.from_unsealed(unseal(data))

    @classmethod
    def from_unsealed(cls, unsealed: Unsealed) -> Invocation:
        """The invocation in an already unsealed envelope (MalformedToken if it is not one)."""
        if unsealed.kind != INVOCATION_TAG:
            raise MalformedToken(f"token {unsealed.cid} is a delegation, not an invocation")
        return _from_payload(unsealed.payload, unsealed.envelope, unsealed.signed_bytes,
                             unsealed.signature, unsealed.cid)

    def payload(self) -> dict[str, Any]:
        return _payload(self.iss, self.sub, self.aud, self.cmd, self.args, list(self.prf),
                        self.nonce, self.exp, self.iat, self.meta, self.cause)


def _payload(iss: str, sub: str, aud: str | None, cmd: str, args: dict[str, Any],
             prf: list[CID], nonce: bytes, exp: int | None, iat: int | None,
             meta: dict[str, Any] | None, cause: CID | None) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "iss": iss, "sub": sub, "cmd": cmd, "args": args, "prf": prf, "nonce": nonce,
        "exp": exp,
    }
    for key, value in (("aud", aud), ("iat", iat), ("meta", meta), ("cause", cause)):
        if value is not None:
            payload[key] = value
    return payload


def _from_payload(payload: dict[str, Any], envelope: bytes, signed_bytes: bytes,
                  signature: bytes, cid: CID) -> Invocation:
    try:
        return _checked(payload, envelope, signed_bytes, signature, cid)
    except MalformedToken as exc:
        # The CID's text form is built only on failure: it is not free on the hot path.
        raise MalformedToken(f"invocation {cid}: {exc.message}") from None


def _checked(payload: dict[str, Any], envelope: bytes, signed_bytes: bytes,
             signature: bytes, cid: CID) -> Invocation:
    # Each field is looked at with `type(...) is` first: the checkers (which name the
    # field and what came) run only for what is not plainly right.
    keys = payload.keys()
    if not keys >= _REQUIRED or not keys <= _FIELDS:
        check_keys(payload, _REQUIRED, _OPTIONAL, "the payload")  # raises, naming them
    prf = payload["prf"]
    if type(prf) is not list:
        check_type(prf, list, "prf")
    for link in prf:
        if not isinstance(link, CID):
            raise MalformedToken("prf must list delegation CIDs")
    aud = payload.get("aud")
    meta = payload.get("meta")
    if meta is not None and type(meta) is not dict:
        check_type(meta, dict, "meta")
    cause = payload.get("cause")
    if cause is not None and not isinstance(cause, CID):
        raise MalformedToken("cause must be a CID")
    args, nonce, exp, iat = payload["args"], payload["nonce"], payload["exp"], payload.get("iat")
    if type(args) is not dict:
        check_type(args, dict, "args")
    if type(nonce) is not bytes:
        check_type(nonce, bytes, "nonce")
    if type(exp) is not int or not 0 <= exp <= MAX_SAFE_TIME:
        check_time(exp, "exp", nullable=True)
    if iat is not None and (type(iat) is not int or not 0 <= iat <= MAX_SAFE_TIME):
        check_time(iat, "iat", nullable=True)
    return Invocation(
        iss=check_did(payload["iss"], "iss"),
        sub=check_did(payload["sub"], "sub"),
        aud=None if aud is None else check_did(aud, "aud"),
        cmd=check_command(payload["cmd"]),
        args=args,
        prf=tuple(prf),
        nonce=nonce,
        exp=exp,
        iat=iat,
        meta=meta,
        cause=cause,
        envelope=envelope,
        signed_bytes=signed_bytes,
        signature=signature,
        cid=cid,
    )


def invoke(
    issuer: Signer,
    subject: str,
    command: str,
    args: dict[str, Any] | None = None,
    proofs: Sequence[CID] = (),
    *,
    audience: str | None = None,
    expiration: int | None,
    issued_at: int | None = None,
    meta: dict[str, Any] | None = None,
    nonce: bytes | None = None,
    cause: CID | None = None,
) -> Invocation:
    """Sign an invocation. `proofs` are delegation CIDs, root (issued by the subject) first.

    Every field is checked before signing (MalformedToken naming it), so the signed
    payload is not parsed back: the invocation is made from what was signed."""
    sub = check_did(subject, "sub")
    aud = None if audience is None else check_did(audience, "aud")
    cmd = check_command(command)
    args = dict(args or {})
    prf = list(proofs)
    for link in prf:
        if not isinstance(link, CID):
            raise MalformedToken("prf must list delegation CIDs")
    for field, value in (("exp", expiration), ("iat", issued_at)):
        if value is not None and (type(value) is not int or not 0 <= value <= MAX_SAFE_TIME):
            check_time(value, field, nullable=True)
    if meta is not None:
        check_type(meta, dict, "meta")
    if cause is not None and not isinstance(cause, CID):
        raise MalformedToken("cause must be a CID")
    nonce = new_nonce() if nonce is None else check_type(nonce, bytes, "nonce")
    iss = check_did(issuer.did, "iss")
    sealed = seal(_payload(iss, sub, aud, cmd, args, prf, nonce, expiration, issued_at, meta,
                           cause), INVOCATION_TAG, issuer)
    return Invocation(iss, sub, aud, cmd, args, tuple(prf), nonce, expiration, issued_at, meta,
                      cause,
                      sealed.envelope, sealed.signed_bytes, sealed.signature, sealed.cid)
