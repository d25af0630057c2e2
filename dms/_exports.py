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
                 aliases: Mapping[str, str] | None = None,
                 ) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """The module `__getattr__` and `__dir__` of `package`: `names` maps each module to
    the names re-exported from it under their own names, `aliases` a name to what it
    stands for: a module re-exported whole ("pkg._wire" for `from pkg import _wire as
    wire`) or a renamed attribute ("pkg._command:node" for `from pkg._command import node
    as node_command`). A name is imported on first access, then kept as a plain attribute
    of the package."""
    home = {name: module for module, listed in names.items() for name in listed}
    other = dict(aliases or {})
    LAZY_PACKAGES[package] = {**home, **other}
    namespace = sys.modules[package].__dict__

    def __getattr__(name: str) -> object:
        if name in other:
            module, _, attribute = other[name].partition(":")
            value: object = importlib.import_module(module)
            if attribute:
                value = getattr(value, attribute)
        elif name in home:
            value = getattr(importlib.import_module(home[name]), name)
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *home, *other})

    return __getattr__, __dir__
