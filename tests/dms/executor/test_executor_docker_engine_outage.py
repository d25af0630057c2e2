"""A docker engine that stops answering while a container is watched: the execution is
`unobservable` (with why), still `running`, never ended on a broken connection; once
the engine answers again the watch goes on, and the container's real end is what is
reported. Other failures still surface. No engine needed: the container is a stand-in
whose engine can be switched off."""

from __future__ import annotations

from typing import Any

import pytest
import requests.exceptions
import trio
import trio.testing

from dms.executor import ExecutionSpec, ExecutionState, _docker
from dms.executor._docker import DockerExecution
from dms.workload import ExecutorKind

SPEC = ExecutionSpec(name="job", executor=ExecutorKind.DOCKER, image="busybox", cmd=("sleep", "9"))


@pytest.fixture(autouse=True)
def in_this_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """The stand-in answers at once: no worker threads, so virtual time is exact."""

    async def call(fn: Any, *args: Any, **kwargs: Any) -> Any:
        await trio.lowlevel.checkpoint()
        return fn(*args, **kwargs)

    async def long_poll(fn: Any, *args: Any, **kwargs: Any) -> Any:
        while (result := fn(*args, **kwargs)) is None:  # None: still running
            await trio.sleep(0.1)
        return result

    monkeypatch.setattr(_docker, "_blocking", call)
    monkeypatch.setattr(_docker, "_waiting", long_poll)


class Container:
    """Answers like docker's Container while `engine_up`; `exit()` ends it."""

    id = "c0ffee"

    def __init__(self) -> None:
        self.engine_up = True
        self.failure: Exception | None = None
        self.attrs: dict[str, Any] = {"State": {"Running": True}}
        self._ended = False

    def _ask(self) -> None:
        if self.failure is not None:
            raise self.failure
        if not self.engine_up:
            raise requests.exceptions.ConnectionError("connection refused")

    def reload(self) -> None:
        self._ask()
        if self._ended:
            self.attrs = {"State": {"ExitCode": 3, "OOMKilled": False}}

    def wait(self) -> dict[str, int] | None:
        """None while it runs (the long poll goes on); it breaks when the engine stops."""
        if not self.engine_up and self.failure is None:
            raise requests.exceptions.ChunkedEncodingError("Response ended prematurely")
        self._ask()
        return {"StatusCode": 3} if self._ended else None


async def test_an_engine_outage_makes_a_running_container_unobservable_not_ended(
        autojump_clock: trio.testing.MockClock) -> None:
    container = Container()
    execution = DockerExecution(SPEC, container, None)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(execution._watch)
        await trio.sleep(1)
        assert execution.status().unobservable == ""
        container.engine_up = False  # the long poll breaks, then nothing answers
        await trio.sleep(5)
        status = execution.status()
        assert status.state is ExecutionState.RUNNING
        assert status.unobservable == "docker engine not answering: ConnectionError"

        container.engine_up = True  # back, the container still running
        await trio.sleep(2)
        assert execution.status().unobservable == ""
        assert execution.status().state is ExecutionState.RUNNING

        container._ended = True
        with trio.fail_after(5):
            ended = await execution.wait()
    assert ended.exit_code == 3
    assert execution.status().state is ExecutionState.EXITED


async def test_a_failure_that_is_not_the_engine_being_away_still_surfaces(
        autojump_clock: trio.testing.MockClock) -> None:
    container = Container()
    container.failure = ValueError("not an engine outage")
    execution = DockerExecution(SPEC, container, None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not an engine outage"):
        await execution._watch()
