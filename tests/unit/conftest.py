"""Fixtures for the unit tests: isolation from the user's HOME, git config and MLV_* env."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

# When a hypothesis test fails, hypothesis' pytest plugin imports hypothesis.extra._patching
# (and through it libcst), which on this machine emits a DeprecationWarning from
# mypy_extensions; with filterwarnings=error that turns every hypothesis failure into a
# pytest INTERNALERROR that hides the falsifying example. Import it once here, quietly.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import hypothesis.extra._patching  # noqa: F401
    except ImportError:  # libcst absent: hypothesis then skips the patch itself
        pass


@pytest.fixture(autouse=True)
def _unit_isolated_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """No test reads or writes the real HOME, global git config or an MLV_* variable."""
    home = tmp_path_factory.mktemp("home")
    for name in list(os.environ):
        if name.startswith(("MLV_", "GIT_")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "mlv tests")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "tests@mlv.invalid")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "mlv tests")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "tests@mlv.invalid")
    return home


@pytest.fixture
def home(_unit_isolated_env: Path) -> Path:
    """The temporary HOME of this test."""
    return _unit_isolated_env
