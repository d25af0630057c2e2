"""Commands: slash-delimited behavior paths and the segment-prefix rule.

`/dms/deployment` proves `/dms/deployment` and `/dms/deployment/bid`, but never
`/dms/deployments`: delegation covers whole path segments, not string prefixes.

The spec says commands MUST be lowercase, in every script: `/dms/Ärger` and `/ΣΥΣ` are
refused as `/dms/Deploy` is, because an implementation that compares them case-folded
and one that compares them exactly would disagree about what a grant covers.
"""

from __future__ import annotations

import re

from ucan.errors import MalformedToken

_SEGMENT = re.compile(r"[^/\s]+")  # \s: whitespace in any script

# Every token names a command, and a node sees the same few again and again: the ones
# found well-formed are remembered (short ones only, and only the first few thousand,
# so a peer minting junk commands bounds this set and slows nobody but the slow path).
_WELL_FORMED: set[str] = set()
_REMEMBERED = 4096
_REMEMBERED_LENGTH = 256


def check_command(command: object) -> str:
    """Return `command` when it is well-formed, else raise MalformedToken naming why."""
    if type(command) is str and command in _WELL_FORMED:
        return command
    checked = _check_command(command)
    if len(checked) <= _REMEMBERED_LENGTH and len(_WELL_FORMED) < _REMEMBERED:
        _WELL_FORMED.add(checked)
    return checked


def _check_command(command: object) -> str:
    if not isinstance(command, str):
        raise MalformedToken(f"a command must be a string, got {type(command).__name__}")
    if command == "/":
        return command
    if not command.startswith("/"):
        raise MalformedToken(f"command {command!r} must begin with '/'")
    if command.endswith("/"):
        raise MalformedToken(f"command {command!r} must not end with '/'")
    if command.lower() != command:  # str.lower: Unicode case, not only A-Z
        raise MalformedToken(f"command {command!r} must be lowercase")
    for segment in command[1:].split("/"):
        if not segment:
            raise MalformedToken(f"command {command!r} has an empty segment")
        if not _SEGMENT.fullmatch(segment):
            raise MalformedToken(
                f"command {command!r}: segment {segment!r} must not contain whitespace"
            )
    return command


def proves(delegated: str, invoked: str) -> bool:
    """True when a grant of `delegated` covers an invocation of `invoked`."""
    return (
        delegated == "/"
        or invoked == delegated
        or (invoked.startswith(delegated) and invoked[len(delegated)] == "/")
    )
