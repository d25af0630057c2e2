"""Packages that re-export on first use (`dms._exports`) promise what they did when they
imported everything: the names mypy sees under TYPE_CHECKING are the ones loaded, each
from the module it names, and loading one name does not load its siblings' modules."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from dms._exports import LAZY_PACKAGES, lazy_exports

ROOT = Path(__file__).resolve().parents[2]
LAZY = sorted(".".join(path.parent.relative_to(ROOT).parts)
              for path in (ROOT / "dms").rglob("__init__.py")
              if "lazy_exports(__name__" in path.read_text())


def is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def checked_imports(package: str) -> dict[str, str]:
    """name -> module of the imports under the package's `if TYPE_CHECKING:`."""
    path = ROOT.joinpath(*package.split("."), "__init__.py")
    found: dict[str, str] = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for statement in node.body:
                assert isinstance(statement, ast.ImportFrom)
                module = (f"{package}.{statement.module}" if statement.level
                          else statement.module or "")
                for alias in statement.names:
                    if alias.asname is None:
                        found[alias.name] = module
                    elif is_module(f"{module}.{alias.name}"):
                        found[alias.asname] = f"{module}.{alias.name}"
                    else:
                        found[alias.asname] = f"{module}:{alias.name}"
    return found


def eager_imports(package: str) -> dict[str, object]:
    """What the package's TYPE_CHECKING imports give when run: what it once imported."""
    path = ROOT.joinpath(*package.split("."), "__init__.py")
    namespace: dict[str, object] = {"__name__": package, "__package__": package}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            exec(compile(ast.Module(body=node.body, type_ignores=[]), str(path), "exec"),
                 namespace)
    return namespace


@pytest.mark.parametrize("package", LAZY)
def test_the_lazy_names_are_the_type_checked_imports(package: str) -> None:
    importlib.import_module(package)
    assert LAZY_PACKAGES[package] == checked_imports(package)


@pytest.mark.parametrize("package", LAZY)
def test_each_lazy_name_is_what_the_eager_import_gave(package: str) -> None:
    module = importlib.import_module(package)
    expected = eager_imports(package)
    for name in checked_imports(package):
        value = getattr(module, name)
        assert value is expected[name], f"{package}.{name}"
        assert name in dir(module)


def test_an_unknown_name_is_an_attribute_error_naming_it() -> None:
    import dms.deployment

    with pytest.raises(AttributeError, match="'dms.deployment' has no attribute 'Nope'"):
        dms.deployment.Nope  # type: ignore[attr-defined]  # noqa: B018


def test_a_name_is_imported_once_then_kept_on_the_package() -> None:
    namespace = type(sys)("lazy_probe")
    sys.modules["lazy_probe"] = namespace
    try:
        getattr_, dir_ = lazy_exports("lazy_probe", {"json": ("dumps",)},
                                      aliases={"path": "os.path", "load": "json:loads"})
        assert {"dumps", "path", "load"} <= set(dir_())
        assert "dumps" not in namespace.__dict__  # not before it is asked for
        import json
        import os.path

        assert getattr_("dumps") is json.dumps
        assert namespace.__dict__["dumps"] is json.dumps
        assert getattr_("path") is os.path
        assert getattr_("load") is json.loads
    finally:
        del sys.modules["lazy_probe"]
        LAZY_PACKAGES.pop("lazy_probe", None)


def test_a_client_module_does_not_load_the_orchestrator_or_the_provider() -> None:
    probe = ("import sys, dms.deployment._requests, dms.provider._limits\n"
             "sys.stdout.write(' '.join(sys.modules))")
    loaded = set(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                                check=True, timeout=60).stdout.split())
    assert not loaded & {"dms.deployment._orchestrator", "dms.deployment._service",
                         "dms.provider._service", "dms.provider._open", "dms.orchestrator._bid_window",
                         "dms.orchestrator.placement._solver", "dms.store._database",
                         "dms.executor._process", "dms.node"}
