"""Validation results of ensemble files, rendered for people (text) and programs (JSON).

`check_file` never raises for a bad file: it classifies it as valid, invalid or
unreadable, which is also what `dms validate` exits with (0, 1, 2).
"""

from __future__ import annotations

import enum
import json
import os
from collections.abc import Sequence

import attrs

from dms.ensemble import spec
from dms.ensemble.derive import derive_requirements
from dms.ensemble.load import load_ensemble_file
from dms.ensemble.problems import EnsembleInvalid, EnsembleUnreadable, Problem
from dms.ensemble.requirements import Resources
from dms.ensemble.units import format_size


class Status(enum.IntEnum):
    """Ordered by severity; the value is the process exit code."""

    VALID = 0
    INVALID = 1
    UNREADABLE = 2


@attrs.frozen
class EnsembleSummary:
    allocations: int
    nodes: int
    edges: int
    total: Resources

    def as_json(self) -> dict[str, object]:
        return {
            "allocations": self.allocations,
            "nodes": self.nodes,
            "edges": self.edges,
            "cpu": self.total.cpu,
            "ram": self.total.ram,
            "disk": self.total.disk,
            "gpus": len(self.total.gpus),
        }

    def __str__(self) -> str:
        def plural(count: int, word: str) -> str:
            return f"{count} {word}{'' if count == 1 else 's'}"

        return (
            f"{plural(self.allocations, 'allocation')}, {plural(self.nodes, 'node')}, "
            f"{plural(self.edges, 'edge')}; total cpu {self.total.cpu:g}, "
            f"ram {format_size(self.total.ram)}, disk {format_size(self.total.disk)}, "
            f"{plural(len(self.total.gpus), 'gpu')}"
        )


def summarize(ensemble: spec.Ensemble) -> EnsembleSummary:
    requirements = derive_requirements(ensemble)
    total = Resources()
    for node in requirements.nodes:
        total = total + node.resources
    return EnsembleSummary(
        allocations=len(ensemble.allocations),
        nodes=len(ensemble.nodes),
        edges=len(ensemble.edge_constraints),
        total=total,
    )


@attrs.frozen
class FileReport:
    file: str
    status: Status
    problems: tuple[Problem, ...] = ()
    summary: EnsembleSummary | None = None

    def as_json(self) -> dict[str, object]:
        return {
            "file": self.file,
            "status": self.status.name.lower(),
            "problems": [problem.as_json() for problem in self.problems],
            "summary": self.summary.as_json() if self.summary else None,
        }


def check_file(path: str | os.PathLike[str]) -> FileReport:
    name = os.fspath(path)
    try:
        ensemble = load_ensemble_file(name)
    except EnsembleUnreadable as exc:
        return FileReport(name, Status.UNREADABLE, exc.problems)
    except EnsembleInvalid as exc:
        return FileReport(name, Status.INVALID, exc.problems)
    return FileReport(name, Status.VALID, summary=summarize(ensemble))


def exit_status(reports: Sequence[FileReport]) -> Status:
    return max((report.status for report in reports), default=Status.VALID)


def render_text(reports: Sequence[FileReport]) -> str:
    lines: list[str] = []
    for report in reports:
        if report.status is Status.VALID:
            lines.append(f"{report.file}: valid: {report.summary}")
            continue
        count = len(report.problems)
        lines.append(f"{report.file}: {report.status.name.lower()}, {count} problem{'s' * (count != 1)}")
        lines.extend(f"  {problem}" for problem in report.problems)
    return "\n".join(lines)


def render_json(reports: Sequence[FileReport]) -> str:
    return json.dumps([report.as_json() for report in reports], indent=2)
