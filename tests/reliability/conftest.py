"""The reliability suite runs on trio, like the deployment tests it builds on."""

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "trio"
