"""What to do with a verdict, sans-IO: admission says whether a message may pass; the
router says where it goes (an actor's behavior, a topic's subscribers, an outstanding
request, a refusal answer) and remembers what that decision depends on (requests
awaiting a reply, refusals already answered). The actor system carries the actions out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import attrs

from dms.actor._admission import DEFAULT_POLICY, Accept, Drop, Refuse, ReplyIn, Verdict
from dms.actor._behavior import Message
from dms.actor._handle import Handle
from dms.actor._ratelimit import RateLimit, RateLimiter
from dms.actor._replay import ReplayCache
from dms.actor._wire import REPLY
from ucan import CID, Expired, Invocation, TooEarly, UcanError

CLOCK_SKEW = "ClockSkew"
"""The failure of a request whose reply came stamped outside this node's time window."""


@attrs.frozen
class Deliver:
    """Run `message` on the actor `actor` (its id); answer if `wants_reply`."""

    actor: str
    message: Message[Any]
    wants_reply: bool


@attrs.frozen
class AnswerRefusal:
    """Tell the sender why its request was refused, signed by `responder` (an actor id)."""

    responder: str
    request: Invocation
    name: str
    text: str
    to: Handle


@attrs.frozen
class Settle:
    """An outstanding request's answer arrived."""

    request: CID
    outcome: dict[str, Any]


@attrs.frozen
class Ignore:
    """Nothing to do; `reason` is counted (None: already counted by admission)."""

    reason: str | None = None


Action = Deliver | AnswerRefusal | Settle | Ignore


@attrs.define
class _Outstanding:
    expected: str  # the actor that must answer (the request's audience)
    node: str  # ...or the node behind it, which answers when the actor is gone
    settled: bool = False


class Router:
    """Routing state: outstanding requests and refusals already answered (one answer per
    refused message: a replayed refusal is refused in silence)."""

    def __init__(self, root: str, skew: float,
                 refusal_budget: RateLimit | None = None) -> None:
        self.root = root
        self.skew = skew
        self._outstanding: dict[CID, _Outstanding] = {}
        self._answered = ReplayCache()
        self._refusals = RateLimiter(refusal_budget or DEFAULT_POLICY.refusal_budget,
                                     max_keys=10_000)

    def expect(self, request: CID, *, responder: str, node: str) -> None:
        self._outstanding[request] = _Outstanding(responder, node)

    def forget(self, request: CID) -> None:
        self._outstanding.pop(request, None)

    @property
    def outstanding(self) -> int:
        return len(self._outstanding)

    def route(self, verdict: Verdict, *, via: str, now: float,
              is_local: Callable[[str], bool],
              subscribers: Callable[[str], Iterable[str]]) -> list[Action]:
        if isinstance(verdict, Drop):
            return [Ignore()]
        inv = verdict.envelope.invocation
        if isinstance(verdict, ReplyIn):
            return [self._settle(inv)]
        topic = verdict.topic if isinstance(verdict, Accept) else None
        wants_reply = topic is None and bool((inv.meta or {}).get("reply"))
        sender = sender_of(inv, via)
        if isinstance(verdict, Refuse) and inv.cmd == REPLY:
            return [self._settle_refused(inv, verdict.error)]
        if isinstance(verdict, Refuse):
            if not wants_reply or self._answered.seen(inv.cid):
                return [Ignore()]
            if not self._refusals.allow(via, "refusals", now):
                return [Ignore("dropped.refusal-budget")]
            self._answered.remember(inv.cid, (inv.exp or 0) + self.skew, now)
            responder = inv.audience if is_local(inv.audience) else self.root
            return [AnswerRefusal(responder, inv, verdict.error.name, verdict.error.message,
                                  sender)]
        message: Message[Any] = Message(inv.cmd, inv.args, sender, inv, verdict.chain, topic)
        if topic is not None:
            return [Deliver(actor, message, False) for actor in subscribers(topic)]
        if verdict.actor is None or not is_local(verdict.actor):
            return [Ignore("dropped.gone")]  # stopped between admission and routing
        return [Deliver(verdict.actor, message, wants_reply)]

    def _settle(self, reply: Invocation) -> Action:
        out = reply.args.get("out")
        return self._answer(reply, out if isinstance(out, dict) else None)

    def _settle_refused(self, reply: Invocation, error: UcanError) -> Action:
        """A reply that admission refused settles nothing it says. But when its time
        bounds refused it (signed by the responder, for one of our requests: not a
        forgery, not a replay), waiting for another reply would only end in a timeout
        that says nothing: the request fails now, naming the clocks."""
        if not isinstance(error, (Expired, TooEarly)):
            return Ignore("dropped.refused-reply")
        return self._answer(reply, {"err": {"name": CLOCK_SKEW, "message": (
            f"the reply from {reply.iss} was refused here, the clocks disagree: "
            f"{error.message}")}})

    def _answer(self, reply: Invocation, out: dict[str, Any] | None) -> Action:
        ran = reply.args.get("ran")
        outstanding = self._outstanding.get(ran) if isinstance(ran, CID) else None
        if outstanding is None or outstanding.settled:
            return Ignore("dropped.unexpected-reply")
        if reply.iss not in (outstanding.expected, outstanding.node) or out is None:
            return Ignore("dropped.misattributed-reply")
        outstanding.settled = True
        assert isinstance(ran, CID)
        return Settle(ran, out)


def sender_of(invocation: Invocation, via: str) -> Handle:
    """Who sent it, as far as it can be believed: the signer's id, the claimed principal
    and inbox, and the peer it actually came through (replies go back that way, never
    to a peer the message names: no reflecting error replies at third parties)."""
    claimed = (invocation.meta or {}).get("from")
    if type(claimed) is dict:
        did, inbox = claimed.get("did"), claimed.get("inbox")
        # only the signer's own id is believed; the peer is the one it came through
        if (claimed.get("id") == invocation.iss and type(did) is str and type(inbox) is str
                and type(claimed.get("peer")) is str):
            return Handle(invocation.iss, did, via, inbox)
    return Handle(invocation.iss, invocation.iss, via, "unknown")
