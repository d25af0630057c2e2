"""Fixtures for the store tests: a database in a temporary state directory, and records
that are valid unless a test says otherwise."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dms.store import DATABASE_FILE, DeploymentRecord, NodeDatabase
from ucan import SigningKey

OWNER = SigningKey.generate().did


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / DATABASE_FILE


@pytest.fixture
def db(db_path: Path) -> Iterator[NodeDatabase]:
    with NodeDatabase.open(db_path) as database:
        yield database


@pytest.fixture
def deployment() -> Callable[..., DeploymentRecord]:
    """A new pending deployment of OWNER's; keyword arguments override its fields."""

    def make(**fields: Any) -> DeploymentRecord:
        values: dict[str, Any] = dict(id=str(uuid.uuid4()), owner=OWNER,
                                      ensemble="version: v1\n", created_at=1_000.0,
                                      updated_at=1_000.0)
        values.update(fields)
        return DeploymentRecord(**values)

    return make
