"""Actors: a key, an authority, an inbox of authorized messages and the behaviors they run.

An actor never sees a message that admission has not authorized. Its behaviors (and
its main task, if it has one) run in the actor's own nursery, which lives inside its
parent's: stopping an actor cancels its behaviors and its children, and so does its
expiry. A child never holds more than its parent (`dms.actor._authority`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar

import attrs
import trio

from dms.actor._args import InvalidArgs, structure_args, unstructure_result
from dms.actor._authority import Authority, checked_command, child_authority, clamp_expiry
from dms.actor._behavior import Behavior, BehaviorSpec, Message, behavior_spec, marked_behaviors
from dms.actor._errors import ActorStopped, BehaviorFailed, InvalidBehavior
from dms.actor._fair import DEFAULT_SHARE, FairQueue, FairShare
from dms.actor._grants import CLOCK_RECHECK, SHORTEST_WAIT, GrantTerm, renewal_time
from dms.actor._handle import Handle
from ucan import Delegation, Invocation, SigningKey, UcanError, delegate

log = logging.getLogger("dms.actor")

Main = Callable[["Actor"], Awaitable[None]]


class Runtime(Protocol):
    """What an actor needs from the system it lives in (`ActorSystem` is the one)."""

    did: str
    peer_id: str

    def clock(self) -> float: ...

    def adopt(self, inbox: str | None, *, parent: Actor, authority: Authority,
              main: Main | None, lasting: bool = False) -> Actor: ...

    def release(self, actor: Actor) -> None: ...

    def renew_grants(self, actor: Actor) -> None: ...

    def subscribe(self, actor: Actor, topic: str) -> None: ...

    async def request(self, actor: Actor, target: Handle, command: str, args: Any, *,
                      timeout: float, subject: str | None,
                      proofs: Sequence[Delegation] = ()) -> Any: ...

    async def deliver(self, actor: Actor, target: Handle, command: str, args: Any, *,
                      subject: str | None, proofs: Sequence[Delegation] = ()) -> None: ...

    async def publish(self, actor: Actor, topic: str, command: str, args: Any, *,
                      subject: str) -> None: ...

    async def reply(self, actor: Actor, request: Invocation, outcome: dict[str, Any],
                    to: Handle) -> None: ...


class Actor:
    """One actor. The node's root actor is `node.root`; others come from `spawn`."""

    def __init__(self, system: Runtime, key: SigningKey, inbox: str,
                 parent: Actor | None, authority: Authority, *, main: Main | None = None,
                 share: FairShare = DEFAULT_SHARE) -> None:
        self.system = system
        self.key = key
        self.parent = parent
        self.authority = authority
        self.handle = Handle(key.did, system.did, system.peer_id, inbox)
        self.delegations: tuple[Delegation, ...] = ()  # the node's unexpired grants to it
        self.grant_term: GrantTerm | None = None  # the current grants' term, if it has any
        self.failure: BaseException | None = None  # what ended its main task, if anything
        self._main = main
        self._behaviors: dict[str, BehaviorSpec] = {}
        self._work: FairQueue[tuple[Message[Any], bool]] = FairQueue(share)
        self._closed = False
        self._scope: trio.CancelScope | None = None
        self._nursery: trio.Nursery | None = None
        self._stopped = trio.Event()

    @property
    def id(self) -> str:
        return self.handle.id

    @property
    def running(self) -> bool:
        return self._nursery is not None

    def __repr__(self) -> str:
        return f"Actor({self.handle.inbox}, {self.id[:20]}...)"

    # -- behaviors --------------------------------------------------------------

    def behavior(self, command: str, *, args: type | None = None) -> Callable[[Behavior], Behavior]:
        """Decorator: run `fn(message)` for authorized invocations of `command`.

        The most specific registered command wins (`/a/b` before `/a`). With `args`
        (an attrs class) the message's args are structured into it first; args that do
        not fit are refused (`InvalidArgs`, each bad field named) and `fn` never runs.
        What `fn` returns is the reply's `ok` value: IPLD data or attrs instances.
        InvalidBehavior when the command is malformed or already has a behavior.
        """
        checked_command(command)

        def register(fn: Behavior) -> Behavior:
            self._add(behavior_spec(command, fn, args))
            return fn

        return register

    def register(self, role: R) -> R:
        """Register every behavior of `role` on this actor; `role.actor` becomes this actor."""
        if getattr(role, "actor", None) is not None:
            raise InvalidBehavior(f"{type(role).__name__} is registered on {role.actor} already")
        specs = marked_behaviors(role)
        for spec in specs:
            if spec.command in self._behaviors:
                raise InvalidBehavior(f"{spec.command} has a behavior on {self} already")
        for spec in specs:
            self._add(spec)
        role.actor = self
        return role

    def _add(self, spec: BehaviorSpec) -> None:
        if spec.command in self._behaviors:
            raise InvalidBehavior(f"{spec.command} has a behavior on {self} already")
        self._behaviors[spec.command] = spec

    def find_behavior(self, command: str) -> BehaviorSpec | None:
        probe = command
        while True:
            if probe in self._behaviors:
                return self._behaviors[probe]
            if probe in ("/", ""):
                return None
            probe = probe.rsplit("/", 1)[0] or "/"

    def subscribe(self, topic: str) -> None:
        self.system.subscribe(self, topic)

    # -- talking to others ----------------------------------------------------------

    async def invoke(self, target: Handle, command: str, args: Any = None, *,
                     timeout: float = 10.0, subject: str | None = None,
                     proofs: Sequence[Delegation] = ()) -> Any:
        """Request/reply. Returns the reply's `ok` value; raises RemoteError with the
        remote failure's name, or RequestTimeout naming the peer.

        `args` is an IPLD map or an attrs instance; `proofs` are delegations to build
        the chain from besides those the node holds (e.g. one just handed over)."""
        self._require_running()
        return await self.system.request(self, target, command, unstructure_result(args or {}),
                                         timeout=timeout, subject=subject, proofs=proofs)

    async def send(self, target: Handle, command: str, args: Any = None, *,
                   subject: str | None = None, proofs: Sequence[Delegation] = ()) -> None:
        """One-way message (no reply; failures are only counted on the receiver)."""
        self._require_running()
        await self.system.deliver(self, target, command, unstructure_result(args or {}),
                                  subject=subject, proofs=proofs)

    async def broadcast(self, topic: str, command: str, args: Any = None, *,
                        subject: str) -> None:
        """Publish on a pubsub topic. `args.topic` is set to `topic` so grants can
        restrict a broadcast to one topic with a policy."""
        self._require_running()
        await self.system.publish(self, topic, command,
                                  {**unstructure_result(args or {}), "topic": topic},
                                  subject=subject)

    def _require_running(self) -> None:
        if self._stopped.is_set():
            raise ActorStopped(self.id)

    def delegate(self, audience: str, command: str, *, policy: Sequence[Any] = (),
                 lifetime: float | None = None) -> Delegation:
        """Delegate `command` over this actor's own id (its inbox is its resource) to
        `audience`, never past this actor's expiry: an orchestrator lets the providers
        it asked answer it, an allocation actor lets its orchestrator control it alone."""
        checked_command(command)
        exp = clamp_expiry(self.authority.expires, self.system.clock(), lifetime)
        return delegate(self.key, audience, command, policy=list(policy), expiration=exp)

    # -- children ---------------------------------------------------------------------

    async def spawn(self, inbox: str | None = None, *, commands: Sequence[str],
                    lifetime: float | None = None, main: Main | None = None,
                    lasting: bool = False) -> Actor:
        """Start a child actor with a fresh ephemeral key in this actor's nursery.

        The node delegates to it exactly `commands` (each must be within this actor's
        own; ExceedsParent otherwise), until `lifetime` seconds from now or this actor's
        expiry, whichever is sooner; the child stops then. Those grants come in terms
        of at most `GRANT_LIFETIME`, never past this actor's own, renewed while the
        child runs. `main(child)`, if given, runs
        in the child's nursery; when it returns or fails, the child stops (a failure is
        logged and kept in `child.failure`, never raised into the parent). A `lasting`
        child's key derives from the node's and `inbox`: it has the same id after the
        node restarts (its grants are new ones; revoked ones stay revoked).
        """
        if self._nursery is None:
            raise ActorStopped(self.id)
        authority = child_authority(self.authority, commands, lifetime, self.system.clock())
        child = self.system.adopt(inbox, parent=self, authority=authority, main=main,
                                  lasting=lasting)
        await self._nursery.start(child.run)
        return child

    async def stop(self) -> None:
        """Cancel this actor's behaviors, main task and children; wait until gone."""
        if self._scope is not None:
            self._scope.cancel()
        await self._stopped.wait()

    async def wait_stopped(self) -> None:
        await self._stopped.wait()

    # -- running ------------------------------------------------------------------------

    def offer(self, message: Message[Any], wants_reply: bool) -> bool:
        """Start an authorized message's behavior, or queue it when the actor is at its
        concurrency limit or its sender at its share of it; False when the queue (or
        the sender's share of it) is full, or the actor has stopped."""
        if self._closed:
            return False
        sender = message.sender.id
        nursery = self._nursery
        size = len(message.invocation.envelope)
        if nursery is not None and self._work.start(sender, size):  # nothing waits: no queue
            nursery.start_soon(self._dispatch, message, wants_reply, sender)
            return True
        if not self._work.offer(sender, (message, wants_reply), size):
            return False
        self._start_ready()
        return True

    def _start_ready(self) -> None:
        nursery = self._nursery
        if nursery is None:
            return
        for sender, (message, wants_reply) in self._work.ready():
            nursery.start_soon(self._dispatch, message, wants_reply, sender)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            with trio.CancelScope() as scope:
                self._scope = scope
                expires = self.authority.expires
                if expires is not None:  # the actor ends with its authority
                    scope.deadline = trio.current_time() + max(0.0, expires - self.system.clock())
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    try:
                        task_status.started()
                        if renewal_time(self.grant_term, self.authority) is not None:
                            nursery.start_soon(self._renew_grants)
                        if self._main is not None:
                            nursery.start_soon(self._run_main, self._main, scope)
                        self._start_ready()  # what arrived before it ran
                        await trio.sleep_forever()
                    finally:
                        # Stopping: nothing more starts here, and what waits is dropped.
                        self._nursery = None
                        self._close()
        finally:
            self._nursery = None
            self._close()
            self.system.release(self)
            self._stopped.set()

    async def _renew_grants(self) -> None:
        """Have the node renew its grants to this actor at half their term, for as long
        as it runs: an actor that lives as long as its node keeps working on grants
        that each end (`dms.actor._grants`)."""
        while (due := renewal_time(self.grant_term, self.authority)) is not None:
            wait = due - self.system.clock()
            if wait <= 0:
                self.system.renew_grants(self)
                wait = SHORTEST_WAIT  # a term that cannot reach further never spins
            # Grants end by the node's wall clock, which may jump (NTP, a suspended VM):
            # look at it again now and then rather than sleep a whole half-term.
            await trio.sleep(min(wait, CLOCK_RECHECK))

    def _close(self) -> None:
        self._closed = True
        self._work.clear()

    async def _run_main(self, main: Main, scope: trio.CancelScope) -> None:
        try:
            await main(self)
        except Exception as exc:  # the actor's own failure: it stops, its parent goes on
            self.failure = exc
            log.warning("%r: main task failed: %s: %s", self, type(exc).__name__, exc,
                        exc_info=exc)
        finally:
            scope.cancel()

    async def _dispatch(self, message: Message[Any], wants_reply: bool, sender: str) -> None:
        try:
            outcome = await self._outcome(message)
            if wants_reply:
                await self.system.reply(self, message.invocation, outcome, message.sender)
        finally:
            self._work.done(sender)
            self._start_ready()

    async def _outcome(self, message: Message[Any]) -> dict[str, Any]:
        spec = self.find_behavior(message.command)
        if spec is None:
            return _error("NoSuchBehavior",
                          f"{self.handle.inbox} has no behavior for {message.command}")
        try:
            if spec.args is not None:
                message = attrs.evolve(message, args=structure_args(
                    _without_topic(message, spec.args), spec.args))
            return {"ok": unstructure_result(await spec.run(message))}
        except InvalidArgs as exc:
            return _error("InvalidArgs", str(exc))
        except BehaviorFailed as exc:
            return _error(exc.name, exc.message)
        except UcanError as exc:
            return _error(exc.name, exc.message)
        except Exception as exc:  # a behavior's bug: an error reply, the details in our log
            log.exception("%r: behavior for %s failed", self, message.command)
            return _error("BehaviorFailed", f"{type(exc).__name__} (details are in the "
                                            f"log of the node that ran it)")


class Role:
    """Behaviors grouped in a class: methods marked with `@behavior(command, args=T)`.

    `actor.register(role)` registers every marked method and sets `role.actor`; a role
    instance belongs to one actor. A role keeps its state in attributes of its own.
    """

    actor: Actor


R = TypeVar("R", bound=Role)


def _without_topic(message: Message[Any], kind: type) -> Any:
    """A broadcast's args carry `topic` (for grants to restrict); a typed behavior sees it
    only if its args type has a `topic` field (`message.topic` says it anyway)."""
    args = message.args
    if message.topic is None or not isinstance(args, dict) or "topic" not in args:
        return args
    if any(field.name == "topic" for field in attrs.fields(kind)):
        return args
    return {key: value for key, value in args.items() if key != "topic"}


def _error(name: str, message: str) -> dict[str, Any]:
    return {"err": {"name": name, "message": message}}
