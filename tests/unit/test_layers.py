"""The import contracts in pyproject.toml ([tool.importlinter]): the layers point down only,
core reaches storage only through objects, xxhash, click, rich and fsspec are imported only
where docs/decisions.md ("Layers, and where shared utilities live") says, and gitpython (not
a dependency) nowhere.

import-linter runs in a child process: it configures logging and sys.path for itself, which
must not leak into the tests that run mlv in this process.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT = (
    "import sys\n"
    "from importlinter.cli import lint_imports\n"
    "sys.exit(lint_imports(config_filename='pyproject.toml', no_cache=True, no_logo=True))\n"
)


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports over the mlv package found at root (it puts its working folder first on
    sys.path, so a copy there is the one analysed)."""
    return subprocess.run(
        [sys.executable, "-c", LINT], cwd=root, capture_output=True, text=True, timeout=300
    )


def test_imports_keep_the_contracts() -> None:
    proc = _lint(ROOT)
    assert proc.returncode == 0, (
        "imports break pyproject.toml's [tool.importlinter] contracts:\n"
        + proc.stdout
        + proc.stderr
    )
    assert "0 broken" in proc.stdout


def test_a_broken_import_fails_and_is_named(tmp_path: Path) -> None:
    """The contracts catch what they claim: an upward import, core reaching storage, and
    xxhash outside hashing each fail the run with the importing module named."""
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    shutil.copytree(ROOT / "mlv", tmp_path / "mlv", ignore=shutil.ignore_patterns("__pycache__"))
    planted = {
        "objects/names.py": "from mlv.core import repo",
        "core/lock.py": "from mlv.storage import backend",
        "core/diff.py": "import xxhash",
        "git.py": "import git",  # gitpython: not a dependency, not even in mlv.git
    }
    for rel, line in planted.items():
        path = tmp_path / "mlv" / rel
        path.write_text(path.read_text() + f"\n{line}  # noqa\n")
    proc = _lint(tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    out = proc.stdout
    assert "Layers: imports point down only BROKEN" in out, out
    assert "mlv.objects.names -> mlv.core.repo" in out, out
    assert "mlv.core.lock -> mlv.storage.backend" in out, out
    assert "mlv.core.diff -> xxhash" in out, out
    assert "mlv.git -> git" in out, out
