"""The failures a UCAN can have, named as the UCAN 1.0 test vectors name them.

Every error carries `name` (the vector's name, stable for machines) and a message for
people that says which token (CID, position in the chain) failed and why.
"""

from __future__ import annotations


class UcanError(Exception):
    """Base of every UCAN failure."""

    name = "UcanError"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return f"{self.name}: {self.message}"


class MalformedToken(UcanError):
    """Bytes that are not a well-formed, canonically encoded UCAN."""

    name = "MalformedToken"


class InvalidSignature(UcanError):
    name = "InvalidSignature"


class InvalidClaim(UcanError):
    """The chain does not prove the claimed command/subject (widening, bad powerline...)."""

    name = "InvalidClaim"


class UnavailableProof(UcanError):
    name = "UnavailableProof"


class Expired(UcanError):
    name = "Expired"


class TooEarly(UcanError):
    name = "TooEarly"


class InvalidAudience(UcanError):
    name = "InvalidAudience"


class InvalidSubject(UcanError):
    name = "InvalidSubject"


class MatchError(UcanError):
    """The invocation's arguments do not satisfy a policy in the chain."""

    name = "MatchError"


class Revoked(UcanError):
    name = "Revoked"


ALL_ERRORS: tuple[type[UcanError], ...] = (
    MalformedToken,
    InvalidSignature,
    InvalidClaim,
    UnavailableProof,
    Expired,
    TooEarly,
    InvalidAudience,
    InvalidSubject,
    MatchError,
    Revoked,
)
