"""Reading a rotated log on from a position: what `dms logs --follow` relies on to print
each line once, across rotations and restarts."""

from __future__ import annotations

from pathlib import Path

from dms.executor import LogPosition
from dms.executor._logfile import RotatingLogFile, read_log


def test_reading_on_from_the_last_position_gives_only_the_new_lines(tmp_path: Path) -> None:
    log = RotatingLogFile(tmp_path / "out.log")
    log.write(b"one\ntwo\n")
    first = read_log(log, None, tail=10, limit=1000)
    assert first.text == "one\ntwo\n" and not first.restarted
    log.write(b"three\n")
    second = read_log(log, first.next, tail=10, limit=1000)
    assert second.text == "three\n"
    assert read_log(log, second.next, tail=10, limit=1000).text == ""


def test_a_tail_is_the_last_lines_and_positions_at_the_end(tmp_path: Path) -> None:
    log = RotatingLogFile(tmp_path / "out.log")
    log.write(b"".join(f"line {n}\n".encode() for n in range(100)))
    tail = read_log(log, None, tail=3, limit=1000)
    assert tail.text == "line 97\nline 98\nline 99\n"
    log.write(b"line 100\n")
    assert read_log(log, tail.next, tail=3, limit=1000).text == "line 100\n"


def test_rotation_keeps_positions_and_says_what_it_took(tmp_path: Path) -> None:
    log = RotatingLogFile(tmp_path / "out.log", max_bytes=10, backups=1)
    log.write(b"aaaa\n")
    seen = read_log(log, None, tail=10, limit=1000)
    for word in (b"bbbb\n", b"cccc\n", b"dddd\n", b"eeee\n"):  # rotates twice
        log.write(word)
    assert log.discarded == 10  # "aaaa\nbbbb\n" went with the second rotation
    after_rotation = read_log(log, seen.next, tail=10, limit=1000)
    assert after_rotation.text == "cccc\ndddd\neeee\n"
    assert after_rotation.skipped == 5  # "bbbb\n": written after `seen`, rotated away


def test_a_capped_read_ends_at_a_line_and_the_rest_follows(tmp_path: Path) -> None:
    log = RotatingLogFile(tmp_path / "out.log")
    log.write(b"12345\n67890\nabcde\n")
    start = LogPosition(log.run, 0)
    part = read_log(log, start, tail=10, limit=14)
    assert part.text == "12345\n67890\n" and part.truncated
    rest = read_log(log, part.next, tail=10, limit=14)
    assert rest.text == "abcde\n" and not rest.truncated


def test_a_position_of_another_run_is_not_trusted(tmp_path: Path) -> None:
    log = RotatingLogFile(tmp_path / "out.log")
    log.write(b"old\n")
    position = read_log(log, None, tail=10, limit=1000).next
    assert position is not None
    again = RotatingLogFile(tmp_path / "out.log")  # e.g. after a provider restart
    again.write(b"new\n")
    reread = read_log(again, position, tail=1, limit=1000)
    assert reread.restarted and reread.text == "new\n"
    past_end = read_log(again, LogPosition(again.run, 10_000), tail=1, limit=1000)
    assert past_end.restarted
