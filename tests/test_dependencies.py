"""Dependencies equal imports: every package jifang declares is imported by jifang's own code (or is named below
with the reason it is needed without an import), the ``faces`` extra holds what insightface imports, and the
distribution installs one top-level name, ``jifang``."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
PROJECT = PYPROJECT["project"]

# declared, needed, and never imported by name: each with why
NOT_IMPORTED = {
    "psycopg2-binary": "SQLAlchemy's PostgreSQL driver, loaded from the catalog URL",
    "python-multipart": "FastAPI's form parsing (the dashboard's login and advance forms)",
    "jinja2": "the dashboard's templates, through fastapi.templating.Jinja2Templates",
    "onvif-zeep": "ships the ONVIF WSDL files that edge/onvif/client.py reads from site-packages/wsdl",
}


def name_of(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def our_imports() -> set[str]:
    """Top-level module names imported anywhere in jifang's code, in functions too."""
    names: set[str] = set()
    for folder in set(PYPROJECT["tool"]["setuptools"]["package-dir"].values()):
        for path in (REPO / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names.add(node.module.split(".")[0])
    return names


def modules_of(distribution: str) -> set[str]:
    """The top-level import names an installed distribution provides."""
    return {module for module, dists in metadata.packages_distributions().items()
            if distribution in {d.lower().replace("_", "-") for d in dists}}


def closure(names: set[str]) -> set[str]:
    """``names`` and every distribution they require, transitively (extras not followed)."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        todo.extend(name_of(r) for r in requires if "extra ==" not in r)
    return seen


def test_every_dependency_is_imported_by_jifang() -> None:
    imported = our_imports()
    unused = []
    for requirement in PROJECT["dependencies"]:
        name = name_of(requirement)
        if name in NOT_IMPORTED:
            continue
        if not modules_of(name) & imported:
            unused.append(name)
    assert not unused, f"declared but imported nowhere (use them or remove them): {unused}"


def test_the_faces_extra_holds_what_insightface_imports() -> None:
    # what building the face engine really loads, in a fresh interpreter
    code = ("import json, sys; from insightface.app import FaceAnalysis; "
            "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))")
    loaded = set(json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                           timeout=300).stdout))
    loaded.discard("_distutils_hack")  # setuptools' .pth loads it into every interpreter, insightface does not
    providers = metadata.packages_distributions()
    needed = {d.lower().replace("_", "-") for module in loaded if module not in sys.stdlib_module_names
              for d in providers.get(module, [])} - {"insightface"}
    declared = {name_of(r) for r in PROJECT["dependencies"] + PROJECT["optional-dependencies"]["faces"]}
    missing = needed - closure(declared)
    assert not missing, f"insightface imports packages that neither jifang nor the faces extra bring: {missing}"
    # and the extra is not padding: each of its packages is one insightface loads
    assert {name_of(r) for r in PROJECT["optional-dependencies"]["faces"]} <= needed


def test_the_distribution_installs_only_the_jifang_name() -> None:
    setuptools = PYPROJECT["tool"]["setuptools"]
    assert "py-modules" not in setuptools
    assert {package.split(".")[0] for package in setuptools["packages"]} == {"jifang"}
    assert {name.split(".")[0] for name in setuptools["package-dir"]} == {"jifang"}
    assert {name.split(".")[0] for name in PYPROJECT["tool"]["setuptools"].get("package-data", {})} <= {"jifang"}
