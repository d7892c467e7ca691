"""The dependencies pyproject.toml declares are the ones mlv imports, and the reverse: no
declared package that no module uses (gitpython was, for a while), no import of a package
that neither an install of mlv nor one of its remotes' extras brings."""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[2]


def _name(requirement: str) -> str:
    """ "pyyaml>=6.0" -> "pyyaml": a distribution's name, normalised (PEP 503)."""
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def _imported_top_levels() -> dict[str, str]:
    """Every top-level module that a file in mlv/ imports, at module or function level,
    with one file that imports it."""
    found: dict[str, str] = {}
    for path in sorted((ROOT / "mlv").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.partition(".")[0], str(path.relative_to(ROOT)))
    return found


def _third_party() -> dict[str, set[str]]:
    """Distribution name -> the files that import it, for every import of mlv's that is
    neither the standard library nor mlv itself."""
    owners = packages_distributions()
    used: dict[str, set[str]] = {}
    for module, where in _imported_top_levels().items():
        if module in sys.stdlib_module_names or module in ("mlv", "__future__"):
            continue
        for dist in owners.get(module, [f"(not installed: {module})"]):
            used.setdefault(_name(dist), set()).add(where)
    return used


def test_every_declared_dependency_is_imported_and_every_import_is_declared() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {_name(r) for r in project["dependencies"]}
    # A remote's extra (mlv[http] brings aiohttp) may be imported where that remote is opened.
    extras = {
        _name(r)
        for extra, requirements in project["optional-dependencies"].items()
        if extra != "test"
        for r in requirements
    }
    used = _third_party()
    assert sorted(declared - set(used)) == [], "declared in pyproject.toml, imported nowhere"
    undeclared = {d: sorted(w) for d, w in used.items() if d not in declared | extras}
    assert undeclared == {}, "imported by mlv, declared neither in dependencies nor an extra"
