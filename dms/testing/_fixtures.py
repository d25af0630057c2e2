"""The pytest fixtures of `dms.testing` (this module needs pytest and pytest-trio)."""

from collections.abc import AsyncIterator

import pytest
import trio

from dms.testing._testbed import MockClockMissing, Testbed, open_testbed


@pytest.fixture
async def network(request: pytest.FixtureRequest,
                  autojump_clock: trio.abc.Clock) -> AsyncIterator[Testbed]:
    """Three connected nodes under the test's MockClock (see the module doc); for
    another number, ``@pytest.mark.parametrize("network", [5], indirect=True)``."""
    size = getattr(request, "param", 3)
    if trio.lowlevel.current_clock() is not autojump_clock:
        raise MockClockMissing(
            "the `network` fixture needs the test to run on trio's MockClock: add "
            "`autojump_clock` to the test function's arguments"
        )
    async with open_testbed(size) as testbed:
        yield testbed
