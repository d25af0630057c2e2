"""Loading an ensemble: bytes -> YAML data -> typed `Ensemble` -> semantic checks.

`load_ensemble` is pure (text in, model or `EnsembleError` out); `load_ensemble_file`
is the thin I/O shell that reads at most the size limit from disk. Either raises
`EnsembleUnreadable` (not a bounded YAML document) or `EnsembleInvalid` carrying every
problem found, each with file, path and line.

A file can load and still have warnings (unknown keys that are not misspellings, which
are ignored). `load_ensemble` and `load_ensemble_file` drop them; their `_with_warnings`
forms return them with the ensemble, and `EnsembleInvalid.warnings` carries them when
the file also has errors.
"""

from __future__ import annotations

import os
from typing import Any

import attrs
import yaml

from dms.ensemble import _spec as spec
from dms.ensemble._problems import (
    EnsembleInvalid,
    EnsembleUnreadable,
    Path,
    Problem,
    Severity,
    sort_problems,
)
from dms.ensemble._structure import (
    CONVERTER,
    TOLERANT_CONVERTER,
    known_keys,
    salvage_ensemble,
    shape_problems,
    written_paths,
)
from dms.ensemble._validate import semantic_problems
from dms.ensemble._yaml_source import YamlDocument, YamlLimits, read_yaml


@attrs.frozen
class LoadedEnsemble:
    """An ensemble that loaded, and what in its file was ignored to load it."""

    ensemble: spec.Ensemble
    warnings: tuple[Problem, ...] = ()


def load_ensemble(
    text: str | bytes, *, file: str = "<string>", limits: YamlLimits | None = None
) -> spec.Ensemble:
    """Parse and validate one ensemble document."""
    return load_ensemble_with_warnings(text, file=file, limits=limits).ensemble


def load_ensemble_file(path: str | os.PathLike[str], *, limits: YamlLimits | None = None) -> spec.Ensemble:
    """Read and load the ensemble at `path`; a missing or unreadable file, or one over
    the size limit, is `EnsembleUnreadable` (without reading more than the limit)."""
    return load_ensemble_file_with_warnings(path, limits=limits).ensemble


def load_ensemble_with_warnings(
    text: str | bytes, *, file: str = "<string>", limits: YamlLimits | None = None
) -> LoadedEnsemble:
    """`load_ensemble`, keeping the warnings."""
    return structure_ensemble(read_yaml(text, file=file, limits=limits))


def load_ensemble_file_with_warnings(
    path: str | os.PathLike[str], *, limits: YamlLimits | None = None
) -> LoadedEnsemble:
    """`load_ensemble_file`, keeping the warnings."""
    limits = limits or YamlLimits()
    name = os.fspath(path)
    try:
        with open(name, "rb") as stream:
            data = stream.read(limits.max_bytes + 1)
    except OSError as exc:
        raise EnsembleUnreadable([Problem(name, (), f"cannot read: {exc.strerror or exc}")]) from None
    return load_ensemble_with_warnings(data, file=name, limits=limits)


def structure_ensemble(document: YamlDocument) -> LoadedEnsemble:
    """The typed ensemble for already-read YAML data and its warnings, or
    `EnsembleInvalid` carrying the errors and the warnings."""
    problems = list(document.problems)
    warnings: list[Problem] = []
    flagged = {problem.path for problem in problems}

    def add(path: Path, message: str, severity: Severity = Severity.ERROR) -> None:
        # a value the YAML reader already rejected is not reported twice
        if not any(path[: len(bad)] == bad for bad in flagged):
            found = Problem(document.file, path, message, _line(document, path))
            (warnings if severity is Severity.WARNING else problems).append(found)

    if not isinstance(document.data, dict):
        got = "an empty document" if document.data is None else "not a mapping"
        add((), f"{got}: an ensemble is a mapping with at least `allocations` and `nodes`")
        raise EnsembleInvalid(sort_problems(problems))
    data = _without_templates(document)
    broken: frozenset[Path] = frozenset()
    try:
        ensemble = CONVERTER.structure(data, spec.Ensemble)
    except Exception as exc:  # noqa: BLE001 - every structuring failure becomes a problem
        findings = list(shape_problems(exc))
        for path, message, severity in findings:
            add(path, message, severity)
        if all(severity is Severity.WARNING for _, _, severity in findings):
            ensemble = TOLERANT_CONVERTER.structure(data, spec.Ensemble)
        else:
            # keep going with stand-ins for the broken values, so one run reports every
            # problem: structural and semantic together
            ensemble, broken = salvage_ensemble(data)
    for path, message in semantic_problems(ensemble, broken):
        add(path, message)
    if problems:
        raise EnsembleInvalid(sort_problems(problems), sort_problems(warnings))
    return LoadedEnsemble(ensemble, tuple(sort_problems(warnings)))


def _line(document: YamlDocument, path: Path) -> int | None:
    """The line of `path` as the file spelt it, else of its nearest written ancestor."""
    best, line = -1, None
    for written in written_paths(path):
        depth = len(written)
        while depth > best and written[:depth] not in document.lines:
            depth -= 1
        if depth > best:
            best, line = depth, document.lines.get(written[:depth])
    return line


def _without_templates(document: YamlDocument) -> dict[str, Any]:
    """The top-level mapping without its templates: keys that only hold an anchor for
    aliases elsewhere (NuNet's `nginx_wrapper: &svc`). A known section keeps its place
    even when anchored."""
    assert isinstance(document.data, dict)
    sections = set(known_keys(spec.Ensemble))
    return {
        key: value
        for key, value in document.data.items()
        if key in sections or key not in document.templates
    }


def unstructure_ensemble(ensemble: spec.Ensemble) -> dict[str, Any]:
    """Plain data in the canonical file form (defaults omitted, sizes with units)."""
    data: dict[str, Any] = CONVERTER.unstructure(ensemble)
    return {"version": ensemble.version, **data}


def dump_ensemble(ensemble: spec.Ensemble) -> str:
    """YAML that `load_ensemble` reads back to an equal ensemble."""
    return yaml.safe_dump(unstructure_ensemble(ensemble), sort_keys=False, allow_unicode=True)
