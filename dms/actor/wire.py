"""Messages on the wire: one UCAN container holding an invocation and its proofs.

Delegations are decoded once and cached by their bytes, so a steady stream over one
chain costs one invocation decode and one signature check per message.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

import attrs

from ucan import CID, Delegation, Invocation, MalformedToken, decode_container, encode_container
from ucan.envelope import ACCEPTED_TAGS, DELEGATION_TAG, INVOCATION_TAG

REPLY = "/dms/actor/reply"
MAX_PROOFS = 32


@attrs.frozen
class Envelope:
    """A decoded (not yet verified) message."""

    invocation: Invocation
    proofs: dict[CID, Delegation]


def encode_message(invocation: Invocation, proofs: Iterable[Delegation] = ()) -> bytes:
    return encode_container([invocation.envelope, *(d.envelope for d in proofs)])


def _kind(token: bytes) -> str | None:
    """Cheap peek at the type tag so each token is decoded by the right class (the
    decoder then checks everything; a wrong peek only makes decoding fail)."""
    head = token[67:140]  # after array(2) + 64-byte signature
    for tag, kind in ACCEPTED_TAGS.items():
        if tag.encode() in head:
            return kind
    return None


class WireDecoder:
    def __init__(self, cache_size: int = 4096) -> None:
        self._delegations: OrderedDict[bytes, Delegation] = OrderedDict()
        self._cache_size = cache_size

    def decode(self, data: bytes) -> Envelope:
        """Parse a message; MalformedToken unless it is one invocation plus delegations."""
        tokens = decode_container(data)
        if len(tokens) > MAX_PROOFS + 1:
            raise MalformedToken(f"a message carries at most {MAX_PROOFS} proofs")
        invocation: Invocation | None = None
        proofs: dict[CID, Delegation] = {}
        for token in tokens:
            if _kind(token) == DELEGATION_TAG:
                delegation = self._delegation(token)
                proofs[delegation.cid] = delegation
            elif _kind(token) == INVOCATION_TAG:
                if invocation is not None:
                    raise MalformedToken("a message carries exactly one invocation")
                invocation = Invocation.decode(token)
            else:
                raise MalformedToken("a message token is neither a delegation nor an invocation")
        if invocation is None:
            raise MalformedToken("a message must carry an invocation")
        return Envelope(invocation, proofs)

    def _delegation(self, token: bytes) -> Delegation:
        cached = self._delegations.get(token)
        if cached is not None:
            self._delegations.move_to_end(token)
            return cached
        delegation = Delegation.decode(token)
        self._delegations[token] = delegation
        if len(self._delegations) > self._cache_size:
            self._delegations.popitem(last=False)
        return delegation
