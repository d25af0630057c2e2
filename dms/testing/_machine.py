"""A hypothesis state machine that builds random grant graphs and checks every dispatch.

Subclass `AuthorizationMachine`, set the commands your behaviors serve and the policies
and arguments worth trying, and hypothesis will grant, attenuate, revoke, let time pass
and invoke at random among `size` nodes, checking after each invocation that the
behavior ran exactly when `expected` says it should (the default is the plain
`GrantGraph` model) and that every refusal came back as a `RemoteError` named after the
UCAN failure. Failing runs shrink to a short story of grants and invocations.

Each example runs its nodes in one trio run on a worker thread (see `TrioPortal`), on
an in-memory network under a MockClock: deterministic, and about a millisecond a step.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from hypothesis import event
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule
from hypothesis.strategies import SearchStrategy

from dms.actor import DEFAULT_POLICY, Message, RemoteError, RequestTimeout
from dms.node import Node
from dms.testing._grants import attenuate, grant, revoke_everywhere
from dms.testing._model import Grant, GrantGraph, covers
from dms.testing._portal import TrioPortal
from dms.testing._testbed import Testbed, open_testbed
from ucan import Delegation, MalformedToken
from ucan.errors import ALL_ERRORS

UCAN_FAILURES = frozenset(error.name for error in ALL_ERRORS)
"""The names a refusal can carry (`Expired`, `InvalidClaim`, `Revoked`, ...)."""


class AuthorizationMachine(RuleBasedStateMachine):
    """Random grants, attenuations, revocations, waits and invocations among nodes.

    Class attributes to set in a subclass:

    - `size`: how many nodes (principals) take part;
    - `commands`: the commands invoked, each served by a behavior on every node's root
      actor (`perform`, which you may override);
    - `grantable`: the commands that may be granted (include prefixes such as `/shop`);
    - `policies`: policies a grant may carry (lists of statements);
    - `arguments`: a strategy for invocation arguments;
    - `lifetimes`, `delays`: seconds a grant lives (None: forever) and waits before it
      is valid (None: valid at once);
    - `longest_wait`: the most virtual seconds one `wait` rule lets pass.

    Use it as ``TestMyFlow = MyMachine.TestCase`` (and set ``TestMyFlow.settings``).
    """

    size: ClassVar[int] = 3
    commands: ClassVar[tuple[str, ...]] = ("/shop/order", "/shop/order/cancel", "/shop/refund")
    grantable: ClassVar[tuple[str, ...]] = ("/", "/shop", "/shop/order", "/shop/order/cancel",
                                            "/shop/refund")
    policies: ClassVar[tuple[list[Any], ...]] = ([], [["<=", ".amount", 100]],
                                                 [[">", ".amount", 50]])
    arguments: ClassVar[SearchStrategy[dict[str, Any]]] = st.fixed_dictionaries(
        {"amount": st.integers(0, 200)})
    lifetimes: ClassVar[tuple[float | None, ...]] = (None, 5, 60, 3600)
    delays: ClassVar[tuple[float | None, ...]] = (None, 30)
    longest_wait: ClassVar[int] = 120
    timeout: ClassVar[float] = 10.0

    def __init__(self) -> None:
        super().__init__()
        self.model = GrantGraph(skew=DEFAULT_POLICY.skew)  # what the testbed's nodes tolerate
        self.delegations: list[Delegation] = []
        self.ran: Counter[tuple[int, str]] = Counter()
        self.portal = TrioPortal(lambda: open_testbed(self.size))
        self.net = self.portal.open()
        for index, node in enumerate(self.net):
            self._serve(index, node)

    def teardown(self) -> None:
        self.portal.close()

    # -- what a subclass may override ----------------------------------------------------

    def expected(self, invoker: str, subject: str, command: str, args: dict[str, Any],
                 now: float) -> bool:
        """Whether `invoker` may run `command` with `args` on `subject`'s node at `now`
        (DIDs, Unix seconds). The default asks the reference model."""
        return self.model.chain(invoker, subject, command, args, now) is not None

    async def perform(self, index: int, message: Message[Any]) -> Any:
        """The behavior every node's root actor runs for each of `commands`."""
        return {"done": message.command}

    def run(self, step: Callable[[Testbed], Awaitable[Any]]) -> Any:
        """Run `await step(testbed)` in the nodes' trio run (for your own rules)."""
        return self.portal.step(step)

    # -- rules ---------------------------------------------------------------------------

    @rule(data=st.data())
    def grant(self, data: st.DataObject) -> None:
        issuer, audience = self._two_nodes(data)
        command = data.draw(st.sampled_from(self.grantable), label="command")
        policy = data.draw(st.sampled_from(self.policies), label="policy")
        lifetime = data.draw(st.sampled_from(self.lifetimes), label="lifetime")
        delay = data.draw(st.sampled_from(self.delays), label="delay")

        async def step(net: Testbed) -> Delegation:
            delegation = grant(net[issuer], net[audience], command, policy=policy,
                               lifetime=lifetime, delay=delay)
            net.share(delegation)
            return delegation

        self._remember(self.run(step))

    @precondition(lambda self: self.delegations)
    @rule(data=st.data())
    def attenuate(self, data: st.DataObject) -> None:
        parent = data.draw(st.sampled_from(self.delegations), label="parent")
        issuer = self._index(parent.aud)
        audience = data.draw(st.integers(0, self.size - 1), label="audience")
        narrower = [c for c in (*self.grantable, *self.commands) if covers(parent.cmd, c)]
        command = data.draw(st.sampled_from(narrower) | st.sampled_from(self.grantable),
                            label="command")
        policy = data.draw(st.sampled_from(self.policies), label="policy")
        lifetime = data.draw(st.sampled_from(self.lifetimes), label="lifetime")
        delay = data.draw(st.sampled_from(self.delays), label="delay")

        async def step(net: Testbed) -> Delegation | None:
            try:
                delegation = attenuate(net[issuer], parent, net[audience], command,
                                       policy=policy, lifetime=lifetime, delay=delay)
            except MalformedToken:  # it would start after its parent expires: never valid
                return None
            net.share(delegation)
            return delegation

        delegation = self.run(step)
        if delegation is None:
            event("attenuation refused: would start after its parent expires")
            return
        self._remember(delegation)

    @precondition(lambda self: self.delegations)
    @rule(data=st.data())
    def revoke(self, data: st.DataObject) -> None:
        target = data.draw(st.sampled_from(self.delegations), label="delegation")
        revoker = data.draw(st.just(self._index(target.iss)) | st.integers(0, self.size - 1),
                            label="revoker")

        async def step(net: Testbed) -> None:
            await revoke_everywhere(net[revoker], target, reach=net.nodes)

        self.run(step)
        self.model.revoke(self.net[revoker].did, target.cid)

    @rule(data=st.data())
    def wait(self, data: st.DataObject) -> None:
        seconds = data.draw(st.integers(1, self.longest_wait), label="seconds")

        async def step(net: Testbed) -> None:
            await net.advance(seconds)

        self.run(step)

    @rule(data=st.data())
    def invoke(self, data: st.DataObject) -> None:
        # Half the time along an existing grant, or most invocations would be refused.
        granted = sorted({(self._index(d.aud), self._index(d.sub))
                          for d in self.delegations if d.sub is not None})
        along: bool = data.draw(st.booleans(), label="along a grant")
        if granted and along:
            invoker, target = data.draw(st.sampled_from(granted), label="invoker, target")
        else:
            invoker, target = self._two_nodes(data)
        command = data.draw(st.sampled_from(self.commands), label="command")
        args = data.draw(self.arguments, label="args")
        verdict = self.run(lambda net: self._check_invocation(net, invoker, target, command,
                                                              args))
        event(f"invocation {verdict}")  # --hypothesis-show-statistics shows the mix

    # -- checking ------------------------------------------------------------------------

    async def _check_invocation(self, net: Testbed, invoker: int, target: int, command: str,
                                args: dict[str, Any]) -> str:
        now = net.now()
        expected = self.expected(net[invoker].did, net[target].did, command, args, now)
        before = self.ran[(target, command)]
        outcome: Any
        try:
            outcome = await net[invoker].root.invoke(net[target].root.handle, command, args,
                                                     timeout=self.timeout)
        except RemoteError as error:
            outcome = error
        except RequestTimeout as error:
            raise AssertionError(f"n{invoker} -> n{target} {command}: {error}; a refusal "
                                 f"must be answered, not left to time out") from None
        ran = self.ran[(target, command)] - before
        story = (f"n{invoker} invoked {command} {args} on n{target} at "
                 f"t={now - net.epoch:g}\n{self.describe()}")
        if ran > 1:
            raise AssertionError(f"the behavior ran {ran} times for one invocation: {story}")
        if expected and not ran:
            raise AssertionError(f"the model authorizes it but the runtime refused ({outcome})"
                                 f": {story}")
        if ran and not expected:
            raise AssertionError(f"the model refuses it but the behavior ran: {story}")
        if ran:
            return "dispatched"
        if not isinstance(outcome, RemoteError) or outcome.name not in UCAN_FAILURES:
            raise AssertionError(f"a refusal must be a RemoteError named after a UCAN "
                                 f"failure, got {outcome!r}: {story}")
        return f"refused: {outcome.name}"

    def describe(self) -> str:
        """The grants so far, one a line, as the model sees them (for failure messages)."""
        lines = []
        for number, grant_ in enumerate(self.model.grants):
            lines.append(f"  g{number}: {self._line(grant_)}")
        return "\n".join(lines) or "  (no grants)"

    def _line(self, grant_: Grant) -> str:
        name = self.net.name
        sub = "*" if grant_.subject is None else name(grant_.subject)
        text = (f"{name(grant_.issuer)} -> {name(grant_.audience)} {grant_.command} "
                f"sub={sub} pol={list(grant_.policy)}")
        if grant_.expires is not None:
            text += f" exp=t{grant_.expires - self.net.epoch:+g}"
        if grant_.starts is not None:
            text += f" nbf=t{grant_.starts - self.net.epoch:+g}"
        revokers = self.model.revocations.get(grant_.cid)
        if revokers:
            text += " revoked by " + ",".join(sorted(name(r) for r in revokers))
        return text

    # -- plumbing ------------------------------------------------------------------------

    def _serve(self, index: int, node: Node) -> None:
        for command in self.commands:
            async def behavior(message: Message[Any], command: str = command) -> Any:
                self.ran[(index, command)] += 1
                return await self.perform(index, message)

            node.root.behavior(command)(behavior)

    def _remember(self, delegation: Delegation) -> None:
        self.delegations.append(delegation)
        self.model.add(delegation)

    def _index(self, did: str) -> int:
        return next(i for i, node in enumerate(self.net) if node.did == did)

    def _two_nodes(self, data: st.DataObject) -> tuple[int, int]:
        first = data.draw(st.integers(0, self.size - 1), label="from")
        second = data.draw(st.integers(0, self.size - 2), label="to")
        return first, second + (second >= first)
