"""Kernel objects for the data-plane tests: namespaces with a per-test prefix, all
removed after the test whatever happened in it; skips naming what the host lacks."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from dms.network import missing_capability
from dms.network._netns import delete_namespace, namespace_names


@pytest.fixture
def namespace_prefix() -> Iterator[str]:
    """A prefix no other test (or engineer) uses; whatever carries it is removed after."""
    missing = missing_capability()
    if missing:
        pytest.skip(reason=missing)  # names what this host lacks
    prefix = f"dmst-{secrets.token_hex(3)}-"
    yield prefix
    for name in namespace_names():
        if name.startswith(prefix):
            delete_namespace(name)
