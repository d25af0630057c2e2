"""Ensemble files: the typed spec, loading and validation, and what nodes require.

    ensemble = load_ensemble_file("examples/ensembles/hello.yaml")
    requirements = derive_requirements(ensemble)

Loading raises `EnsembleUnreadable` or `EnsembleInvalid`; both carry `.problems`, a
tuple of `Problem(file, path, message, line)` covering every problem found.
"""

from dms.ensemble._derive import derive_requirements
from dms.ensemble._load import dump_ensemble, load_ensemble, load_ensemble_file
from dms.ensemble._problems import (
    EnsembleError,
    EnsembleInvalid,
    EnsembleUnreadable,
    Problem,
    format_path,
)
from dms.ensemble._spec import Allocation, Ensemble, EnsembleNode, HealthCheckSpec
from dms.ensemble._yaml_source import YamlLimits

__all__ = [
    "Allocation",
    "Ensemble",
    "EnsembleError",
    "EnsembleInvalid",
    "EnsembleUnreadable",
    "EnsembleNode",
    "HealthCheckSpec",
    "Problem",
    "YamlLimits",
    "derive_requirements",
    "dump_ensemble",
    "format_path",
    "load_ensemble",
    "load_ensemble_file",
]
