"""The shape of the code, pinned: no import cycles, layers import only downwards, each
public name means one thing, and the public surface changes only on purpose.

When the surface changes on purpose: ``DMS_UPDATE_SURFACE=1 pytest tests/dms/test_architecture.py``
rewrites `public_surface.txt`; the diff then shows in review what users gain or lose.
"""

from __future__ import annotations

import ast
import importlib
import os
import pkgutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SURFACE = Path(__file__).with_name("public_surface.txt")
PACKAGES = ("ucan", "dms")


def project_modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            modules[name.removesuffix(".__init__")] = path
    return modules


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every project module `name` imports, TYPE_CHECKING imports included."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(max(0, node.level - 1)):
                base = base.rpartition(".")[0]
            base = (f"{base}.{node.module}" if node.module else base) if node.level else (
                node.module or "")
            # `from pkg import submodule` imports the submodule; `from mod import name`, mod
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                       for alias in node.names]
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(graph[successor]))))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_imports_itself_back_through_others() -> None:
    assert cycles(import_graph()) == []


@pytest.mark.parametrize(("layer", "forbidden"), [
    ("ucan", ("dms",)),
    ("dms.actor", ("dms.net", "dms.node", "dms.orchestrator", "dms.provider", "dms.cli", "dms.testing")),
    ("dms.net", ("dms.actor", "dms.node", "dms.orchestrator", "dms.provider", "dms.cli", "dms.testing")),
    ("dms.ensemble", ("dms.actor", "dms.net", "dms.node", "dms.executor", "dms.supervise", "dms.provider")),
    ("dms.executor", ("dms.actor", "dms.net", "dms.node", "dms.orchestrator", "dms.provider")),
    ("dms.supervise", ("dms.actor", "dms.net", "dms.node", "dms.orchestrator", "dms.provider")),
    ("dms.orchestrator.placement", ("dms.actor", "dms.net", "dms.node", "dms.executor", "dms.provider")),
    ("dms.provider", ("dms.net", "dms.node", "dms.cli", "dms.testing")),
    ("dms.store", ("dms.actor", "dms.net", "dms.node", "dms.orchestrator", "dms.provider",
                   "dms.cli", "dms.testing")),
    ("dms.orchestrator", ("dms.net", "dms.node", "dms.cli", "dms.deployment")),
    ("dms.provider", ("dms.deployment",)),
    ("dms.deployment", ("dms.net", "dms.node", "dms.cli", "dms.testing")),
])
def test_layers_import_only_downwards(layer: str, forbidden: tuple[str, ...]) -> None:
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in import_graph().items()
        if module == layer or module.startswith(layer + ".")
        for target in targets
        if any(target == f or target.startswith(f + ".") for f in forbidden)
    )
    assert wrong == []


def public_modules() -> list[str]:
    """Packages and modules whose names have no private part."""
    names = []
    for package in PACKAGES:
        root = importlib.import_module(package)
        names.append(package)
        for info in pkgutil.walk_packages(root.__path__, f"{package}."):
            if not any(part.startswith("_") for part in info.name.split(".")):
                names.append(info.name)
    return sorted(names)


def public_names() -> dict[str, object]:
    surface = {}
    for module_name in public_modules():
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", ()):
            surface[f"{module_name}.{name}"] = getattr(module, name)
    return surface


def test_each_public_name_means_one_thing() -> None:
    meanings: dict[str, dict[int, list[str]]] = {}
    for qualified, value in public_names().items():
        name = qualified.rpartition(".")[2]
        if isinstance(value, (str, int, float, frozenset, tuple)):
            continue  # constants of the same name and value are the same thing
        meanings.setdefault(name, {}).setdefault(id(value), []).append(qualified)
    doubles = {name: sorted(sum(places.values(), []))
               for name, places in meanings.items() if len(places) > 1}
    assert doubles == {}


def test_every_name_in_all_exists() -> None:
    for module_name in public_modules():
        module = importlib.import_module(module_name)
        missing = [n for n in getattr(module, "__all__", ()) if not hasattr(module, n)]
        assert missing == [], module_name


def test_the_public_surface_changes_only_on_purpose() -> None:
    surface = "\n".join(sorted(public_names())) + "\n"
    if os.environ.get("DMS_UPDATE_SURFACE"):
        SURFACE.write_text(surface)
    assert surface == SURFACE.read_text(), (
        "the public surface changed; if on purpose, rerun with DMS_UPDATE_SURFACE=1")
