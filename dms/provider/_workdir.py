"""One provider per work directory: an exclusive lock held while the provider is open.

A provider opening removes every execution under its work directory that it does not
adopt (what an earlier run of it left behind). A second provider on the same directory
would remove the first one's running workloads, so it is refused before it looks:
`flock` on ``<work_dir>/lock``, dropped by the kernel when the process dies, so a
crashed provider leaves no stale lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

LOCK_FILE = "lock"


class WorkDirInUse(Exception):
    """Another provider, in this process or another, works in this directory."""

    def __init__(self, directory: Path, holder: str) -> None:
        super().__init__(f"work directory {directory} is in use by another provider{holder}: "
                         "stop it, or give this provider another work directory")
        self.directory = directory


@contextlib.contextmanager
def hold_work_dir(directory: Path) -> Iterator[None]:
    """Hold `directory`'s lock for the block, creating the directory; `WorkDirInUse`
    if another provider holds it, OSError if it cannot be created or opened."""
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.pread(fd, 32, 0).decode(errors="replace").strip()
            raise WorkDirInUse(directory, f" (pid {pid})" if pid.isdigit() else "") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)  # releases the lock
