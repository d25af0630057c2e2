"""What an actor may do on its node's behalf, and what its children may: sans-IO.

A node's root actor holds everything (`/`, no expiry). A child gets a subset: every
command it names must be proved by one of its parent's, and its expiry is never later
than its parent's. The grants the node signs for the child say exactly that, in terms
that each end and are renewed (`dms.actor._grants`), so a grandchild cannot be given
more than the child holds, and nothing outlives its parent.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import attrs

from dms.actor._errors import ExceedsParent, InvalidBehavior
from ucan import MalformedToken, check_command, proves


@attrs.frozen
class Authority:
    """Commands (over the node's resources, and whatever the node can prove) and the
    Unix time at which they end (None: no end of its own, for the root and for actors
    that last as long as it; the node's grants to those still end, and are renewed)."""

    commands: tuple[str, ...]
    expires: int | None

    def covers(self, command: str) -> bool:
        return any(proves(held, command) for held in self.commands)


ROOT_AUTHORITY = Authority(("/",), None)


def checked_command(command: str) -> str:
    """`command` if it is a well-formed UCAN command, else InvalidBehavior naming why."""
    try:
        return check_command(command)
    except MalformedToken as exc:
        raise InvalidBehavior(exc.message) from None


def child_authority(parent: Authority, commands: Sequence[str], lifetime: float | None,
                    now: float) -> Authority:
    """The authority of a child spawned now for `lifetime` seconds (None: as long as its
    parent) with `commands`; ExceedsParent if it would hold what the parent does not.
    No commands is a child that acts only on its own authority (over its own id: an
    allocation actor that its orchestrator drives)."""
    if isinstance(commands, str):
        raise TypeError("commands is a sequence of commands, not one string")
    for command in commands:
        checked_command(command)
        if not parent.covers(command):
            raise ExceedsParent(f"command {command!r} is not within the parent's "
                                f"{list(parent.commands)}")
    if lifetime is not None and lifetime <= 0:
        raise ValueError(f"lifetime must be positive, got {lifetime}")
    return Authority(tuple(dict.fromkeys(commands)), clamp_expiry(parent.expires, now, lifetime))


def clamp_expiry(limit: int | None, now: float, lifetime: float | None) -> int | None:
    """An expiry `lifetime` seconds from now, never later than `limit`."""
    wanted = None if lifetime is None else math.floor(now + lifetime)
    if limit is None:
        return wanted
    return limit if wanted is None else min(wanted, limit)
