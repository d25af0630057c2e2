"""What is wrong with an ensemble file, as data a person or a program can act on.

A `Problem` names the file, the YAML path (`nodes.web.ports[1].public`), the line when
the YAML has one, and a message that says what would be valid. Loading never stops at
the first problem: every problem of a file travels together in one exception.

A problem is an error (the file is not loaded) or a warning (the file loads and the
warning says what was ignored, e.g. a key NuNet writes that dms has no use for).
Errors and warnings travel in separate tuples, so nothing that reads `problems` has
to filter out what did not stop the load.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence

import attrs

PathPart = str | int
Path = tuple[PathPart, ...]


def format_path(path: Path) -> str:
    """`("nodes", "web", "ports", 1, "public")` -> `nodes.web.ports[1].public`.

    Keys that are not plain identifiers-with-dashes are quoted so the path stays
    unambiguous (`scripts["setup.sh"]`)."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part and all(ch.isalnum() or ch in "_-" for ch in part):
            text += f".{part}" if text else part
        else:
            text += f'["{part}"]'
    return text  # "" is the whole document


class Severity(enum.Enum):
    ERROR = "error"  # the file does not load
    WARNING = "warning"  # the file loads; something in it was ignored


@attrs.frozen
class Problem:
    file: str
    path: Path
    message: str
    line: int | None = None  # 1-based; None when the YAML has no node for the path

    @property
    def where(self) -> str:
        location = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{location}: {format_path(self.path)}" if self.path else location

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"

    def as_json(self) -> dict[str, object]:
        return {
            "file": self.file,
            "path": format_path(self.path),
            "line": self.line,
            "message": self.message,
        }


class EnsembleError(Exception):
    """Base of every failure to turn a file into an ensemble; carries all its problems
    (errors) and, apart, the warnings found on the way."""

    def __init__(self, problems: Iterable[Problem], warnings: Iterable[Problem] = ()) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        self.warnings: tuple[Problem, ...] = tuple(warnings)
        super().__init__(self._summary())

    def _summary(self) -> str:
        if len(self.problems) == 1:
            return str(self.problems[0])
        lines = [f"{len(self.problems)} problems:"]
        lines.extend(f"  {problem}" for problem in self.problems)
        return "\n".join(lines)


class EnsembleUnreadable(EnsembleError):
    """The file could not be read as YAML at all: missing, too big, not YAML, a YAML
    bomb, or nesting too deep. Nothing about its contents was checked."""


class EnsembleInvalid(EnsembleError):
    """The file is YAML but does not describe a valid ensemble."""


def sort_problems(problems: Sequence[Problem]) -> list[Problem]:
    """File order: by line (problems without a line last), then by path."""
    return sorted(
        problems,
        key=lambda p: (p.file, p.line is None, p.line or 0, format_path(p.path)),
    )
