"""UCAN 1.0, sans-IO: did:key identities, delegations, invocations, policies,
revocation, containers and chain validation. No network, no clock of its own, no
imports from dms."""

from ucan.codec import CID, decode, encode
from ucan.command import check_command, proves
from ucan.container import (
    decode_container,
    encode_container,
    encode_container_text,
    read_tokens,
)
from ucan.delegation import Delegation, delegate
from ucan.did import did_from_public_key, public_key_from_did, verify_signature
from ucan.errors import (
    Expired,
    InvalidAudience,
    InvalidClaim,
    InvalidSignature,
    InvalidSubject,
    MalformedToken,
    MatchError,
    Revoked,
    TooEarly,
    UcanError,
    UnavailableProof,
)
from ucan.invocation import Invocation, invoke
from ucan.keys import SigningKey
from ucan.policy import Policy, parse_policy
from ucan.revocation import REVOKE, RevocationSet, revoke
from ucan.trust import TrustContext
from ucan.validate import Chain, validate_invocation

__all__ = [
    "CID", "Chain", "Delegation", "Expired", "InvalidAudience", "InvalidClaim",
    "InvalidSignature", "InvalidSubject", "Invocation", "MalformedToken", "MatchError",
    "Policy", "REVOKE", "RevocationSet", "Revoked", "SigningKey", "TooEarly", "TrustContext",
    "UcanError", "UnavailableProof", "check_command", "decode", "decode_container",
    "delegate", "did_from_public_key", "encode", "encode_container", "encode_container_text",
    "invoke", "parse_policy", "proves", "public_key_from_did", "read_tokens", "revoke",
    "validate_invocation", "verify_signature",
]
