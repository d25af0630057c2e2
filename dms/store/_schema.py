"""The database schema as an ordered list of migrations, and the rule that applies them.

`PRAGMA user_version` is the schema version: the number of migrations applied. A new
file is version 0 and gets every migration; an older one gets the ones it lacks; a
newer one (written by a later dms) is refused untouched with `SchemaTooNew`. All the
missing migrations run in one transaction, so a failure leaves the file exactly at the
version it had. Migrations are append-only: a released one is never edited, a change
is a new script at the end.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from dms.store._errors import MigrationFailed, SchemaTooNew

MIGRATIONS: tuple[str, ...] = (
    # 1: deployments and their events (orchestrator side), reservations and
    # allocations (provider side). next_seq/event_count/event_bytes are the event
    # stream's bookkeeping, kept with the deployment so appends need no scan.
    """
    CREATE TABLE deployments (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        ensemble TEXT NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        phase TEXT NOT NULL,
        deadline REAL,
        duration REAL,
        assignment TEXT NOT NULL,
        failure TEXT NOT NULL,
        allocations TEXT NOT NULL,
        next_seq INTEGER NOT NULL DEFAULT 1,
        event_count INTEGER NOT NULL DEFAULT 0,
        event_bytes INTEGER NOT NULL DEFAULT 0
    ) STRICT;
    CREATE INDEX deployments_by_owner ON deployments (owner, created_at);
    CREATE INDEX deployments_by_phase ON deployments (phase, created_at);

    CREATE TABLE deployment_events (
        deployment_id TEXT NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        kind TEXT NOT NULL,
        at REAL NOT NULL,
        payload TEXT NOT NULL,
        PRIMARY KEY (deployment_id, seq)
    ) STRICT, WITHOUT ROWID;

    CREATE TABLE reservations (
        id TEXT PRIMARY KEY,
        deployment_id TEXT NOT NULL,
        orchestrator TEXT NOT NULL,
        node TEXT NOT NULL,
        resources TEXT NOT NULL,
        lease_expires_at REAL,
        ports TEXT NOT NULL,
        state TEXT NOT NULL
    ) STRICT;
    CREATE INDEX reservations_by_deployment ON reservations (deployment_id);

    CREATE TABLE allocations (
        id TEXT PRIMARY KEY,
        deployment_id TEXT NOT NULL,
        name TEXT NOT NULL,
        actor TEXT NOT NULL,
        executor TEXT NOT NULL,
        created_at REAL NOT NULL,
        execution TEXT,
        state TEXT NOT NULL
    ) STRICT;
    CREATE INDEX allocations_by_deployment ON allocations (deployment_id);
    """,
    # 2: the deployments a provider hosts: the orchestrator that drives each, the
    # ensemble its allocations were planned from (to supervise them again after a
    # restart) and when the orchestrator last asked after it (its heartbeat).
    """
    CREATE TABLE hosted_deployments (
        id TEXT PRIMARY KEY,
        orchestrator TEXT NOT NULL,
        ensemble TEXT NOT NULL,
        heartbeat REAL NOT NULL,
        last_seen REAL NOT NULL
    ) STRICT;
    """,
    # 3: a deployment's ensemble network (its address plan and who hosts what, or why
    # it has none), JSON, so a redeploy keeps the addresses and a restart knows them;
    # and on the provider side the order a hosted deployment's network was made from.
    """
    ALTER TABLE deployments ADD COLUMN network TEXT NOT NULL DEFAULT '{}';
    ALTER TABLE hosted_deployments ADD COLUMN network TEXT NOT NULL DEFAULT '{}';
    """,
    # 4: the providers a deployment asked to commit (each with the provider actor it
    # asked), written before the commit is sent: an orchestrator restarted before its
    # deployment ran reverts there at once instead of leaving it to the leases.
    """
    ALTER TABLE deployments ADD COLUMN commits TEXT NOT NULL DEFAULT '{}';
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)
"""The schema version this code writes."""


def statements(script: str) -> list[str]:
    """A script's statements, split where SQLite says a statement is complete (so a
    `;` inside a string or a trigger body does not split it)."""
    found: list[str] = []
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip() != ";":
                found.append(pending.strip())
            pending = ""
    if pending:
        found.append(pending.strip())  # unterminated: let SQLite say what is wrong
    return found


def schema_version(connection: sqlite3.Connection) -> int:
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    assert isinstance(version, int)
    return version


def migrate(connection: sqlite3.Connection, path: Path,
            migrations: Sequence[str] = MIGRATIONS) -> int:
    """Bring the database to `len(migrations)`, returning the version it had.

    The connection must be in autocommit mode (`isolation_level=None`): the version
    check and every migration share one IMMEDIATE transaction, so no other writer can
    migrate the same file in between."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        found = schema_version(connection)
        if found > len(migrations):
            raise SchemaTooNew(path, found, len(migrations))
        for version in range(found + 1, len(migrations) + 1):
            try:
                for statement in statements(migrations[version - 1]):
                    connection.execute(statement)
            except sqlite3.Error as exc:
                raise MigrationFailed(path, version, str(exc)) from None
            connection.execute(f"PRAGMA user_version = {version}")
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
    return found
