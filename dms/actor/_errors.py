"""Failures an actor's caller sees."""

from __future__ import annotations


class ActorError(Exception):
    """Base of the actor runtime's errors."""


class RemoteError(ActorError):
    """The remote actor answered with an error. `name` is the failure's stable name:
    a UCAN failure (`InvalidClaim`, `Expired`, ...) when the request was refused, or
    `InvalidArgs` / `BehaviorFailed` / `NoSuchBehavior` / `Busy` when it was authorized
    but not done."""

    def __init__(self, name: str, message: str, peer: str, command: str) -> None:
        super().__init__(f"{name}: {message} (from {peer}, for {command})")
        self.name = name
        self.message = message
        self.peer = peer
        self.command = command


class RequestTimeout(ActorError):
    def __init__(self, peer: str, command: str, timeout: float) -> None:
        super().__init__(f"no reply from {peer} to {command} within {timeout:g} s")
        self.peer = peer
        self.command = command
        self.timeout = timeout


class ActorStopped(ActorError):
    def __init__(self, actor: str) -> None:
        super().__init__(f"actor {actor} has stopped")
        self.actor = actor


class ExceedsParent(ActorError):
    """A spawn asked for more than the spawning actor has: a command outside its
    commands, or no commands at all. A child never exceeds its parent."""


class InvalidBehavior(ActorError):
    """A behavior cannot be registered: its command is malformed (UCAN commands are
    lowercase, slash-separated, without a trailing slash), taken, or its args type is
    not an attrs class."""


class Undeliverable(ActorError):
    """The carrier could not hand a message to the peer (no link, link closed)."""

    def __init__(self, peer: str, reason: str) -> None:
        super().__init__(f"cannot reach {peer}: {reason}")
        self.peer = peer
        self.reason = reason


class BehaviorFailed(Exception):
    """Raise inside a behavior to send the caller an error with this name and message."""

    def __init__(self, message: str, name: str = "BehaviorFailed") -> None:
        super().__init__(message)
        self.name = name
        self.message = message
