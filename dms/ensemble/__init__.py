"""Ensemble files: the typed spec, loading and validation, and what nodes require.

    ensemble = load_ensemble_file("examples/ensembles/hello.yaml")
    requirements = derive_requirements(ensemble)

Loading raises `EnsembleUnreadable` or `EnsembleInvalid`; both carry `.problems`, a
tuple of `Problem(file, path, message, line)` covering every problem found.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
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
else:
    from dms._exports import lazy_exports

    __getattr__, __dir__ = lazy_exports(__name__, {
        "dms.ensemble._derive": ("derive_requirements",),
        "dms.ensemble._load": ("dump_ensemble", "load_ensemble", "load_ensemble_file"),
        "dms.ensemble._problems": (
            "EnsembleError", "EnsembleInvalid", "EnsembleUnreadable", "Problem", "format_path",
        ),
        "dms.ensemble._spec": ("Allocation", "Ensemble", "EnsembleNode", "HealthCheckSpec"),
        "dms.ensemble._yaml_source": ("YamlLimits",),
    })

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
