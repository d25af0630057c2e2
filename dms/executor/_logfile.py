"""Size-bounded log files: `out.log`, rotated to `out.log.1` ... `out.log.N`.

Writes are small appends to local disk, done synchronously on purpose: a thread hop
per chunk would cost more than the write. Total disk use is bounded by
max_bytes * (backups + 1).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import BinaryIO

import trio

from dms.executor._status import LogChunk, LogPosition


class RotatingLogFile:
    def __init__(self, path: Path, max_bytes: int = 1 << 20, backups: int = 3) -> None:
        if max_bytes <= 0 or backups < 0:
            raise ValueError(f"{path}: max_bytes must be > 0 and backups >= 0")
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self.dropped_bytes = 0
        self.last_error: OSError | None = None
        self.run = secrets.token_hex(8)
        """This writer's name for its stream: positions in another run's stream (another
        execution, or this one after a provider restart) mean nothing here."""
        self.discarded = 0  # bytes rotated out of the oldest backup: positions start there
        self._file: BinaryIO | None = None
        self._size = 0
        try:
            self._open()
        except OSError as error:  # retried by the next write
            self.last_error = error

    def _open(self) -> None:
        self._file = open(self.path, "ab")  # noqa: SIM115 - closed in close()
        self._size = self._file.tell()

    def write(self, data: bytes | bytearray) -> None:
        """Appends `data`; an OSError (disk full, ...) propagates and the caller decides."""
        if self._file is None:
            self._open()
        assert self._file is not None
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
        assert self._file is not None
        self._file.close()
        self._file = None
        oldest = self.path.with_name(f"{self.path.name}.{self.backups}") if self.backups \
            else self.path
        with contextlib.suppress(OSError):
            self.discarded += oldest.stat().st_size
        if self.backups == 0:
            self.path.unlink(missing_ok=True)
        else:
            for index in range(self.backups - 1, 0, -1):
                older = self.path.with_name(f"{self.path.name}.{index}")
                if older.exists():
                    os.replace(older, self.path.with_name(f"{self.path.name}.{index + 1}"))
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        self._open()

    def close(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None

    def describe_loss(self) -> str:
        """A line saying what was dropped and why, or "" when nothing was."""
        if not self.dropped_bytes:
            return ""
        return f"[dms: {self.dropped_bytes} bytes of {self.path.name} dropped: {self.last_error}]"


async def pump_into(stream: trio.abc.ReceiveStream, log: RotatingLogFile) -> None:
    """Copy a pipe into `log` until the writer closes it.

    A failing write (disk full, quota) drops that chunk and is counted in
    `log.dropped_bytes`; the pipe keeps being drained so the workload never blocks on a
    full pipe and one execution's disk trouble does not tear down the others."""
    try:
        while chunk := await stream.receive_some(65536):
            try:
                log.write(chunk)
            except OSError as error:
                log.dropped_bytes += len(chunk)
                log.last_error = error
                log.close()  # reopened by the next write
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


def _kept(log: RotatingLogFile) -> bytes:
    """What the stream's files hold now, oldest first (at most max_bytes * (backups + 1))."""
    parts = []
    for index in range(log.backups, 0, -1):
        with contextlib.suppress(OSError):
            parts.append(log.path.with_name(f"{log.path.name}.{index}").read_bytes())
    with contextlib.suppress(OSError):
        parts.append(log.path.read_bytes())
    return b"".join(parts)


def read_log(log: RotatingLogFile, after: LogPosition | None, *, tail: int,
             limit: int) -> LogChunk:
    """The stream from `after` on (at most `limit` bytes, ending at a line's end when
    cut), or without `after` its last `tail` lines (at most `limit` bytes of them).
    A position of another run, or past the stream's end, is not trusted: the answer is
    the tail again, marked `restarted`; one rotated away starts at the oldest byte kept,
    saying how many were lost (`skipped`). Offset 0 is every run's start."""
    data = _kept(log)
    base = log.discarded
    end = base + len(data)
    if after is not None and after.offset == 0:  # nothing seen yet: any run's start
        after = LogPosition(log.run, 0)
    restarted = after is not None and (after.run != log.run or not 0 <= after.offset <= end)
    if after is None or restarted:
        lines = data.splitlines(keepends=True)[-tail:] if tail > 0 else []
        text = b"".join(lines)
        if len(text) > limit:
            text = text[-limit:]
            newline = text.find(b"\n")
            if 0 <= newline < len(text) - 1:
                text = text[newline + 1:]
        return LogChunk(text.decode("utf-8", errors="replace"), LogPosition(log.run, end),
                        restarted=restarted)
    assert after is not None
    start = max(after.offset, base)
    piece = data[start - base:start - base + limit]
    truncated = start + len(piece) < end
    if truncated and (newline := piece.rfind(b"\n")) >= 0:
        piece = piece[:newline + 1]
    return LogChunk(piece.decode("utf-8", errors="replace"),
                    LogPosition(log.run, start + len(piece)), skipped=start - after.offset,
                    truncated=start + len(piece) < end)
