"""Validation results of ensemble files, rendered for people (text) and programs (JSON).

`check_file` never raises for a bad file: it classifies it as valid, invalid or
unreadable, which is also what `dms validate` exits with (0, 1, 2). Warnings (what was
ignored to load the file) are shown with either outcome and never change it.
"""

from __future__ import annotations

import enum
import json
import os
from collections.abc import Sequence

import attrs

from dms.ensemble import _spec as spec
from dms.ensemble._derive import derive_requirements
from dms.ensemble._load import load_ensemble_file_with_warnings
from dms.ensemble._problems import EnsembleInvalid, EnsembleUnreadable, Problem
from dms.ensemble._requirements import Resources
from dms.ensemble._units import format_size


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
    problems: tuple[Problem, ...] = ()  # errors
    summary: EnsembleSummary | None = None
    warnings: tuple[Problem, ...] = ()

    def as_json(self) -> dict[str, object]:
        return {
            "file": self.file,
            "status": self.status.name.lower(),
            "problems": [problem.as_json() for problem in self.problems],
            "warnings": [warning.as_json() for warning in self.warnings],
            "summary": self.summary.as_json() if self.summary else None,
        }


def check_file(path: str | os.PathLike[str]) -> FileReport:
    name = os.fspath(path)
    try:
        loaded = load_ensemble_file_with_warnings(name)
    except EnsembleUnreadable as exc:
        return FileReport(name, Status.UNREADABLE, exc.problems, warnings=exc.warnings)
    except EnsembleInvalid as exc:
        return FileReport(name, Status.INVALID, exc.problems, warnings=exc.warnings)
    return FileReport(name, Status.VALID, summary=summarize(loaded.ensemble), warnings=loaded.warnings)


def exit_status(reports: Sequence[FileReport]) -> Status:
    return max((report.status for report in reports), default=Status.VALID)


def _count(count: int, word: str) -> str:
    return f"{count} {word}{'s' * (count != 1)}"


def render_text(reports: Sequence[FileReport]) -> str:
    """One headline per file, then its problems, then its warnings (marked as such)."""
    lines: list[str] = []
    for report in reports:
        warned = f", {_count(len(report.warnings), 'warning')}" if report.warnings else ""
        if report.status is Status.VALID:
            lines.append(f"{report.file}: valid{warned}: {report.summary}")
        else:
            headline = f"{report.status.name.lower()}, {_count(len(report.problems), 'problem')}"
            lines.append(f"{report.file}: {headline}{warned}")
        lines.extend(f"  {problem}" for problem in report.problems)
        lines.extend(f"  {warning.where}: warning: {warning.message}" for warning in report.warnings)
    return "\n".join(lines)


def render_json(reports: Sequence[FileReport]) -> str:
    return json.dumps([report.as_json() for report in reports], indent=2)
