"""Reading a small settings file whole: bounded, so a huge or endless file (a device, a
FIFO left in its place) cannot take the process's memory or time."""

from __future__ import annotations

from pathlib import Path


class UnreadableFile(ValueError):
    """The file is there but cannot be read, or is over its limit (the message says
    which, naming the file)."""


def read_small_file(path: Path, limit: int) -> bytes | None:
    """The bytes of `path`; None when there is no such file."""
    try:
        with path.open("rb") as file:
            data = file.read(limit + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UnreadableFile(f"{path}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise UnreadableFile(f"{path}: over {limit} bytes")
    return data
