"""Loading an ensemble: bytes -> YAML data -> typed `Ensemble` -> semantic checks.

`load_ensemble` is pure (text in, model or `EnsembleError` out); `load_ensemble_file`
is the thin I/O shell that reads at most the size limit from disk. Either raises
`EnsembleUnreadable` (not a bounded YAML document) or `EnsembleInvalid` carrying every
problem found, each with file, path and line.
"""

from __future__ import annotations

import os
from typing import Any

import yaml

from dms.ensemble import spec
from dms.ensemble.problems import EnsembleInvalid, EnsembleUnreadable, Path, Problem, sort_problems
from dms.ensemble.structure import CONVERTER, salvage_ensemble, shape_problems
from dms.ensemble.validate import semantic_problems
from dms.ensemble.yaml_source import YamlDocument, YamlLimits, read_yaml


def load_ensemble(
    text: str | bytes, *, file: str = "<string>", limits: YamlLimits | None = None
) -> spec.Ensemble:
    """Parse and validate one ensemble document."""
    return structure_ensemble(read_yaml(text, file=file, limits=limits))


def load_ensemble_file(path: str | os.PathLike[str], *, limits: YamlLimits | None = None) -> spec.Ensemble:
    """Read and load the ensemble at `path`; a missing or unreadable file, or one over
    the size limit, is `EnsembleUnreadable` (without reading more than the limit)."""
    limits = limits or YamlLimits()
    name = os.fspath(path)
    try:
        with open(name, "rb") as stream:
            data = stream.read(limits.max_bytes + 1)
    except OSError as exc:
        raise EnsembleUnreadable([Problem(name, (), f"cannot read: {exc.strerror or exc}")]) from None
    return load_ensemble(data, file=name, limits=limits)


def structure_ensemble(document: YamlDocument) -> spec.Ensemble:
    """The typed ensemble for already-read YAML data, or `EnsembleInvalid`."""
    problems = list(document.problems)
    flagged = {problem.path for problem in problems}

    def add(path: Path, message: str) -> None:
        # a value the YAML reader already rejected is not reported twice
        if not any(path[: len(bad)] == bad for bad in flagged):
            problems.append(Problem(document.file, path, message, document.line_of(path)))

    if not isinstance(document.data, dict):
        got = "an empty document" if document.data is None else "not a mapping"
        add((), f"{got}: an ensemble is a mapping with at least `allocations` and `nodes`")
        raise EnsembleInvalid(sort_problems(problems))
    try:
        ensemble = CONVERTER.structure(document.data, spec.Ensemble)
        broken: frozenset[Path] = frozenset()
    except Exception as exc:  # noqa: BLE001 - every structuring failure becomes a problem
        for path, message in shape_problems(exc):
            add(path, message)
        # keep going with stand-ins for the broken values, so one run reports every
        # problem: structural and semantic together
        ensemble, broken = salvage_ensemble(document.data)
    for path, message in semantic_problems(ensemble, broken):
        add(path, message)
    if problems:
        raise EnsembleInvalid(sort_problems(problems))
    return ensemble


def unstructure_ensemble(ensemble: spec.Ensemble) -> dict[str, Any]:
    """Plain data in the canonical file form (defaults omitted, sizes with units)."""
    data: dict[str, Any] = CONVERTER.unstructure(ensemble)
    return {"version": ensemble.version, **data}


def dump_ensemble(ensemble: spec.Ensemble) -> str:
    """YAML that `load_ensemble` reads back to an equal ensemble."""
    return yaml.safe_dump(unstructure_ensemble(ensemble), sort_keys=False, allow_unicode=True)
