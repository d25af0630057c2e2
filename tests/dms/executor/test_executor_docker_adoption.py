"""Docker containers outliving their executor: detached, found again by this node's
label, adopted by the next executor or discarded. Needs a docker engine (skipped,
naming it, when there is none)."""

from __future__ import annotations

import secrets

import attrs
import docker
import pytest

from dms.executor import ExecutionState, NotAdoptable
from dms.executor._docker import DockerExecutor

from .test_executor_docker import NODE, engine_or_skip, spec


@pytest.fixture
def engine() -> docker.DockerClient:
    return engine_or_skip()


async def test_a_detached_container_is_adopted_by_the_next_executor_then_stopped(
        engine: docker.DockerClient) -> None:
    name = f"adopted-{secrets.token_hex(3)}"
    async with DockerExecutor(NODE, close_grace=1) as first:
        old = await first.start(spec(name, "sleep", "300"))
        identity = first.identity_of(old)
        assert identity is not None
        first.detach()
    async with DockerExecutor(NODE, close_grace=1) as second:
        assert identity in await second.leftovers()
        adopted = await second.adopt(identity, spec(name, "sleep", "300"))
        assert adopted.status().state is ExecutionState.RUNNING
        assert identity not in await second.leftovers()
        exit = await adopted.stop(grace=1)
        assert exit.stopped
        await adopted.remove()


async def test_another_nodes_container_is_neither_adopted_nor_discarded(
        engine: docker.DockerClient) -> None:
    name = f"foreign-{secrets.token_hex(3)}"
    async with DockerExecutor("did:key:z6MkOtherNode", close_grace=1) as other:
        theirs = await other.start(spec(name, "sleep", "300"))
        identity = other.identity_of(theirs)
        assert identity is not None
        async with DockerExecutor(NODE, close_grace=1) as mine:
            assert identity not in await mine.leftovers()
            with pytest.raises(NotAdoptable, match="not this node's"):
                await mine.adopt(identity, spec(name, "sleep", "300"))
            await mine.discard(identity)
            assert theirs.status().state is ExecutionState.RUNNING
            with pytest.raises(NotAdoptable, match="is gone"):
                await mine.adopt(attrs.evolve(identity, ident="0" * 64), theirs.spec)
