"""Behaviors: what an actor does for an authorized message, alone or grouped in a role.

A behavior is registered for a command (checked then, not by never matching) and may
declare an attrs class for its args; the runtime structures the args into it before the
behavior runs and refuses the message with `InvalidArgs` naming each bad field if they
do not fit. A role is a class whose methods are behaviors, registered on an actor in
one call: the orchestrator and provider roles are built that way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import attrs

from dms.actor._args import is_args_type
from dms.actor._authority import checked_command
from dms.actor._errors import InvalidBehavior
from dms.actor._handle import Handle
from ucan import Chain, Invocation

A = TypeVar("A")
F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


@attrs.frozen
class Message(Generic[A]):
    """What a behavior receives: the authorized invocation and who sent it. `args` is
    an instance of the behavior's declared args type, or the raw IPLD map."""

    command: str
    args: A
    sender: Handle
    invocation: Invocation
    chain: Chain
    topic: str | None = None


Behavior = Callable[[Message[Any]], Awaitable[Any]]


@attrs.frozen
class BehaviorSpec:
    """A registered behavior: its command, the function, and its args type (if any).

    `replay_harmless`: a second run of the same message does nothing the first did
    not (an idempotent read, a heartbeat that only moves a "last heard" time forward).
    Its owner may declare such commands to admission (`Admission.declare_replay_harmless`),
    which then accepts them when their id can be remembered in memory only."""

    command: str
    run: Behavior
    args: type | None = None
    replay_harmless: bool = False


def behavior_spec(command: str, run: Behavior, args: type | None, *,
                  replay_harmless: bool = False) -> BehaviorSpec:
    """Check a registration: a well-formed command and an attrs args type."""
    checked_command(command)
    if args is not None and not is_args_type(args):
        raise InvalidBehavior(f"{command}: args must be an attrs class, got {args!r}")
    return BehaviorSpec(command, run, args, replay_harmless)


_MARK = "__dms_behavior__"


async def _unbound(message: Message[Any]) -> None:
    raise AssertionError("a marked method runs bound to its role")


def behavior(command: str, *, args: type | None = None,
             replay_harmless: bool = False) -> Callable[[F], F]:
    """Mark a `Role` method as the behavior for `command` (see `Actor.behavior`).

    `args` is an attrs class the message's args are structured into before it runs.
    `replay_harmless`: see `BehaviorSpec`; claim it only for a behavior whose second
    run of one message, at any time within that message's life, leaves the state as
    a single run at that later time would."""
    behavior_spec(command, _unbound, args)  # fails at the decorator, not at registration

    def mark(method: F) -> F:
        setattr(method, _MARK, (command, args, replay_harmless))
        return method

    return mark


def marked_behaviors(obj: object) -> list[BehaviorSpec]:
    """The behaviors of `obj`'s methods marked with `@behavior`, bound to `obj`."""
    specs = []
    for name in dir(type(obj)):
        mark = getattr(getattr(type(obj), name, None), _MARK, None)
        if mark is not None:
            command, args, replay_harmless = mark
            specs.append(behavior_spec(command, getattr(obj, name), args,
                                       replay_harmless=replay_harmless))
    return specs
