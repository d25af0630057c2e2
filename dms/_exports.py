"""A package's re-exports, imported on first use (PEP 562) instead of with the package.

Importing `dms.deployment._service` runs `dms/__init__.py` and `dms/deployment/__init__.py`
first; when those imported everything they re-export, a client command that needs one
module of a package paid for all of it (the orchestrator, the provider, the store).
A package lists its re-exports twice: as real imports under `if TYPE_CHECKING:` (what
mypy and readers see) and, in the `else:` branch, as `lazy_exports(__name__, ...)`, the
module each name comes from. `tests/dms/test_lazy_exports.py` checks the two lists agree.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence

LAZY_PACKAGES: dict[str, dict[str, str]] = {}
"""package -> {re-exported name: the module it is imported from}, for the tests."""


def lazy_exports(package: str, names: Mapping[str, Sequence[str]],
                 submodules: Mapping[str, str] | None = None,
                 ) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """The module `__getattr__` and `__dir__` of `package`: `names` maps each module to
    the names re-exported from it, `submodules` an alias to a module re-exported whole
    (`from pkg import _wire as wire`). A name is imported on first access, then kept as a
    plain attribute of the package."""
    home = {name: module for module, listed in names.items() for name in listed}
    whole = dict(submodules or {})
    LAZY_PACKAGES[package] = {**home, **whole}
    namespace = sys.modules[package].__dict__

    def __getattr__(name: str) -> object:
        if name in whole:
            value: object = importlib.import_module(whole[name])
        elif name in home:
            value = getattr(importlib.import_module(home[name]), name)
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *home, *whole})

    return __getattr__, __dir__
