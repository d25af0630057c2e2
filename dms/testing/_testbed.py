"""A small in-memory network of nodes whose clocks follow trio's virtual time.

Under `trio.testing.MockClock` every node's clock reads ``epoch + trio.current_time()``,
so UCAN expiry and not-before times move with virtual time: `Testbed.advance(3600)`
ages every delegation by an hour in no wall time. Node keys are derived from a seed,
so a failing run names the same DIDs when it is repeated.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager

import attrs
import trio
import trio.testing

from dms.net import DegreeLimits, LinkConditions, MemoryNetwork
from dms.node import Node, open_node
from ucan import Delegation, SigningKey

EPOCH = 1_700_000_000
"""The wall-clock time (Unix seconds) that virtual time 0 stands for."""


PERFECT_LINKS = LinkConditions()
"""No latency, unlimited bandwidth, no loss: messages arrive at the instant they are sent."""


class MockClockMissing(RuntimeError):
    """The test runs on a real clock, but the testbed needs trio's MockClock."""


def virtual_clock(epoch: float = EPOCH) -> Callable[[], float]:
    """A node clock that reads trio's clock (virtual under MockClock) offset by `epoch`."""
    return lambda: epoch + trio.current_time()


def node_key(seed: int, index: int) -> SigningKey:
    """The key of node `index` in a testbed opened with `seed` (stable across runs)."""
    return SigningKey.from_seed(hashlib.sha256(f"dms.testing|{seed}|{index}".encode()).digest())


async def settle() -> None:
    """Return once every task is blocked: on the memory network with no latency, every
    message sent so far has been handled. Virtual time does not move."""
    await trio.testing.wait_all_tasks_blocked()


@attrs.frozen
class Testbed:
    """Nodes on one `MemoryNetwork`, all connected to each other.

    Index it like a tuple (`testbed[0]` is the first node). Open one with `open_testbed`
    or the `network` pytest fixture.
    """

    __test__ = False  # not a pytest test class, whatever the importing module is called

    nodes: tuple[Node, ...]
    memory: MemoryNetwork
    epoch: float

    def __getitem__(self, index: int) -> Node:
        return self.nodes[index]

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)

    def now(self) -> float:
        """The nodes' current time (Unix seconds)."""
        return self.epoch + trio.current_time()

    def name(self, did: str) -> str:
        """`n<index>` for a node's DID (readable failure messages), else the DID."""
        for index, node in enumerate(self.nodes):
            if node.did == did:
                return f"n{index}"
        return did

    def share(self, *delegations: Delegation) -> None:
        """Give every node these delegations as proofs (delegations are not secrets: only
        their audience can use them), so any node can build a chain through them."""
        for node in self.nodes:
            node.add_proofs(*delegations)

    async def advance(self, seconds: float) -> None:
        """Leap `seconds` ahead in virtual time, then let the nodes settle.

        One leap, not a walk: a periodic timer that was due several times in between
        fires once, late (as after a suspended laptop). That keeps an hour's wait as
        cheap as a second's. Needs trio's MockClock.
        """
        clock = trio.lowlevel.current_clock()
        if not isinstance(clock, trio.testing.MockClock):
            raise MockClockMissing("Testbed.advance needs trio.testing.MockClock as the clock")
        clock.jump(seconds)
        await settle()


@asynccontextmanager
async def open_testbed(
    size: int = 3,
    *,
    seed: int = 0,
    epoch: float = EPOCH,
    conditions: LinkConditions = PERFECT_LINKS,
    anchors: Sequence[Iterable[str]] = (),
) -> AsyncIterator[Testbed]:
    """Open `size` nodes (`memory://n0`...) that each dial the ones before them; return
    once every node has its overlay's target of neighbours (`DegreeLimits.target`), or
    all the others when there are fewer: a node dials no more (unicast to any other
    opens a direct link on demand). Leaving the block closes them all.

    `anchors[i]` are node i's trust anchors. Meant for trio's MockClock (deterministic,
    no wall time); on a real clock it works too, the nodes then age in real time.
    """
    if size < 1:
        raise ValueError(f"a testbed needs at least one node, got size={size}")
    memory = MemoryNetwork(default=conditions, seed=seed)
    clock = virtual_clock(epoch)
    async with AsyncExitStack() as stack:
        nodes: list[Node] = []
        for index in range(size):
            node = await stack.enter_async_context(open_node(
                node_key(seed, index),
                listen=f"memory://n{index}",
                network=memory,
                bootstrap=[f"memory://n{earlier}" for earlier in range(index)],
                anchors=anchors[index] if index < len(anchors) else (),
                clock=clock,
            ))
            nodes.append(node)
        degree = DegreeLimits()
        linked = min(size - 1, degree.target)
        for node in nodes:
            assert node.mesh is not None
            await node.mesh.wait_connected(linked)
        await settle()
        yield Testbed(tuple(nodes), memory, epoch)

