"""Kernel objects for the data-plane tests: namespaces with a per-test prefix, all
removed after the test whatever happened in it; skips naming what the host lacks."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from dms.network._netns import delete_namespace, namespace_names


def missing_for_netns() -> str | None:
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    if not Path("/dev/net/tun").exists():
        return "needs /dev/net/tun"
    if shutil.which("ip") is None:
        return "needs iproute2 (the ip command)"
    return None


@pytest.fixture
def namespace_prefix() -> Iterator[str]:
    """A prefix no other test (or engineer) uses; whatever carries it is removed after."""
    missing = missing_for_netns()
    if missing:
        pytest.skip(missing)
    prefix = f"dmst-{secrets.token_hex(3)}-"
    yield prefix
    for name in namespace_names():
        if name.startswith(prefix):
            delete_namespace(name)
