"""Delegations: signed grants of a command (with a policy) from issuer to audience."""

from __future__ import annotations

from typing import Any

import attrs

from ucan.codec import CID
from ucan.command import check_command
from ucan.envelope import DELEGATION_TAG, Signer, Unsealed, seal, unseal
from ucan.errors import MalformedToken
from ucan.policy import Policy, parse_policy
from ucan.token import check_did, check_keys, check_time, check_type, new_nonce

_REQUIRED = {"iss", "aud", "sub", "cmd", "pol", "nonce", "exp"}
_OPTIONAL = {"meta", "nbf"}


@attrs.frozen
class Delegation:
    """A decoded delegation. `sub is None` is a powerline (any subject the chain proves)."""

    iss: str
    aud: str
    sub: str | None
    cmd: str
    policy: Policy
    nonce: bytes
    exp: int | None
    nbf: int | None
    meta: dict[str, Any] | None
    envelope: bytes = attrs.field(repr=False)
    signed_bytes: bytes = attrs.field(repr=False)
    signature: bytes = attrs.field(repr=False)
    cid: CID

    @property
    def is_powerline(self) -> bool:
        return self.sub is None

    @classmethod
    def decode(cls, data: bytes) -> Delegation:
        """Parse envelope bytes; MalformedToken for anything but a well-formed delegation.

        The signature is not verified here; validation does it (once per CID).
        """
        return cls.from_unsealed(unseal(data))

    @classmethod
    def from_unsealed(cls, unsealed: Unsealed) -> Delegation:
        """The delegation in an already unsealed envelope (MalformedToken if it is not one)."""
        if unsealed.kind != DELEGATION_TAG:
            raise MalformedToken(f"token {unsealed.cid} is an invocation, not a delegation")
        return _from_payload(unsealed.payload, unsealed.envelope, unsealed.signed_bytes,
                             unsealed.signature, unsealed.cid)

    def payload(self) -> dict[str, Any]:
        return _payload(self.iss, self.aud, self.sub, self.cmd, list(self.policy.source),
                        self.nonce, self.exp, self.nbf, self.meta)


def _payload(iss: str, aud: str, sub: str | None, cmd: str, pol: list[Any], nonce: bytes,
             exp: int | None, nbf: int | None, meta: dict[str, Any] | None) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "iss": iss, "aud": aud, "sub": sub, "cmd": cmd, "pol": pol, "nonce": nonce, "exp": exp,
    }
    if nbf is not None:
        payload["nbf"] = nbf
    if meta is not None:
        payload["meta"] = meta
    return payload


def _from_payload(payload: dict[str, Any], envelope: bytes, signed_bytes: bytes,
                  signature: bytes, cid: CID) -> Delegation:
    try:
        return _checked(payload, envelope, signed_bytes, signature, cid)
    except MalformedToken as exc:
        # The CID's text form is built only on failure: it is not free on the hot path.
        raise MalformedToken(f"delegation {cid}: {exc.message}") from None


def _checked(payload: dict[str, Any], envelope: bytes, signed_bytes: bytes,
             signature: bytes, cid: CID) -> Delegation:
    check_keys(payload, _REQUIRED, _OPTIONAL, "the payload")
    sub = payload["sub"]
    meta = payload.get("meta")
    if meta is not None:
        check_type(meta, dict, "meta")
    try:
        policy = parse_policy(payload["pol"])
    except MalformedToken as exc:
        raise MalformedToken(f"pol: {exc.message}") from None
    return Delegation(
        iss=check_did(payload["iss"], "iss"),
        aud=check_did(payload["aud"], "aud"),
        sub=None if sub is None else check_did(sub, "sub"),
        cmd=check_command(payload["cmd"]),
        policy=policy,
        nonce=check_type(payload["nonce"], bytes, "nonce"),
        exp=check_time(payload["exp"], "exp", nullable=True),
        nbf=check_time(payload.get("nbf"), "nbf", nullable=True),
        meta=meta,
        envelope=envelope,
        signed_bytes=signed_bytes,
        signature=signature,
        cid=cid,
    )


class _Self:
    """Marker: the subject defaults to the issuer (a root delegation)."""


ISSUER: Any = _Self()


def delegate(
    issuer: Signer,
    audience: str,
    command: str,
    *,
    subject: str | None = ISSUER,
    policy: list[Any] | tuple[Any, ...] = (),
    expiration: int | None,
    not_before: int | None = None,
    meta: dict[str, Any] | None = None,
    nonce: bytes | None = None,
) -> Delegation:
    """Issue and sign a delegation. `subject=None` makes a powerline; the default
    subject is the issuer itself (a root grant over the issuer's own resources).
    `expiration` is required on purpose: pass None only when "never" is meant.
    MalformedToken, before anything is signed, for times out of range or a `not_before`
    later than `expiration` (a grant that could never be used)."""
    check_time(expiration, "exp", nullable=True)
    check_time(not_before, "nbf", nullable=True)
    if expiration is not None and not_before is not None and not_before > expiration:
        raise MalformedToken(
            f"nbf {not_before} is later than exp {expiration}: the delegation would never "
            "be valid"
        )
    sub = issuer.did if subject is ISSUER else subject
    payload = _payload(issuer.did, check_did(audience, "aud"), sub, check_command(command),
                       list(policy), new_nonce() if nonce is None else nonce, expiration,
                       not_before, meta)
    parse_policy(payload["pol"])  # refuse to sign a policy nobody could evaluate
    sealed = seal(payload, DELEGATION_TAG, issuer)
    return _from_payload(sealed.payload, sealed.envelope, sealed.signed_bytes,
                         sealed.signature, sealed.cid)
