"""What can go wrong with a node's database, one named class per failure.

Every message names the file, the table, the column or the record involved, so an
operator can tell a corrupted row from a downgrade from a programming mistake.
"""

from __future__ import annotations

from pathlib import Path


class StoreError(Exception):
    """Base class of every store failure; on its own: the database file cannot be opened
    or used (the message names the file and why)."""


class SchemaTooNew(StoreError):
    """The database was written by a newer dms than this one: it is left untouched,
    since reading it with an older schema could lose what the newer code keeps."""

    def __init__(self, path: Path, found: int, known: int) -> None:
        super().__init__(
            f"{path}: schema version {found} is newer than this dms knows ({known}); "
            "run the dms that wrote it, or move the file away to start afresh")
        self.path = path
        self.found = found
        self.known = known


class MigrationFailed(StoreError):
    """A migration script failed; the database was rolled back to the version it had."""

    def __init__(self, path: Path, version: int, problem: str) -> None:
        super().__init__(f"{path}: migration to schema version {version} failed "
                         f"(nothing was changed): {problem}")
        self.path = path
        self.version = version


class MalformedRow(StoreError):
    """A row that does not decode into its record: bad JSON, an unknown enum value, a
    value its record refuses. Never guessed around: a node must not act on state it
    cannot read."""

    def __init__(self, table: str, key: str, column: str, problem: str) -> None:
        super().__init__(f"{table} row {key!r}: column {column}: {problem}")
        self.table = table
        self.key = key
        self.column = column


class RecordNotFound(StoreError, KeyError):
    """No record with that key in that table."""

    def __init__(self, table: str, key: str) -> None:
        super().__init__(table, key)
        self.table = table
        self.key = key

    def __str__(self) -> str:
        return f"no {self.table} record {self.key!r}"


class DuplicateRecord(StoreError):
    """A record with that key already exists where a new one was to be created."""

    def __init__(self, table: str, key: str) -> None:
        super().__init__(f"{table} record {key!r} already exists")
        self.table = table
        self.key = key


class EventTooLarge(StoreError):
    """An event payload over the per-event limit: refused rather than truncated."""

    def __init__(self, deployment_id: str, size: int, limit: int) -> None:
        super().__init__(f"event for deployment {deployment_id}: payload is {size} bytes "
                         f"of JSON, at most {limit} are kept per event")
        self.deployment_id = deployment_id
        self.size = size
        self.limit = limit


class StoreClosed(StoreError):
    """The store was used after it was closed."""


class InvalidRecord(StoreError, ValueError):
    """A record field that its record refuses (not a UUID, not a DID, not finite ...),
    raised when the record is built, so nothing invalid is ever written."""

    def __init__(self, record: str, field: str, problem: str) -> None:
        super().__init__(f"{record}.{field}: {problem}")
        self.record = record
        self.field = field
        self.problem = problem
