"""Size-bounded log files: `out.log`, rotated to `out.log.1` ... `out.log.N`.

Writes are small appends to local disk, done synchronously on purpose: a thread hop
per chunk would cost more than the write. Total disk use is bounded by
max_bytes * (backups + 1).
"""

from __future__ import annotations

import os
from pathlib import Path

import trio


class RotatingLogFile:
    def __init__(self, path: Path, max_bytes: int = 1 << 20, backups: int = 3) -> None:
        if max_bytes <= 0 or backups < 0:
            raise ValueError(f"{path}: max_bytes must be > 0 and backups >= 0")
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self._file = open(path, "ab")  # noqa: SIM115 - closed in close()
        self._size = self._file.tell()

    def write(self, data: bytes | bytearray) -> None:
        while data:
            room = self.max_bytes - self._size
            if room <= 0:
                self._rotate()
                room = self.max_bytes
            chunk, data = data[:room], data[room:]
            self._file.write(chunk)
            self._size += len(chunk)
        self._file.flush()

    def _rotate(self) -> None:
        self._file.close()
        if self.backups == 0:
            self.path.unlink(missing_ok=True)
        else:
            for index in range(self.backups - 1, 0, -1):
                older = self.path.with_name(f"{self.path.name}.{index}")
                if older.exists():
                    os.replace(older, self.path.with_name(f"{self.path.name}.{index + 1}"))
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        self._file = open(self.path, "ab")  # noqa: SIM115
        self._size = 0

    def close(self) -> None:
        self._file.close()


async def pump_into(stream: trio.abc.ReceiveStream, log: RotatingLogFile) -> None:
    """Copy a pipe into `log` until the writer closes it."""
    try:
        while chunk := await stream.receive_some(65536):
            log.write(chunk)
    finally:
        log.close()


def tail_lines(path: Path, lines: int) -> str:
    """The last `lines` lines of a rotated log (reading the previous file when needed)."""
    if lines <= 0:
        return ""
    collected: list[bytes] = []
    for candidate in (path, path.with_name(f"{path.name}.1")):
        if not candidate.exists():
            break
        collected.insert(0, candidate.read_bytes())
        if b"".join(collected).count(b"\n") >= lines:
            break
    text = b"".join(collected).decode("utf-8", errors="replace")
    kept = text.splitlines(keepends=True)[-lines:]
    return "".join(kept)
