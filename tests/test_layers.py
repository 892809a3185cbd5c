"""The layer rule of DESIGN.md §1, checked by reading every import of the library with ``ast``.

``kernels/`` and ``tracker/core/`` import nothing of the project; ``models/`` imports only
``tracker.core``, ``kernels`` and itself; ``devices/`` only those and ``models`` (the data engine); the rest
of ``tracker/`` may import all of them. Nothing under the four packages imports ``scripts``, ``bench``,
``tests`` or ``run_tracker``, or touches ``sys.path``. Every import counts: top-level, inside functions,
under ``if TYPE_CHECKING``, absolute and relative. The number protected: zero violations.
"""

from __future__ import annotations

import ast
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ("tracker", "devices", "models", "kernels")
# Top-level names of this repository; an import whose first component is not one of them is a third-party
# or standard-library import and is not the rule's business.
PROJECT = {*LIBRARY, "scripts", "bench", "tests", "run_tracker"}
# What each layer may import (the layers are listed leaf first; the rest of tracker/ is the top).
ALLOWED: dict[str, frozenset[str]] = {
    "kernels": frozenset({"kernels"}),
    "tracker.core": frozenset({"tracker.core"}),
    "models": frozenset({"tracker.core", "kernels", "models"}),
    "devices": frozenset({"tracker.core", "kernels", "models", "devices"}),
    "tracker": frozenset({"tracker.core", "kernels", "models", "devices", "tracker"}),
}


@dataclass(frozen=True)
class Import:
    """One import statement's target, resolved to an absolute dotted module name."""

    path: Path
    line: int
    module: str  # the importing module, dotted
    target: str  # the imported module, dotted (``from a.b import c`` gives ``a.b.c`` when that is a module)


def module_name(path: Path, root: Path) -> str:
    """Dotted module name of ``path`` (a .py file under ``root``); a package's ``__init__`` is the package."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(dotted: str, root: Path) -> bool:
    base = root.joinpath(*dotted.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def imports_of(path: Path, root: Path) -> Iterator[Import]:
    """Every import in ``path`` (at any depth of the syntax tree), with relative imports made absolute."""
    module = module_name(path, root)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(path, node.lineno, module, alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            for alias in node.names:
                # ``from tracker import core`` imports the sub-package tracker.core, not just tracker.
                sub = f"{source}.{alias.name}"
                yield Import(path, node.lineno, module, sub if _is_module(sub, root) else source)


def layer_of(module: str) -> str | None:
    """The layer a dotted module belongs to (a key of ``ALLOWED``), or None when it is not in the library."""
    if module == "tracker.core" or module.startswith("tracker.core."):
        return "tracker.core"
    top = module.split(".")[0]
    return top if top in LIBRARY else None


def _allowed(layer: str, target: str) -> bool:
    return any(target == a or target.startswith(a + ".") for a in ALLOWED[layer])


def sys_path_uses(path: Path) -> Iterator[int]:
    """Lines of ``path`` that read or edit ``sys.path`` (``sys.path...`` or ``from sys import path``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        attribute = (isinstance(node, ast.Attribute) and node.attr == "path" and isinstance(node.value, ast.Name)
                     and node.value.id == "sys")  # fmt: skip
        imported = isinstance(node, ast.ImportFrom) and node.module == "sys" and any(a.name == "path" for a in node.names)
        if attribute or imported:
            yield node.lineno


def library_files(root: Path) -> list[Path]:
    return sorted(p for pkg in LIBRARY if (root / pkg).is_dir() for p in (root / pkg).rglob("*.py"))


def layer_violations(root: Path) -> list[str]:
    """``file:line: what is wrong`` for every import that breaks the layer rule and every ``sys.path`` use."""
    found = []
    for path in library_files(root):
        rel = path.relative_to(root)
        for imp in imports_of(path, root):
            if imp.target.split(".")[0] not in PROJECT:
                continue
            layer = layer_of(imp.module)
            if layer is None or not _allowed(layer, imp.target):
                found.append(f"{rel}:{imp.line}: {imp.module} ({layer} layer) imports {imp.target}")
        found += [f"{rel}:{line}: uses sys.path" for line in sys_path_uses(path)]
    return found


def layer_graph(root: Path) -> dict[str, set[str]]:
    """Which layer imports which (self-imports left out)."""
    graph: dict[str, set[str]] = {layer: set() for layer in ALLOWED}
    for path in library_files(root):
        for imp in imports_of(path, root):
            src, dst = layer_of(imp.module), layer_of(imp.target)
            if src and dst and src != dst:
                graph[src].add(dst)
    return graph


def tracker_graph(root: Path) -> dict[str, set[str]]:
    """Which sub-package (or top-level module) of ``tracker/`` imports which, e.g. ``tracker.fusion``."""
    graph: dict[str, set[str]] = {}
    for path in library_files(root):
        for imp in imports_of(path, root):
            if imp.module.split(".")[0] != "tracker" or imp.target.split(".")[0] != "tracker":
                continue
            src, dst = (".".join(name.split(".")[:2]) for name in (imp.module, imp.target))
            if src != dst:
                graph.setdefault(src, set()).add(dst)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a closed path ``[a, b, ..., a]``, or None when it has none."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


# ------------------------------------------------------------------------------------- the tree


def test_the_library_keeps_its_layers() -> None:
    """Zero imports across the layer rule and zero uses of sys.path in tracker/, devices/, models/, kernels/."""
    assert len(library_files(ROOT)) > 50  # the walk found the library (66 files before the redesign)
    violations = layer_violations(ROOT)
    assert not violations, "layer rule broken:\n" + "\n".join(violations)


def test_the_layers_form_no_cycle() -> None:
    """The layer graph (kernels, tracker.core, models, devices, rest of tracker) has no cycle."""
    graph = layer_graph(ROOT)
    assert find_cycle(graph) is None, f"import cycle between layers: {' -> '.join(find_cycle(graph) or [])}"
    assert "tracker.core" in graph["models"] and "models" in graph["devices"]  # the graph is not empty


def test_the_tracker_sub_packages_form_no_cycle() -> None:
    """runtime, stages, fusion, post, io, sinks, view, ... import each other without a cycle."""
    graph = tracker_graph(ROOT)
    assert find_cycle(graph) is None, f"import cycle in tracker/: {' -> '.join(find_cycle(graph) or [])}"
    assert "tracker.core" in graph["tracker.stages"]


# ------------------------------------------------------------------------------------- the checker itself


def _write(root: Path, rel: str, source: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))


def _library(tmp_path: Path) -> Path:
    for pkg in ("tracker", "tracker/core", "tracker/stages", "devices", "models", "kernels"):
        _write(tmp_path, f"{pkg}/__init__.py", "")
    return tmp_path


def test_checker_finds_each_kind_of_violation(tmp_path: Path) -> None:
    """Seven planted violations are reported, each with its file and line; four legal imports are not."""
    root = _library(tmp_path)
    _write(root, "kernels/k.py", "import numpy as np\nfrom kernels import voxel\nfrom tracker.core import joints\n")
    _write(root, "tracker/core/c.py", """\
        from typing import TYPE_CHECKING
        from .joints import EDGES
        if TYPE_CHECKING:
            from ..stages import lift
        """)
    _write(root, "tracker/core/joints.py", "EDGES = ()\n")
    _write(root, "tracker/stages/lift.py", "")
    _write(root, "models/m.py", """\
        from tracker.core.joints import EDGES


        def load():
            from tracker.fusion.rig import build
            import devices.rig
        """)
    _write(root, "devices/d.py", "from models import m\nfrom scripts.fit import fit\n")
    _write(root, "tracker/t.py", "import sys\nsys.path.insert(0, 'x')\nimport bench.rig\nfrom devices import d\n")
    found = layer_violations(root)
    assert sorted(found) == sorted([
        "kernels/k.py:3: kernels.k (kernels layer) imports tracker.core.joints",
        "tracker/core/c.py:4: tracker.core.c (tracker.core layer) imports tracker.stages.lift",
        "models/m.py:5: models.m (models layer) imports tracker.fusion.rig",
        "models/m.py:6: models.m (models layer) imports devices.rig",
        "devices/d.py:2: devices.d (devices layer) imports scripts.fit",
        "tracker/t.py:2: uses sys.path",
        "tracker/t.py:3: tracker.t (tracker layer) imports bench.rig",
    ]), found  # fmt: skip


def test_checker_resolves_relative_imports(tmp_path: Path) -> None:
    """``from ..x import y`` in a package ``__init__`` and in a module resolve to the right absolute names."""
    root = _library(tmp_path)
    _write(root, "tracker/stages/lift.py", "")
    _write(root, "tracker/core/__init__.py", "from . import joints\nfrom ..stages.lift import Lifter\n")
    _write(root, "tracker/core/joints.py", "from .. import stages\n")
    targets = {(p.name, i.target) for p in library_files(root) for i in imports_of(p, root)}
    assert targets == {("__init__.py", "tracker.core.joints"), ("__init__.py", "tracker.stages.lift"),
                       ("joints.py", "tracker.stages")}  # fmt: skip
    assert len(layer_violations(root)) == 2


def test_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None
