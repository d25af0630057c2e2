"""Hostile review of `/dms/allocation/logs` positions: a position is a run id and an
offset into that run's own stream, nothing a caller can point elsewhere with."""

from __future__ import annotations

from pathlib import Path

import pytest

from dms.actor import InvalidArgs, structure_args
from dms.executor import LogPosition
from dms.executor._logfile import RotatingLogFile, read_log
from dms.provider import wire


@pytest.mark.parametrize("offset", [-1, -(2**70), 2**70, 10**6])
def test_an_offset_outside_the_stream_is_answered_with_its_tail(
        tmp_path: Path, offset: int) -> None:
    log = RotatingLogFile(tmp_path / "out.log")
    log.write(b"one\ntwo\n")
    chunk = read_log(log, LogPosition(log.run, offset), tail=1, limit=1000)
    assert chunk.restarted and chunk.text == "two\n"
    assert chunk.next == LogPosition(log.run, 8)


def test_another_runs_id_reads_only_this_streams_tail(tmp_path: Path) -> None:
    mine, theirs = RotatingLogFile(tmp_path / "a.log"), RotatingLogFile(tmp_path / "b.log")
    mine.write(b"mine\n")
    theirs.write(b"secret\n")
    chunk = read_log(mine, LogPosition(theirs.run, 0), tail=10, limit=1000)
    assert "secret" not in chunk.text
    chunk = read_log(mine, LogPosition(theirs.run, 3), tail=10, limit=1000)
    assert chunk.restarted and chunk.text == "mine\n"


def test_a_read_from_a_position_is_capped_by_the_limit(tmp_path: Path) -> None:
    log = RotatingLogFile(tmp_path / "out.log")
    log.write(b"x" * 50_000 + b"\n")
    chunk = read_log(log, LogPosition(log.run, 1), tail=10, limit=4096)
    assert len(chunk.text) <= 4096 and chunk.truncated


@pytest.mark.parametrize(("position", "path"), [
    ({"run": "r", "offset": "../../etc/passwd"}, "stdout_after.offset"),
    ({"run": "r", "offset": True}, "stdout_after.offset"),
    ({"run": ["r"], "offset": 0}, "stdout_after.run"),
    ({"offset": 0}, "stdout_after.run"),
])
def test_a_position_that_is_not_a_run_and_an_offset_is_refused_by_name(
        position: dict[str, object], path: str) -> None:
    with pytest.raises(InvalidArgs, match=path.replace(".", r"\.")):
        structure_args({"stdout_after": position}, wire.LogsQuery)
