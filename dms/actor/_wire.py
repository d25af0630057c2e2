"""Messages on the wire: one UCAN container holding an invocation and its proofs.

Decoding goes through `TrustContext.open_container`, which answers delegations it has
seen before from a cache: a steady stream over one chain costs one invocation decode
and one signature check per message.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from ucan import CID, Delegation, Invocation, MalformedToken, TrustContext, encode_container

REPLY = "/dms/actor/reply"
RAW_CONTAINER = b"\x40"
MAX_PROOFS = 32


@attrs.frozen
class Envelope:
    """A decoded (not yet verified) message."""

    invocation: Invocation
    proofs: dict[CID, Delegation]


def encode_message(invocation: Invocation, proofs: Iterable[Delegation] = ()) -> bytes:
    if not proofs:
        return encode_container((invocation.envelope,))
    return encode_container([invocation.envelope, *(d.envelope for d in proofs)])


def decode_message(data: bytes, trust: TrustContext) -> Envelope:
    """Parse a message; MalformedToken unless it is one invocation plus its proofs, in
    a raw-bytes container (no base64, no gzip: nothing to inflate before a signature
    has been checked)."""
    if data[:1] != RAW_CONTAINER:
        raise MalformedToken("a message is a raw-bytes container (header 0x40)")
    invocation, proofs = trust.open_container(data, max_tokens=MAX_PROOFS + 1)
    return Envelope(invocation, proofs)
