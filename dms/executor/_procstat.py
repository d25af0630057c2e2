"""Resource use of a process group, read from /proc (Linux)."""

from __future__ import annotations

import os
from pathlib import Path

from dms.executor._status import ResourceStats

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def group_members(pgid: int, proc: Path = Path("/proc")) -> list[int]:
    """Live pids whose process group is `pgid` (zombies excluded)."""
    return [pid for pid, fields in _stats(proc) if int(fields[2]) == pgid and fields[0] != "Z"]


def group_stats(pgid: int, proc: Path = Path("/proc")) -> ResourceStats:
    cpu = 0.0
    memory = pids = 0
    for _, fields in _stats(proc):
        if int(fields[2]) != pgid or fields[0] == "Z":
            continue
        pids += 1
        cpu += (int(fields[11]) + int(fields[12])) / _TICKS
        memory += int(fields[21]) * _PAGE
    return ResourceStats(cpu_seconds=cpu, memory_bytes=memory, pids=pids)


def _stats(proc: Path) -> list[tuple[int, list[str]]]:
    """(pid, fields after the command name) for every readable /proc/<pid>/stat."""
    found = []
    for entry in os.scandir(proc):
        if not entry.name.isdigit():
            continue
        try:
            raw = (proc / entry.name / "stat").read_text()
        except OSError:
            continue  # exited while we looked
        # the command name may contain spaces and parentheses: split after the last ')'
        found.append((int(entry.name), raw[raw.rindex(")") + 2 :].split()))
    return found
