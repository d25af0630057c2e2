"""The leader process of a process execution: who it is, and how its end is noticed.

An execution started by this executor has a leader that is our child: its end and
exit code come from the kernel (`ChildLeader`). After a provider restart the leader is
not our child any more (it was re-parented when the old provider went away), so an
adopted leader (`AdoptedLeader`) is watched through /proc and its exit code is
unknown unless it happens to be our child still (the same process adopted it).

A pid alone does not name a process: pids are reused. A process is identified by its
pid *and* its start time in clock ticks since boot (field 22 of /proc/PID/stat), on
this boot (/proc/sys/kernel/random/boot_id): a different process with a reused pid,
or any process after a reboot, does not match.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Protocol

import attrs
import trio

POLL_SECONDS = 0.25
"""How often an adopted leader is looked at in /proc."""
TICKS = os.sysconf("SC_CLK_TCK")


@attrs.frozen
class ProcessFacts:
    """What /proc says of a pid now."""

    state: str  # R, S, D, Z (zombie: ended, not reaped) ...
    group: int
    session: int
    started: int  # clock ticks since boot


def process_facts(pid: int, proc: Path = Path("/proc")) -> ProcessFacts | None:
    """The pid's facts, or None when there is no such process (or it cannot be read)."""
    try:
        raw = (proc / str(pid) / "stat").read_text()
        # The command name may hold spaces and parentheses: split after the last ')'.
        fields = raw[raw.rindex(")") + 2:].split()
        return ProcessFacts(state=fields[0], group=int(fields[2]), session=int(fields[3]),
                            started=int(fields[19]))
    except (OSError, ValueError, IndexError):
        return None


def boot_id(proc: Path = Path("/proc")) -> str:
    """This boot's id ("" where the kernel does not say)."""
    try:
        return (proc / "sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def boot_time(proc: Path = Path("/proc")) -> float:
    """Unix time of this boot (`btime` of /proc/stat), 0.0 if unknown."""
    with contextlib.suppress(OSError, ValueError):
        for line in (proc / "stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    return 0.0


def still_running(pid: int, started: int) -> bool:
    """True while `pid` is the process that started at tick `started` and has not ended."""
    facts = process_facts(pid)
    return facts is not None and facts.started == started and facts.state != "Z"


class Leader(Protocol):
    pid: int

    async def wait(self) -> int | None:
        """Block until the leader ends: its exit code (negative: killed by that signal),
        or None when it cannot be known."""
        ...


class ChildLeader:
    """A leader this executor started (its child)."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.pid = process.pid

    async def wait(self) -> int | None:
        return await self.process.wait()


class AdoptedLeader:
    """A leader found running after a restart, known by its pid and start time."""

    def __init__(self, pid: int, started: int) -> None:
        self.pid = pid
        self.started = started

    async def wait(self) -> int | None:
        while still_running(self.pid, self.started):
            await trio.sleep(POLL_SECONDS)
        return self._reap()

    def _reap(self) -> int | None:
        """The exit code if the ended leader is still our child (a zombie only we can
        reap), else None: a re-parented process's exit code went to its new parent."""
        facts = process_facts(self.pid)
        if facts is None or facts.started != self.started:
            return None
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            return None
        return os.waitstatus_to_exitcode(status) if pid == self.pid else None
