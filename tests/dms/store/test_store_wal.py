"""The write-ahead log stays about a megabyte however much a node writes: it is
checkpointed every few hundred pages and truncated when reset (SQLite's defaults let
it keep 4 MB, its largest size, for good)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from dms.store import DeploymentRecord, NodeDatabase
from dms.store._database import WAL_SIZE_LIMIT


def test_the_write_ahead_log_stays_bounded_while_deployments_come_and_go(
        db_path: Path, deployment: Callable[..., DeploymentRecord]) -> None:
    ensemble = "version: v1\n# " + "x" * 8000 + "\n"
    largest = 0
    with NodeDatabase.open(db_path) as db:
        for n in range(1200):  # about 10 MB through the log
            record = deployment(ensemble=ensemble)
            db.create_deployment(record)
            db.delete_deployment(record.id)
            if n % 50 == 0:
                largest = max(largest, db_path.with_name(db_path.name + "-wal").stat().st_size)
        assert db.list_deployments() == ()
    assert 0 < largest <= 2 * WAL_SIZE_LIMIT
