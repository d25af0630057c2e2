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


MAX_ITEMS = 250_000
"""CBOR items one value may hold. A token is a few dozen; a big invocation is big
strings (an ensemble's text) or a list of arguments. Decoded, an item costs up to
~100 bytes of Python objects, so this bounds what any input costs (~25 MB) before it
is refused. An input of fewer bytes than this cannot hold more items, and is not
walked: its nesting is checked after decoding (the native decoder does not recurse)."""


def check_cost(data: bytes) -> None:
    """MalformedToken, before any decoding, when `data` nests maps and lists deeper
    than MAX_DEPTH or holds more than MAX_ITEMS items (or an indefinite length). It
    walks the CBOR heads, skipping strings by their length, and stops at the first
    limit passed: a hostile input costs at most MAX_ITEMS steps and no memory (~60 ms
    here for a 4 MiB frame of empty lists). Input of at most MAX_ITEMS bytes cannot
    hold more items and is not walked; its nesting is checked once decoded."""
    if len(data) <= MAX_ITEMS:
        return
    end, at, items = len(data), 0, 0
    open_counts: list[int] = []  # items still to come in each open map or list
    while at < end:
        head = data[at]
        major, info = head >> 5, head & 0x1F
        at += 1
        if info < 24:
            value = info
        elif info < 28:
            size = 1 << (info - 24)
            value = int.from_bytes(data[at:at + size], "big")
            at += size
        else:
            raise MalformedToken(f"an indefinite length or a reserved head (0x{head:02x})")
        items += 1
        if items > MAX_ITEMS:
            raise MalformedToken(f"more than {MAX_ITEMS} CBOR items")
        if major == 6:  # a tag: its content is the item
            continue
        if major in (2, 3):
            at += value
        elif major in (4, 5):
            if len(open_counts) >= MAX_DEPTH:
                raise MalformedToken(f"maps and lists nested deeper than {MAX_DEPTH}")
            if value:
                open_counts.append(value * (2 if major == 5 else 1))
                continue
        while open_counts:  # this item is done: so is each container it completes
            open_counts[-1] -= 1
            if open_counts[-1]:
                break
            open_counts.pop()
        if not open_counts:
            return  # the top-level value is whole; the decoder judges what follows
