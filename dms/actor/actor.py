"""Actors: a key, an inbox of authorized messages, and the behaviors they run.

An actor never sees a message that the node's admission pipeline has not authorized.
Its behaviors run in the actor's own nursery, which lives inside its parent's: stopping
an actor cancels its behaviors and its children.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import trio

from dms.actor.errors import ActorStopped, BehaviorFailed
from dms.actor.handle import Handle
from ucan import Chain, Delegation, Invocation, SigningKey, UcanError

if TYPE_CHECKING:
    from dms.node import Node


@attrs.frozen
class Message:
    """What a behavior receives: the authorized invocation and who sent it."""

    command: str
    args: dict[str, Any]
    sender: Handle
    invocation: Invocation
    chain: Chain
    topic: str | None = None


Behavior = Callable[[Message], Awaitable[Any]]


class Actor:
    """One actor. Create them with `Node.root` and `Actor.spawn`, not directly."""

    def __init__(self, node: Node, key: SigningKey, inbox: str, parent: Actor | None,
                 *, concurrency: int = 64, queue: int = 1024) -> None:
        self.node = node
        self.key = key
        self.parent = parent
        self.handle = Handle(key.did, node.did, node.peer_id, inbox)
        self.delegations: tuple[Delegation, ...] = ()
        self._behaviors: dict[str, Behavior] = {}
        self._send, self._receive = trio.open_memory_channel[tuple[Message, bool]](queue)
        self._limiter = trio.CapacityLimiter(concurrency)
        self._scope: trio.CancelScope | None = None
        self._nursery: trio.Nursery | None = None
        self._stopped = trio.Event()
        self.topics: set[str] = set()

    @property
    def id(self) -> str:
        return self.handle.id

    def __repr__(self) -> str:
        return f"Actor({self.handle.inbox}, {self.id[:20]}...)"

    # -- behaviors --------------------------------------------------------------

    def behavior(self, command: str) -> Callable[[Behavior], Behavior]:
        """Decorator: run `fn(message)` for authorized invocations of `command`.

        The most specific registered command wins (`/a/b` before `/a`); what the
        behavior returns is the reply's `ok` value and must be IPLD data.
        """

        def register(fn: Behavior) -> Behavior:
            self._behaviors[command] = fn
            return fn

        return register

    def find_behavior(self, command: str) -> Behavior | None:
        probe = command
        while True:
            if probe in self._behaviors:
                return self._behaviors[probe]
            if probe in ("/", ""):
                return None
            probe = probe.rsplit("/", 1)[0] or "/"

    def subscribe(self, topic: str) -> None:
        self.topics.add(topic)
        self.node.subscribe(self, topic)

    # -- talking to others ----------------------------------------------------------

    async def invoke(self, target: Handle, command: str, args: dict[str, Any] | None = None,
                     *, timeout: float = 10.0, subject: str | None = None) -> Any:
        """Request/reply. Returns the reply's `ok` value; raises RemoteError with the
        remote failure's name, or RequestTimeout naming the peer."""
        return await self.node.request(self, target, command, args or {}, timeout=timeout,
                                       subject=subject)

    async def send(self, target: Handle, command: str, args: dict[str, Any] | None = None,
                   *, subject: str | None = None) -> None:
        """One-way message (no reply, failures are only counted on the receiver)."""
        await self.node.deliver(self, target, command, args or {}, subject=subject)

    async def broadcast(self, topic: str, command: str, args: dict[str, Any] | None = None,
                        *, subject: str) -> None:
        """Publish on a pubsub topic. `args.topic` is set to `topic` so grants can
        restrict a broadcast to one topic with a policy."""
        await self.node.publish(self, topic, command, {**(args or {}), "topic": topic},
                                subject=subject)

    # -- children ---------------------------------------------------------------------

    async def spawn(self, inbox: str | None = None, *, commands: Sequence[str] = ("/",),
                    lifetime: float | None = None) -> Actor:
        """Start a child actor with a fresh ephemeral key. The node delegates to it (as a
        powerline: whatever the node can prove) exactly `commands`, for at most
        `lifetime` seconds. The child runs in this actor's nursery and stops with it."""
        if self._nursery is None:
            raise ActorStopped(self.id)
        child = self.node.create_actor(inbox, parent=self, commands=commands,
                                       lifetime=lifetime)
        await self._nursery.start(child.run)
        return child

    async def stop(self) -> None:
        """Cancel this actor's behaviors and children and wait until they are gone."""
        if self._scope is not None:
            self._scope.cancel()
        await self._stopped.wait()

    # -- running ------------------------------------------------------------------------

    def offer(self, message: Message, wants_reply: bool) -> bool:
        """Start an authorized message's behavior, or queue it when the actor is at its
        concurrency limit; False when the inbox is full too."""
        nursery = self._nursery
        if nursery is not None and self._receive.statistics().current_buffer_used == 0:
            token = object()  # nothing queued ahead of it: start at once, saving a hop
            try:
                self._limiter.acquire_on_behalf_of_nowait(token)
            except trio.WouldBlock:
                pass
            else:
                nursery.start_soon(self._dispatch, message, wants_reply, token)
                return True
        try:
            self._send.send_nowait((message, wants_reply))
        except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
            return False
        return True

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            with trio.CancelScope() as scope:
                self._scope = scope
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    task_status.started()
                    async for message, wants_reply in self._receive:
                        token = object()
                        await self._limiter.acquire_on_behalf_of(token)
                        nursery.start_soon(self._dispatch, message, wants_reply, token)
        finally:
            self._nursery = None
            self._send.close()
            self.node.forget_actor(self)
            self._stopped.set()

    async def _dispatch(self, message: Message, wants_reply: bool, token: object) -> None:
        try:
            behavior = self.find_behavior(message.command)
            if behavior is None:
                outcome: dict[str, Any] = _error("NoSuchBehavior",
                                                 f"{self.handle.inbox} has no behavior for "
                                                 f"{message.command}")
            else:
                try:
                    outcome = {"ok": await behavior(message)}
                except BehaviorFailed as exc:
                    outcome = _error(exc.name, exc.message)
                except UcanError as exc:
                    outcome = _error(exc.name, exc.message)
                except Exception as exc:  # a behavior's bug is the caller's error reply
                    outcome = _error("BehaviorFailed", f"{type(exc).__name__}: {exc}")
            if wants_reply:
                await self.node.reply(self, message.invocation, outcome, message.sender)
        finally:
            self._limiter.release_on_behalf_of(token)


def _error(name: str, message: str) -> dict[str, Any]:
    return {"err": {"name": name, "message": message}}


def expiry(now: float, lifetime: float | None) -> int | None:
    return None if lifetime is None else math.floor(now + lifetime)
