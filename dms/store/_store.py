"""`NodeStore`: the node database for trio code, with every call off the trio loop.

    async with open_node_store(state_dir) as store:
        await store.call(NodeDatabase.create_deployment, record)
        events = await store.call(NodeDatabase.events_since, deployment_id, after=seq)
        await store.call(lambda db: (db.update_deployment(...), db.append_event(...)))

SQLite blocks: a commit waits for the disk, a big list decodes for a while. Run on the
trio thread, that would stall every other task of the node (links, heartbeats, other
deployments). So every call runs in a worker thread, through `trio.to_thread.run_sync`
with the store's own `CapacityLimiter(1)`, rather than on a long-lived thread fed by a
queue:

- One at a time: the limiter admits one call, so the connection is never used by two
  threads at once and one call's transaction never interleaves with another's. The
  limiter is FIFO, so calls run in the order they were made.
- Trio's idle-thread cache reuses the same worker thread for consecutive calls; results,
  exceptions and cancellation are trio's, not hand-written queue plumbing, and there is
  no thread without an owner: the store's block owns the connection, and each call's
  caller owns the call.
- A call that has started is not abandoned when its caller is cancelled: it finishes
  (its transaction commits or rolls back whole) and the cancellation is delivered to
  the caller afterwards. A caller still waiting for its turn is cancelled at once.

Every call is one transaction: pass a function of the database to group several
operations atomically. Such a function runs in the worker thread; it must not touch
trio, and it should not wait on anything but the database.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

import trio

from dms.store._database import (
    DATABASE_FILE,
    DEFAULT_RETENTION,
    EventRetention,
    NodeDatabase,
)
from dms.store._errors import StoreClosed

P = ParamSpec("P")
T = TypeVar("T")


class NodeStore:
    """A node's database for trio tasks; open one with `open_node_store`."""

    def __init__(self, database: NodeDatabase, limiter: trio.CapacityLimiter) -> None:
        self.path = database.path
        self._database: NodeDatabase | None = database
        self._limiter = limiter

    @classmethod
    def open(cls, state_dir: str | os.PathLike[str], *,
             retention: EventRetention = DEFAULT_RETENTION) -> NodeStore:
        """Open `<state_dir>/node.sqlite3` here and now, on the calling thread: for a
        node that opens its state before it serves (a few milliseconds, once), so its
        errors are the node's start-up errors. Close it with `close` when no call runs."""
        return cls(NodeDatabase.open(Path(state_dir) / DATABASE_FILE, retention),
                   trio.CapacityLimiter(1))

    def close(self) -> None:
        """Close now; only when no call is running (the node's tasks have ended)."""
        self._close()

    def call_now(self, operation: Callable[Concatenate[NodeDatabase, P], T],
                 *args: P.args, **kwargs: P.kwargs) -> T:
        """`call`, on the calling thread: for a node reading its state as it starts,
        before any call can be running (a few milliseconds, once)."""
        database = self._open_database()
        with database.transaction():
            return operation(database, *args, **kwargs)

    async def call(self, operation: Callable[Concatenate[NodeDatabase, P], T],
                   *args: P.args, **kwargs: P.kwargs) -> T:
        """`operation(database, *args, **kwargs)` in the worker thread, in one
        transaction; its result or its exception. `StoreClosed` after the store's
        block has ended."""

        def work() -> T:
            database = self._open_database()
            with database.transaction():
                return operation(database, *args, **kwargs)

        self._open_database()  # fail before waiting for a turn
        return await trio.to_thread.run_sync(work, limiter=self._limiter,
                                             thread_name=f"dms.store {self.path}")

    def _open_database(self) -> NodeDatabase:
        if self._database is None:
            raise StoreClosed(f"{self.path}: the store is closed")
        return self._database

    def _close(self) -> None:
        if self._database is not None:
            self._database.close()
            self._database = None

    async def aclose(self) -> None:
        """Close once the calls already waiting have run; later calls get
        `StoreClosed`. Shielded: a node that is being cancelled still closes its file."""
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(self._close, limiter=self._limiter)


@asynccontextmanager
async def open_node_store(state_dir: str | os.PathLike[str], *,
                          retention: EventRetention = DEFAULT_RETENTION,
                          ) -> AsyncIterator[NodeStore]:
    """The database `<state_dir>/node.sqlite3` for the block (created or migrated when
    opened, closed after): the errors of `NodeDatabase.open`."""
    limiter = trio.CapacityLimiter(1)
    path = Path(state_dir) / DATABASE_FILE
    database = await trio.to_thread.run_sync(NodeDatabase.open, path, retention,
                                             limiter=limiter)
    store = NodeStore(database, limiter)
    try:
        yield store
    finally:
        await store.aclose()
