"""The schema's version rules: new and older files are migrated in order, all or
nothing; a newer file is refused untouched; the file is WAL, private and checked."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from dms.store import (
    MIGRATIONS,
    SCHEMA_VERSION,
    MigrationFailed,
    NodeDatabase,
    SchemaTooNew,
    StoreError,
)
from dms.store._schema import migrate, statements

TABLES = {"deployments", "deployment_events", "reservations", "allocations"}


def connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def version_of(path: Path) -> int:
    with connect(path) as connection:
        return int(connection.execute("PRAGMA user_version").fetchone()[0])


def tables_of(path: Path) -> set[str]:
    with connect(path) as connection:
        return {name for (name,) in connection.execute(
            "SELECT name FROM sqlite_schema WHERE type = 'table'")}


def test_a_new_file_is_migrated_from_version_0_to_the_current_schema(db_path: Path):
    NodeDatabase.open(db_path).close()
    assert version_of(db_path) == SCHEMA_VERSION == len(MIGRATIONS)
    assert tables_of(db_path) >= TABLES


def test_an_empty_version_0_file_is_migrated_keeping_what_it_held(db_path: Path):
    db_path.parent.mkdir()
    with connect(db_path) as connection:
        connection.execute("CREATE TABLE notes (text TEXT)")
        connection.execute("INSERT INTO notes VALUES ('kept')")
    assert version_of(db_path) == 0
    NodeDatabase.open(db_path).close()
    assert version_of(db_path) == SCHEMA_VERSION
    with connect(db_path) as connection:
        assert connection.execute("SELECT text FROM notes").fetchall() == [("kept",)]


def test_reopening_a_current_file_applies_nothing(db_path: Path):
    NodeDatabase.open(db_path).close()
    NodeDatabase.open(db_path).close()  # a second CREATE TABLE would fail
    assert version_of(db_path) == SCHEMA_VERSION


LOGGED = [
    "CREATE TABLE log (step INTEGER);\nINSERT INTO log VALUES (1);",
    "INSERT INTO log VALUES (2);",
    "INSERT INTO log VALUES (3); INSERT INTO log VALUES (33);",
]


def test_an_older_file_gets_only_the_migrations_it_lacks_in_order(tmp_path: Path):
    path = tmp_path / "old.sqlite3"
    with connect(path) as connection:
        assert migrate(connection, path, LOGGED[:1]) == 0
        assert migrate(connection, path, LOGGED) == 1
        assert connection.execute("SELECT step FROM log").fetchall() == [(1,), (2,), (3,), (33,)]
        assert migrate(connection, path, LOGGED) == 3  # nothing left to do
    assert version_of(path) == 3


def test_a_failing_migration_rolls_back_every_step_of_the_run(tmp_path: Path):
    path = tmp_path / "old.sqlite3"
    with connect(path) as connection:
        migrate(connection, path, LOGGED[:1])
        with pytest.raises(MigrationFailed, match="migration to schema version 3 failed "
                           r"\(nothing was changed\): no such table: missing") as failed:
            migrate(connection, path, [*LOGGED[:2], "INSERT INTO missing VALUES (1);"])
        assert failed.value.version == 3
        assert connection.execute("SELECT step FROM log").fetchall() == [(1,)]
        assert not connection.in_transaction
    assert version_of(path) == 1


def test_a_file_from_a_newer_dms_is_refused_and_left_untouched(db_path: Path):
    db_path.parent.mkdir()
    with connect(db_path) as connection:
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    before = db_path.read_bytes()
    with pytest.raises(SchemaTooNew, match=f"schema version {SCHEMA_VERSION + 1} is newer "
                       f"than this dms knows \\({SCHEMA_VERSION}\\)") as refused:
        NodeDatabase.open(db_path)
    assert str(db_path) in str(refused.value)
    assert (refused.value.found, refused.value.known) == (SCHEMA_VERSION + 1, SCHEMA_VERSION)
    assert db_path.read_bytes() == before
    assert not db_path.with_name(db_path.name + "-wal").exists()


def test_the_database_is_write_ahead_logged_and_private(db_path: Path):
    with NodeDatabase.open(db_path):
        with connect(db_path) as connection:
            assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert db_path.with_name(db_path.name + "-wal").exists()
        assert db_path.stat().st_mode & 0o777 == 0o600
        assert db_path.parent.stat().st_mode & 0o777 == 0o700


def test_a_file_that_is_not_a_database_is_a_store_error_naming_it(db_path: Path):
    db_path.parent.mkdir()
    db_path.write_bytes(b"not sqlite at all, " * 100)
    with pytest.raises(StoreError, match=f"{db_path}: not a usable node database"):
        NodeDatabase.open(db_path)


def test_a_database_that_cannot_be_created_is_a_store_error_naming_it(tmp_path: Path):
    (tmp_path / "file").write_text("")
    path = tmp_path / "file" / "node.sqlite3"
    with pytest.raises(StoreError, match=f"{path}: cannot be opened"):
        NodeDatabase.open(path)


def test_scripts_split_where_sqlite_says_a_statement_ends():
    script = """
        INSERT INTO t VALUES ('a; b');
        CREATE TRIGGER x AFTER INSERT ON t BEGIN
            INSERT INTO u VALUES (1); INSERT INTO u VALUES (2);
        END;
        DELETE FROM t;
    """
    found = statements(script)
    assert len(found) == 3
    assert found[0] == "INSERT INTO t VALUES ('a; b');"
    assert found[1].startswith("CREATE TRIGGER") and found[1].endswith("END;")


def test_deployments_kept_before_the_network_column_read_back_with_no_network(
        tmp_path: Path):
    path = tmp_path / "node.sqlite3"
    with connect(path) as connection:
        migrate(connection, path, MIGRATIONS[:2])
        connection.execute(
            "INSERT INTO deployments (id, owner, ensemble, created_at, updated_at, phase, "
            "assignment, failure, allocations) VALUES (?, ?, '', 1.0, 1.0, 'running', '{}', "
            "'', '{}')", ("0b9f6c4e-7a8e-4b53-9d0c-2f4f3f0e9a11",
                          "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"))
    with NodeDatabase.open(path) as database:
        kept = database.get_deployment("0b9f6c4e-7a8e-4b53-9d0c-2f4f3f0e9a11")
    assert kept is not None and kept.network == {}
    assert version_of(path) == SCHEMA_VERSION
