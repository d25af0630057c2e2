"""The bounds every DAG-CBOR value here keeps, whichever codec read or wrote it.

Nesting is bounded because a remote peer chooses these bytes and the code that reads
the decoded value (policies, selectors, repr, the encoder's own checks) walks it. The
rule is counted in the data model, not in CBOR items: at most `MAX_DEPTH` maps and
lists nested inside each other (the top-level one counts; a CID is a leaf).
"""

from __future__ import annotations

from typing import Any

from ucan.errors import MalformedToken

MAX_DEPTH = 64
INT_MIN = -(2**64)
INT_MAX = 2**64 - 1

# Every map or list head is a byte in 0x80..0xbf; so are some bytes inside strings.
# Fewer such bytes than the limit proves the nesting is within it without a walk; the
# scan is worth it for token-sized input, while a big blob (a container) is mostly
# long strings in few containers, which the walk passes over faster.
_NOT_CONTAINER_HEADS = bytes(b for b in range(256) if not 0x80 <= b < 0xC0)
_SCANNED_UP_TO = 2048
_CONTAINERS = frozenset({dict, list})


def check_depth(value: Any, encoded: bytes) -> None:
    """MalformedToken when `value` (decoded from or encoded as `encoded`) nests maps and
    lists deeper than MAX_DEPTH. A token costs a C-speed scan; the rest, a walk over
    their maps and lists (never over the items of strings)."""
    if (len(encoded) <= _SCANNED_UP_TO
            and len(encoded.translate(None, _NOT_CONTAINER_HEADS)) <= MAX_DEPTH):
        return
    level = [value] if type(value) in _CONTAINERS else []
    depth = 0
    while level:
        depth += 1
        if depth > MAX_DEPTH:
            raise MalformedToken(f"maps and lists nested deeper than {MAX_DEPTH}")
        level = [item for container in level
                 for item in (container.values() if type(container) is dict else container)
                 if type(item) in _CONTAINERS]
