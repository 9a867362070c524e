"""The import graph keeps its shape: the core (``jifang``) imports no part, a part imports only the core and the
parts below it, and only the front door (``jifang.cli``) and the demo wire everything together. Every folder
with Python code is installed under the ``jifang`` name."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
PACKAGE_DIRS: dict[str, str] = PYPROJECT["tool"]["setuptools"]["package-dir"]

# what each part may import besides the core; anything not listed is forbidden
ALLOWED: dict[str, set[str]] = {
    "jifang": set(),
    "jifang.sim": set(),
    "jifang.recorder": set(),
    "jifang.retention": set(),
    "jifang.recognition": set(),
    "jifang.gb28181": {"jifang.recorder"},
    "jifang.edge": {"jifang.recorder", "jifang.recognition", "jifang.retention"},
    "jifang.dashboard": {"jifang.retention", "jifang.edge", "jifang.recognition"},
    "jifang.demo": {"jifang.edge", "jifang.sim", "jifang.dashboard", "jifang.recognition", "jifang.retention"},
    "jifang.cli": set(PACKAGE_DIRS) - {"jifang", "jifang.cli"},
}


def part_of(module: str) -> str:
    """The part a module belongs to: the longest mapped package that prefixes it (the core is ``jifang``)."""
    best = "jifang"
    for name in PACKAGE_DIRS:
        if (module == name or module.startswith(name + ".")) and len(name) > len(best):
            best = name
    return best


def modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for name, folder in PACKAGE_DIRS.items():
        for path in (REPO / folder).rglob("*.py"):
            if "__pycache__" in path.parts or "migrations" in path.parts:
                continue
            rel = path.relative_to(REPO / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            found[".".join([name, *parts])] = path
    return found


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return {n for n in names if n == "jifang" or n.startswith("jifang.")}


def test_every_python_folder_is_an_installed_package() -> None:
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    expected = set()
    for name, folder in PACKAGE_DIRS.items():
        for init in (REPO / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / folder)
            expected.add(".".join([name, *rel.parts]))
    assert listed == expected


def test_parts_import_only_the_core_and_the_parts_below_them() -> None:
    violations = []
    for module, path in modules().items():
        here = part_of(module)
        for target in imports_of(path):
            there = part_of(target)
            if there not in ("jifang", here) and there not in ALLOWED[here]:
                violations.append(f"{module} imports {target} ({here} may not import {there})")
    assert not violations, "\n".join(sorted(violations))


def test_the_part_graph_has_no_circle() -> None:
    edges: dict[str, set[str]] = {part: set() for part in PACKAGE_DIRS}
    for module, path in modules().items():
        for target in imports_of(path):
            if part_of(target) != part_of(module):
                edges[part_of(module)].add(part_of(target))
    visiting: set[str] = set()
    done: set[str] = set()

    def visit(node: str, trail: list[str]) -> None:
        assert node not in visiting, "import circle: " + " -> ".join([*trail, node])
        if node in done:
            return
        visiting.add(node)
        for nxt in sorted(edges[node]):
            visit(nxt, [*trail, node])
        visiting.discard(node)
        done.add(node)

    for part in sorted(edges):
        visit(part, [])
