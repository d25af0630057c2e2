"""`NodeDatabase`: a node's state in one SQLite file, through typed, synchronous calls.

This is the blocking core; trio code uses it through `NodeStore`, which runs every
call in the store's worker thread. It is not for several threads at once: one call at
a time, from whichever thread (the connection is opened with `check_same_thread=False`
because the shell's worker is not always the same OS thread).

The file is opened in WAL mode (readers never block the writer, and a crash loses at
most the last transactions, never consistency) with `synchronous=NORMAL` (a commit
does not wait for fsync; with WAL that risks only the most recent commits on power
loss, not corruption) and foreign keys enforced. The log is checkpointed every
`WAL_CHECKPOINT_PAGES` pages and truncated to `WAL_SIZE_LIMIT` when reset, so a node
that runs for months keeps a log of about a megabyte, not its longest burst. Each method is one transaction;
`transaction()` groups several into one, and nests.
"""

from __future__ import annotations

import contextlib
import math
import os
import sqlite3
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any, TypeVar

import attrs

from dms.store._codec import Table, dump_json
from dms.store._errors import (
    DuplicateRecord,
    EventTooLarge,
    InvalidRecord,
    RecordNotFound,
    SchemaTooNew,
    StoreClosed,
    StoreError,
)
from dms.store._records import (
    AllocationRecord,
    DeploymentRecord,
    EventRecord,
    HostedDeployment,
    ReservationRecord,
)
from dms.store._schema import SCHEMA_VERSION, migrate, schema_version
from dms.store._states import AllocationState, DeploymentPhase, ReservationState

R = TypeVar("R", bound=attrs.AttrsInstance)

DATABASE_FILE = "node.sqlite3"
"""The database's name in a node's state directory."""
MAX_EVENT_PAYLOAD = 64 * 1024
"""Bytes of JSON one event payload may hold: a log tail fits, a flood does not."""
MAX_PAGE = 1_000
"""Most records one call returns from an event stream."""
BUSY_TIMEOUT = 5.0
WAL_CHECKPOINT_PAGES = 256
"""Pages in the write-ahead log past which a commit checkpoints it into the database
(SQLite's default, 1000, lets each node's log reach 4 MB before it is reused)."""
WAL_SIZE_LIMIT = 1024 * 1024
"""Bytes the write-ahead log is truncated to when a checkpoint resets it: without a
limit the file keeps the size of its largest run between checkpoints."""

DEPLOYMENTS = Table("deployments", DeploymentRecord, ("id",),
                    frozenset({"assignment", "allocations", "network", "commits"}))
EVENTS = Table("deployment_events", EventRecord, ("deployment_id", "seq"),
               frozenset({"payload"}))
RESERVATIONS = Table("reservations", ReservationRecord, ("id",),
                     frozenset({"resources", "ports"}))
ALLOCATIONS = Table("allocations", AllocationRecord, ("id",), frozenset({"execution"}))
HOSTED = Table("hosted_deployments", HostedDeployment, ("id",), frozenset({"network"}))
_FIXED = ("id", "owner", "created_at")  # what an update may not change


def _positive(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidRecord(type(instance).__name__, attribute.name,
                            f"{value!r} is not a positive whole number")


def _room_for_one(instance: object, attribute: attrs.Attribute[Any], value: int) -> None:
    _positive(instance, attribute, value)
    if value < MAX_EVENT_PAYLOAD:
        raise InvalidRecord(type(instance).__name__, attribute.name,
                            f"{value} is less than one event may hold ({MAX_EVENT_PAYLOAD})")


@attrs.frozen
class EventRetention:
    """How much of each deployment's event stream is kept: the newest `events`, and no
    more than `payload_bytes` of payload JSON; older events are dropped as new ones
    come. Events come from providers' reports, so without a bound a chatty (or
    hostile) provider could grow the file without end."""

    events: int = attrs.field(default=10_000, validator=_positive)
    payload_bytes: int = attrs.field(default=16 * 1024 * 1024, validator=_room_for_one)


DEFAULT_RETENTION = EventRetention()


class NodeDatabase:
    """A node's deployments, deployment events, reservations and allocations."""

    def __init__(self, connection: sqlite3.Connection, path: Path,
                 retention: EventRetention) -> None:
        """Use `NodeDatabase.open`: it configures and migrates the connection."""
        self.path = path
        self.retention = retention
        self._connection: sqlite3.Connection | None = connection
        self._depth = 0

    @classmethod
    def open(cls, path: str | os.PathLike[str],
             retention: EventRetention = DEFAULT_RETENTION) -> NodeDatabase:
        """Open (creating, owner-only, or migrating) the database at `path`.

        `SchemaTooNew` if a newer dms wrote it, `MigrationFailed` if migrating failed,
        `StoreError` if it cannot be opened or is not a database."""
        path = Path(path)
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            # Ensembles and allocations may carry secrets: the file (and the -wal and
            # -shm files SQLite gives the same mode) is for the node's user alone.
            os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
            connection = sqlite3.connect(path, isolation_level=None,
                                         check_same_thread=False, timeout=BUSY_TIMEOUT)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"{path}: cannot be opened: {exc}") from None
        connection.row_factory = sqlite3.Row
        try:
            # Before anything writes to it: a newer file is refused untouched.
            if (found := schema_version(connection)) > SCHEMA_VERSION:
                raise SchemaTooNew(path, found, SCHEMA_VERSION)
            mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal":
                raise StoreError(f"{path}: write-ahead logging is unavailable here "
                                 f"(journal mode stays {mode})")
            connection.execute("PRAGMA synchronous = NORMAL")
            connection.execute(f"PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_PAGES}")
            connection.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
            connection.execute("PRAGMA foreign_keys = ON")
            migrate(connection, path)
        except sqlite3.Error as exc:
            connection.close()
            raise StoreError(f"{path}: not a usable node database: {exc}") from None
        except BaseException:
            connection.close()
            raise
        return cls(connection, path, retention)

    def close(self) -> None:
        """Close the file; closing twice is fine, using it afterwards is `StoreClosed`."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def __enter__(self) -> NodeDatabase:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            raise StoreClosed(f"{self.path}: the store is closed")
        return self._connection

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Everything in the block commits together or not at all. Nested blocks are
        savepoints: an error inside one undoes only its part, if the outer block
        handles the error. SQLite failures inside are `StoreError`s naming the file."""
        db = self._db
        depth = self._depth
        db.execute("BEGIN IMMEDIATE" if depth == 0 else f"SAVEPOINT nested_{depth}")
        self._depth += 1
        try:
            yield
        except BaseException as exc:
            self._depth = depth
            if depth == 0:
                if db.in_transaction:
                    db.execute("ROLLBACK")
            else:
                db.execute(f"ROLLBACK TO nested_{depth}")
                db.execute(f"RELEASE nested_{depth}")
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"{self.path}: {exc}") from exc
            raise
        self._depth = depth
        try:
            db.execute("COMMIT" if depth == 0 else f"RELEASE nested_{depth}")
        except sqlite3.Error as exc:
            if depth == 0 and db.in_transaction:
                db.execute("ROLLBACK")
            raise StoreError(f"{self.path}: {exc}") from exc

    # -- deployments (orchestrator side) --------------------------------------------

    def create_deployment(self, deployment: DeploymentRecord) -> None:
        """`DuplicateRecord` if a deployment with its id exists."""
        with self.transaction():
            self._insert(DEPLOYMENTS, deployment)

    def get_deployment(self, deployment_id: str) -> DeploymentRecord:
        """`RecordNotFound` if there is none with that id."""
        with self.transaction():
            return self._get(DEPLOYMENTS, deployment_id)

    def list_deployments(self, *, owner: str | None = None,
                         phases: Collection[DeploymentPhase] = ()) -> tuple[DeploymentRecord, ...]:
        """Deployments, oldest first: those of `owner` only, if given, in one of
        `phases` only, if any are given."""
        with self.transaction():
            return self._select(DEPLOYMENTS, {"owner": owner}, "phase", phases, "created_at, id")

    def update_deployment(self, deployment_id: str,
                          change: Callable[[DeploymentRecord], DeploymentRecord], *,
                          at: float) -> DeploymentRecord:
        """Read, `change` (e.g. `lambda d: attrs.evolve(d, phase=RUNNING)`) and write
        one deployment in one transaction, stamped `updated_at=at`; returns what was
        written. Its id, owner and creation time cannot change (`InvalidRecord`)."""
        with self.transaction():
            current = self._get(DEPLOYMENTS, deployment_id)
            changed = change(current)
            if not isinstance(changed, DeploymentRecord):
                raise TypeError(f"change must return a DeploymentRecord, got {changed!r}")
            for field in _FIXED:
                if getattr(changed, field) != getattr(current, field):
                    raise InvalidRecord("DeploymentRecord", field,
                                        f"cannot change ({getattr(current, field)!r} "
                                        f"to {getattr(changed, field)!r})")
            changed = attrs.evolve(changed, updated_at=at)
            row = DEPLOYMENTS.encode(changed)
            settings = ", ".join(f"{column} = :{column}" for column in row if column != "id")
            self._db.execute(f"UPDATE deployments SET {settings} WHERE id = :id", row)
            return changed

    def prune_ended_deployments(self, keep: int) -> tuple[str, ...]:
        """Delete the ended (completed or failed) deployments, and their events, all but
        the `keep` that ended last; the ids deleted. Live ones are never touched."""
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 0:
            raise ValueError(f"keep={keep!r}: expected a number of deployments, 0 or more")
        ended = sorted(phase.value for phase in DeploymentPhase if phase.final)
        with self.transaction():
            rows = self._db.execute(
                "DELETE FROM deployments WHERE id IN (SELECT id FROM deployments"
                f" WHERE phase IN ({', '.join('?' for _ in ended)})"
                " ORDER BY updated_at DESC, id DESC LIMIT -1 OFFSET ?) RETURNING id",
                (*ended, keep)).fetchall()
            return tuple(sorted(row[0] for row in rows))

    def delete_deployment(self, deployment_id: str) -> bool:
        """Forget a deployment and its events; False if there was none."""
        with self.transaction():
            return self._delete(DEPLOYMENTS, deployment_id)

    # -- deployment events -----------------------------------------------------------

    def append_event(self, deployment_id: str, kind: str, payload: dict[str, Any], *,
                     at: float) -> EventRecord:
        """Add an event to a deployment's stream with the next `seq`; drop the oldest
        past the retention bounds. `RecordNotFound` for an unknown deployment,
        `EventTooLarge` past `MAX_EVENT_PAYLOAD`, `InvalidRecord` if `payload` is not
        JSON data."""
        event = EventRecord(deployment_id=deployment_id, seq=1, kind=kind, at=at,
                            payload=payload)
        try:
            text = dump_json(payload)  # ASCII: its length is its size in bytes
        except (ValueError, TypeError, RecursionError) as exc:
            raise InvalidRecord("EventRecord", "payload", f"not JSON data: {exc}") from None
        if len(text) > MAX_EVENT_PAYLOAD:
            raise EventTooLarge(deployment_id, len(text), MAX_EVENT_PAYLOAD)
        with self.transaction():
            db = self._db
            rows = db.execute(
                "UPDATE deployments SET next_seq = next_seq + 1,"
                " event_count = event_count + 1, event_bytes = event_bytes + ?"
                " WHERE id = ? RETURNING next_seq - 1, event_count, event_bytes",
                (len(text), deployment_id)).fetchall()
            if not rows:
                raise RecordNotFound(DEPLOYMENTS.name, deployment_id)
            seq, count, size = rows[0]
            db.execute("INSERT INTO deployment_events (deployment_id, seq, kind, at, payload)"
                       " VALUES (?, ?, ?, ?, ?)", (deployment_id, seq, kind, at, text))
            if count > self.retention.events or size > self.retention.payload_bytes:
                self._trim_events(deployment_id, seq, count, size)
        return attrs.evolve(event, seq=seq)

    def _trim_events(self, deployment_id: str, seq: int, count: int, size: int) -> None:
        """Drop the oldest events until the stream is within bounds. The events kept are
        always seqs `seq - count + 1 .. seq`, so those past the count go in one delete."""
        db = self._db
        if count > self.retention.events:
            dropped = db.execute(
                "DELETE FROM deployment_events WHERE deployment_id = ? AND seq <= ?"
                " RETURNING length(CAST(payload AS BLOB))",
                (deployment_id, seq - self.retention.events)).fetchall()
            count -= len(dropped)
            size -= sum(length for (length,) in dropped)
        while size > self.retention.payload_bytes:
            (length,), = db.execute(
                "DELETE FROM deployment_events WHERE deployment_id = ?1 AND seq ="
                " (SELECT min(seq) FROM deployment_events WHERE deployment_id = ?1)"
                " RETURNING length(CAST(payload AS BLOB))", (deployment_id,)).fetchall()
            count -= 1
            size -= length
        db.execute("UPDATE deployments SET event_count = ?, event_bytes = ? WHERE id = ?",
                   (count, size, deployment_id))

    def events_since(self, deployment_id: str, after: int = 0,
                     limit: int = 100) -> tuple[EventRecord, ...]:
        """Up to `limit` events with `seq > after`, in order: a stream resumes from the
        last seq it saw. A first seq beyond `after + 1` means retention dropped some.
        `RecordNotFound` for an unknown deployment."""
        _check_page(after, limit)
        with self.transaction():
            self._require(DEPLOYMENTS, deployment_id)
            rows = self._db.execute(
                "SELECT * FROM deployment_events WHERE deployment_id = ? AND seq > ?"
                " ORDER BY seq LIMIT ?", (deployment_id, after, limit)).fetchall()
            return tuple(EVENTS.decode(row) for row in rows)

    def recent_events(self, deployment_id: str, limit: int = 20) -> tuple[EventRecord, ...]:
        """The newest `limit` events, oldest of them first (what a status shows)."""
        _check_page(0, limit)
        with self.transaction():
            self._require(DEPLOYMENTS, deployment_id)
            rows = self._db.execute(
                "SELECT * FROM deployment_events WHERE deployment_id = ?"
                " ORDER BY seq DESC LIMIT ?", (deployment_id, limit)).fetchall()
            return tuple(EVENTS.decode(row) for row in reversed(rows))

    # -- reservations and allocations (provider side) --------------------------------

    def put_reservation(self, reservation: ReservationRecord) -> None:
        """Write a reservation, replacing the one with its id if there is one."""
        with self.transaction():
            self._upsert(RESERVATIONS, reservation)

    def get_reservation(self, reservation_id: str) -> ReservationRecord:
        with self.transaction():
            return self._get(RESERVATIONS, reservation_id)

    def list_reservations(self, *, deployment_id: str | None = None,
                          states: Collection[ReservationState] = ()
                          ) -> tuple[ReservationRecord, ...]:
        with self.transaction():
            return self._select(RESERVATIONS, {"deployment_id": deployment_id},
                                "state", states, "id")

    def delete_reservation(self, reservation_id: str) -> bool:
        with self.transaction():
            return self._delete(RESERVATIONS, reservation_id)

    def put_allocation(self, allocation: AllocationRecord) -> None:
        """Write an allocation, replacing the one with its id if there is one."""
        with self.transaction():
            self._upsert(ALLOCATIONS, allocation)

    def get_allocation(self, allocation_id: str) -> AllocationRecord:
        with self.transaction():
            return self._get(ALLOCATIONS, allocation_id)

    def list_allocations(self, *, deployment_id: str | None = None,
                         states: Collection[AllocationState] = ()
                         ) -> tuple[AllocationRecord, ...]:
        with self.transaction():
            return self._select(ALLOCATIONS, {"deployment_id": deployment_id},
                                "state", states, "created_at, id")

    def delete_allocation(self, allocation_id: str) -> bool:
        with self.transaction():
            return self._delete(ALLOCATIONS, allocation_id)

    def put_hosted_deployment(self, deployment: HostedDeployment) -> None:
        """Write a hosted deployment, replacing the one with its id if there is one."""
        with self.transaction():
            self._upsert(HOSTED, deployment)

    def list_hosted_deployments(self) -> tuple[HostedDeployment, ...]:
        with self.transaction():
            return self._select(HOSTED, {}, "id", (), "id")

    def mark_seen(self, deployment_id: str, at: float) -> bool:
        """Move a hosted deployment's `last_seen` forward to `at` (never back); False if
        no such deployment is hosted. Only the time is written, not the ensemble."""
        if isinstance(at, bool) or not isinstance(at, (int, float)) or not math.isfinite(at):
            raise InvalidRecord("HostedDeployment", "last_seen",
                                f"{at!r} is not a finite number of seconds")
        with self.transaction():
            cursor = self._db.execute(
                "UPDATE hosted_deployments SET last_seen = max(last_seen, ?) WHERE id = ?",
                (float(at), deployment_id))
            return cursor.rowcount > 0

    def forget_hosted_deployment(self, deployment_id: str) -> None:
        """Delete everything a provider keeps of a deployment: its hosted record, its
        reservations and its allocations, in one transaction."""
        with self.transaction():
            for table in ("hosted_deployments", "reservations", "allocations"):
                column = "id" if table == "hosted_deployments" else "deployment_id"
                self._db.execute(f"DELETE FROM {table} WHERE {column} = ?", (deployment_id,))

    # -- rows ------------------------------------------------------------------------

    def _insert(self, table: Table[R], record: R) -> None:
        row = table.encode(record)
        columns = ", ".join(row)
        try:
            self._db.execute(f"INSERT INTO {table.name} ({columns}) VALUES "
                             f"({', '.join(':' + c for c in row)})", row)
        except sqlite3.IntegrityError:
            key = "/".join(str(row[column]) for column in table.key)
            raise DuplicateRecord(table.name, key) from None

    def _upsert(self, table: Table[R], record: R) -> None:
        row = table.encode(record)
        updates = ", ".join(f"{c} = excluded.{c}" for c in row if c not in table.key)
        self._db.execute(
            f"INSERT INTO {table.name} ({', '.join(row)}) VALUES "
            f"({', '.join(':' + c for c in row)}) "
            f"ON CONFLICT ({', '.join(table.key)}) DO UPDATE SET {updates}", row)

    def _get(self, table: Table[R], key: str) -> R:
        rows = self._db.execute(f"SELECT * FROM {table.name} WHERE id = ?", (key,)).fetchall()
        if not rows:
            raise RecordNotFound(table.name, key)
        return table.decode(rows[0])

    def _require(self, table: Table[R], key: str) -> None:
        if not self._db.execute(f"SELECT 1 FROM {table.name} WHERE id = ?", (key,)).fetchall():
            raise RecordNotFound(table.name, key)

    def _select(self, table: Table[R], equal: dict[str, str | None], column: str,
                among: Collection[str], order: str) -> tuple[R, ...]:
        """Rows whose columns equal `equal`'s values (None: any) and whose `column` is
        one of `among` (empty: any)."""
        conditions = [f"{name} = ?" for name, value in equal.items() if value is not None]
        params: list[object] = [value for value in equal.values() if value is not None]
        if among:
            values = sorted({str(value) for value in among})
            conditions.append(f"{column} IN ({', '.join('?' for _ in values)})")
            params.extend(values)
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        rows = self._db.execute(f"SELECT * FROM {table.name}{where} ORDER BY {order}",
                                params).fetchall()
        return tuple(table.decode(row) for row in rows)

    def _delete(self, table: Table[R], key: str) -> bool:
        cursor = self._db.execute(f"DELETE FROM {table.name} WHERE id = ?", (key,))
        return cursor.rowcount > 0


def _check_page(after: int, limit: int) -> None:
    if isinstance(after, bool) or not isinstance(after, int) or after < 0:
        raise ValueError(f"after={after!r}: expected a seq, 0 or more")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit={limit!r}: expected 1 to {MAX_PAGE} events")
