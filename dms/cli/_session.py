"""Talking to a node's deployment service as the user: the CLI is a client node.

A `Session` is `open_node` with no listen address, bootstrapped to the node's address,
holding the user's key and grants: exactly what a Python script does. Each call is one
UCAN invocation of a root behavior (`/dms/node/deployment/...`, `/dms/node/info`, ...);
there is no other door into the node.
Failures become the CLI's errors: a refusal is `OperationFailed` naming the UCAN
failure (and, for a missing grant, which one is missing and who can give it), silence
or a broken link is `Unreachable`. What the node answers is structured into typed
views; a malformed answer fails the command, never the process.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import attrs
import trio

from dms.actor import (
    Handle,
    InvalidArgs,
    RemoteError,
    RequestTimeout,
    Undeliverable,
    structure_args,
)
from dms.deployment import (
    EVENTS,
    JOIN,
    LEAVE,
    LIST,
    LOGS,
    NEW,
    PLAN,
    SHUTDOWN,
    STATUS,
    DeploymentId,
    DeploymentView,
    EventsQuery,
    EventView,
    LogsRequest,
    NewDeployment,
    PlanRequest,
    PlanView,
)
from dms.net import NetError
from dms.node import Node, open_node
from dms.provider import wire
from ucan import Delegation, SigningKey, UcanError, delegate, proves

from ._errors import OperationFailed, Unreachable

T = TypeVar("T")

CAPABILITY_FAILURES = frozenset(kind.__name__ for kind in UcanError.__subclasses__())
"""Refusals that mean the caller's authority does not reach (the UCAN failure names)."""
CONNECT_TIMEOUT = 5.0
CALL_TIMEOUT = 15.0
EVENTS_WAIT = 10.0
"""Seconds one long-poll for events waits on the node (it allows up to 30)."""


@attrs.frozen
class Target:
    """Whom to reach and as whom."""

    address: str
    did: str | None  # the node expected there (None: whoever answers)
    key: SigningKey
    proofs: tuple[Delegation, ...] = ()
    names: dict[str, str] = attrs.field(factory=dict)  # DID -> what to call it


@attrs.frozen
class ListedDeployment:
    id: str
    phase: str


@attrs.frozen
class _Listing:
    deployments: tuple[ListedDeployment, ...]


@attrs.frozen
class EventsPage:
    events: tuple[EventView, ...]
    final: bool  # nothing more will come


@attrs.frozen
class _Submitted:
    id: str


class Session:
    """Calls on one node's deployment service, as the user of `target`."""

    def __init__(self, node: Node, target: Target, handle: Handle) -> None:
        self.node = node
        self.target = target
        self.handle = handle

    async def new(self, ensemble: str, *, deadline: float | None = None) -> str:
        reply = await self.call(NEW, NewDeployment(ensemble, deadline=deadline), _Submitted)
        return reply.id

    async def status(self, deployment: str) -> DeploymentView:
        return await self.call(STATUS, DeploymentId(deployment), DeploymentView)

    async def list(self) -> tuple[ListedDeployment, ...]:
        return (await self.call(LIST, None, _Listing)).deployments

    async def events(self, deployment: str, after: int = 0,
                     wait: float = 0.0) -> EventsPage:
        return await self.call(EVENTS, EventsQuery(deployment, after, wait), EventsPage,
                               timeout=wait + CALL_TIMEOUT)

    async def logs(self, deployment: str, allocation: str,
                   query: wire.LogsQuery) -> wire.LogsReply:
        return await self.call(LOGS, LogsRequest(deployment, allocation, query), wire.LogsReply)

    async def plan(self, ensemble: str, timeout: float) -> PlanView:
        return await self.call(PLAN, PlanRequest(ensemble, timeout), PlanView,
                               timeout=timeout + CALL_TIMEOUT)

    async def shutdown(self, deployment: str) -> str:
        return str((await self.call(SHUTDOWN, DeploymentId(deployment), dict))["phase"])

    async def join(self, deployment: str) -> dict[str, str]:
        """`subnet.join`: the node joins the deployment's network; its namespace there
        (`namespace`, `address`, `subnet`)."""
        reply = await self.call(JOIN, DeploymentId(deployment), dict)
        return {key: str(reply.get(key, "")) for key in ("namespace", "address", "subnet")}

    async def leave(self, deployment: str) -> bool:
        return bool((await self.call(LEAVE, DeploymentId(deployment), dict)).get("left"))

    async def call(self, command: str, args: Any, kind: type[T], *,
                   timeout: float = CALL_TIMEOUT) -> T:
        try:
            reply = await self.node.root.invoke(self.handle, command, args, timeout=timeout)
        except RemoteError as refused:
            raise OperationFailed(self._refusal(refused), refusal=refused.name) from None
        except RequestTimeout as silent:
            raise Unreachable(f"{self.target.address}: {silent}") from None
        except Undeliverable as lost:
            raise Unreachable(f"{self.target.address}: {lost}") from None
        try:
            return _structure(reply, kind)
        except InvalidArgs as malformed:
            raise OperationFailed(f"{self.target.address} answered {command} with something "
                                  f"malformed: {malformed}") from None

    def _refusal(self, refused: RemoteError) -> str:
        user = self.target.key.did
        message = refused.message
        if self.node.did != user:  # the command's own key is nobody the user knows
            message = message.replace(self.node.did, f"this command's key for {user}")
        text = f"refused: {refused.name}: {message}"
        if refused.name == "InvalidSubject":
            subjects = sorted({g.sub for g in self.target.proofs if g.sub is not None})
            if subjects and self.handle.did not in subjects:
                text += (f" (your grants are on {', '.join(subjects)}, but the node at "
                         f"{self.target.address} is {self.handle.did}: is it the node you "
                         f"meant?)")
        elif refused.name in CAPABILITY_FAILURES:
            held = sorted({g.cmd for g in self.target.proofs if g.aud == user})
            if held and not any(proves(cmd, refused.command) for cmd in held):
                text += (f" (the grants you presented cover {', '.join(held)}, not "
                         f"{refused.command})")
            wanted = _grant_to_ask_for(refused.command)
            text += (f" (the key {user} needs a grant of {wanted} from the node or one of "
                     f"its anchors: on the node, `dms cap grant --to {user} --cmd {wanted} "
                     f"-o FILE` (or `ucan grant --as ANCHOR ...`), then pass --proof FILE)")
        return text


def _grant_to_ask_for(command: str) -> str:
    """What to grant for `command`: a deployment command's family (deploy, status,
    events, logs, shutdown go together), else the command itself."""
    family = "/dms/node/deployment"
    return family if proves(family, command) else command


def _structure(reply: Any, kind: type[T]) -> T:
    if kind is dict:
        if not isinstance(reply, dict):
            raise InvalidArgs([f"expected a map, got {type(reply).__name__}"])
        return reply  # type: ignore[return-value]
    return structure_args(reply, kind)


@asynccontextmanager
async def open_session(target: Target, *,
                       connect_timeout: float = CONNECT_TIMEOUT) -> AsyncIterator[Session]:
    """Connect to `target` (Unreachable when no handshake succeeds within
    `connect_timeout`, saying why, or when another node than the expected answers)."""
    session = SigningKey.generate()
    handed = session_grants(target, session.did)
    if not handed:  # the user's own authority (the node anchors it, or is it): as itself
        session = target.key
    try:
        async with open_node(session, bootstrap=[target.address]) as client:
            client.add_proofs(*target.proofs, *handed)
            peers = await _connected(client, target.address, connect_timeout)
            peer = _expected(peers, target)
            yield Session(client, target, Handle(peer, peer, peer, "root"))
    except NetError as failure:
        raise Unreachable(str(failure)) from None


SESSION_LIFETIME = 24 * 3600
"""Longest a command's session key may act for the user (a `--follow` runs that long)."""


def session_grants(target: Target, session: str) -> list[Delegation]:
    """The user's authority handed to this command's own key: each grant the user
    holds, re-delegated as it is (never for longer). Each command is then its own peer
    on the network, so two commands of one user at once do not take each other's link;
    the node counts them as the user, the grantee their chains start from."""
    ends = int(time.time()) + SESSION_LIFETIME
    return [delegate(target.key, session, grant.cmd, subject=grant.sub,
                     expiration=ends if grant.exp is None else min(grant.exp, ends))
            for grant in target.proofs if grant.aud == target.key.did]


DIAL_CHECK = 0.05


async def _connected(client: Node, address: str, timeout: float) -> list[str]:
    """The peers once one is linked; Unreachable as soon as a dial of `address` has
    failed (a command says so at once instead of retrying), or after `timeout`."""
    with trio.move_on_after(timeout):
        while True:
            with trio.move_on_after(DIAL_CHECK):
                await client.mesh.wait_connected()
            peers = client.mesh.connected_peers()
            if peers:
                return peers
            failure = client.mesh.dial_failure(address)
            if failure is not None:
                raise Unreachable(str(failure))
    raise Unreachable(f"no handshake with {address} within {timeout:g} s")


def _expected(peers: Sequence[str], target: Target) -> str:
    if target.did is None or target.did in peers:
        return target.did or peers[0]
    raise Unreachable(f"{target.address} is node {peers[0]}, not {target.did} (the node the "
                      f"client config names; is the network it was written for still up?)")
