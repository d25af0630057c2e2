"""One node per state directory: an exclusive lock held for the node's whole life.

Two nodes on one state directory would both append held grants and revocations to the
same token store, and both speak for the same key; the second one is refused before it
starts: before it listens, dials or writes anything there. The lock is `flock` on ``<state-dir>/lock``: the kernel
drops it when the process dies, so a crashed node never leaves a stale lock behind,
and two nodes in one process conflict as two processes do (each opens the file anew).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import AsyncIterator
from pathlib import Path

LOCK_FILE = "lock"


class StateDirError(Exception):
    """The state directory cannot be used: it cannot be created or opened (the message
    names it and why), or `StateDirInUse`."""


class StateDirInUse(StateDirError):
    """Another node holds this state directory."""

    def __init__(self, directory: Path, holder: str) -> None:
        super().__init__(
            f"state directory {directory} is in use by another node{holder}: stop that "
            "node, or give this one another --state-dir"
        )
        self.directory = directory


@contextlib.asynccontextmanager
async def hold_state_dir(directory: str | os.PathLike[str] | None) -> AsyncIterator[None]:
    """Hold `directory`'s lock for the block (no lock when None), creating the
    directory; `StateDirInUse` if another node, in this process or another, holds it,
    `StateDirError` if it cannot be created or opened."""
    if directory is None:
        yield
        return
    path = Path(directory)
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise StateDirError(f"state directory {path} cannot be used: "
                            f"{exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StateDirInUse(path, _holder(fd)) from None
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError as exc:  # ENOSPC, EDQUOT, EIO: the directory cannot keep state
            raise StateDirError(f"state directory {path}: cannot write its lock: "
                                f"{exc.strerror or exc}") from None
        yield
    finally:
        os.close(fd)  # releases the lock


def _holder(fd: int) -> str:
    """' (pid N)' as the holder wrote it, for the message; '' when unreadable."""
    try:
        pid = os.pread(fd, 32, 0).decode().strip()
    except (OSError, UnicodeDecodeError):
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""


def held_by(directory: str | os.PathLike[str]) -> str | None:
    """Whether a node holds `directory` now: ' (pid N)' or '' when one does (as its
    holder wrote it), None when none does. Takes no lock that outlives the call."""
    try:
        fd = os.open(Path(directory) / LOCK_FILE, os.O_RDONLY)
    except OSError:
        return None  # no lock file: no node ever ran there
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _holder(fd)
        return None
    finally:
        os.close(fd)
