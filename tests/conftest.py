"""Shared fixtures: every test runs isolated from the user's machine, in temporary folders."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import mlv
from hypothesis import settings
from prebuilt import make_git_repo
from servers import (
    AzuriteServer,
    FaultProxy,
    GCSServer,
    S3Server,
    SFTPServer,
    azurite_command,
    gcs_emulator_installed,
    run_azurite,
    run_gcs_emulator,
    run_moto,
    run_sshd,
    s3_env_vars,
    sshd_installed,
    write_ssh_config,
)

# Property tests explore the same examples on every run: CI failures are reproducible, and a
# green run is not luck. (Run with HYPOTHESIS_PROFILE=explore to search afresh.)
settings.register_profile("ci", derandomize=True, database=None)
settings.register_profile("explore")
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

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


# Tests marked `slow` run in CI (CI set, as CI services set it: CI=true) and when asked for
# (--run-slow, -m slow, or their node ids named); a plain `pytest` deselects them and says so.


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-slow",
        action="store_true",
        help="also run the tests marked slow (the default when the CI variable is set)",
    )


def _slow_tests_run(config: pytest.Config) -> bool:
    ci = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
    return ci or bool(config.getoption("--run-slow")) or "slow" in config.getoption("markexpr")


def pytest_report_header(config: pytest.Config) -> str:
    if _slow_tests_run(config):
        return "slow tests: run"
    return "slow tests: not run (they run with --run-slow, -m slow or CI=true)"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _slow_tests_run(config):
        return
    named = tuple(arg for arg in config.args if "::" in arg)  # node ids asked for by name
    keep, slow = [], []
    for item in items:
        is_named = bool(named) and item.nodeid.startswith(named)
        (slow if item.get_closest_marker("slow") and not is_named else keep).append(item)
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = keep
        config.stash[_SLOW_DESELECTED] = len(slow)


_SLOW_DESELECTED = pytest.StashKey[int]()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    count = terminalreporter.config.stash.get(_SLOW_DESELECTED, 0)
    if count:
        terminalreporter.write_line(
            f"{count} slow tests deselected: run them with --run-slow (CI=true runs them)"
        )


def isolate(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """HOME and XDG_CONFIG_HOME in home, no system git config, a fixed git identity,
    no colours, CI mode, and no MLV_* or GIT_* variables from the caller."""
    (home / ".config").mkdir(parents=True, exist_ok=True)
    for name in list(os.environ):
        if name.startswith(("MLV_", "GIT_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "mlv tests")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "tests@mlv.invalid")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "mlv tests")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "tests@mlv.invalid")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("CI", "true")


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test (unit tests too) runs isolate()d, with HOME at tmp_path/home: that HOME."""
    home = tmp_path / "home"
    isolate(monkeypatch, home)
    return home


@pytest.fixture
def home(isolated_env: Path) -> Path:
    """The temporary HOME of this test."""
    return isolated_env


@pytest.fixture(scope="module")
def module_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """For module-scoped fixtures that build something once (see tests/prebuilt.py): the
    environment of isolated_env, with a HOME of the module's own, while the module runs;
    yields a fresh folder to build in. (A module-scoped fixture is set up before the test's
    isolated_env, and cannot use the function-scoped monkeypatch.)"""
    folder = tmp_path_factory.mktemp("module")
    with pytest.MonkeyPatch.context() as monkeypatch:
        isolate(monkeypatch, folder / "home")
        build = folder / "build"
        build.mkdir()
        yield build


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    """A fresh git repository with one empty commit."""
    return make_git_repo(tmp_path / "repo")


@pytest.fixture
def mlv_repo(git_repo: Path) -> Path:
    """git_repo after `mlv init` (.mlv/ staged, not committed)."""
    mlv("init", cwd=git_repo)
    return git_repo


# Servers for the remote-storage tests (tests/servers.py): loopback only, free ports.


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 server, one for the session (buckets keep tests apart): `.endpoint_url`."""
    with run_moto() as server:
        yield server


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> str:
    """The name of a new, empty bucket on s3_server."""
    return s3_server.create_bucket()


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Fake AWS credentials and AWS_ENDPOINT_URL=s3_server in the environment, as a user
    reaching S3 or MinIO sets them (no other AWS_* variable from the caller). Point the
    endpoint at the fault proxy with monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint_url)."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    env = s3_env_vars(s3_server.endpoint_url)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def fault_proxy(s3_server: S3Server) -> Iterator[FaultProxy]:
    """A fresh request-logging, fault-injecting proxy in front of s3_server."""
    with FaultProxy(s3_server.endpoint_url) as proxy:
        yield proxy


@pytest.fixture
def via_proxy(
    s3_env: dict[str, str], fault_proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FaultProxy]:
    """s3_env with AWS_ENDPOINT_URL pointing at the fault proxy; fails the test if the proxy
    saw an error."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", fault_proxy.endpoint_url)
    yield fault_proxy
    assert not fault_proxy.errors, fault_proxy.errors[0]


@pytest.fixture(scope="session")
def sftp_server_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the session's sshd keeps its config, keys and log (kept for post-mortems)."""
    return tmp_path_factory.mktemp("sshd")


@pytest.fixture(scope="session")
def sftp_server(sftp_server_dir: Path) -> Iterator[SFTPServer]:
    """OpenSSH's sshd (sftp) as the current user, on loopback; skips if not installed."""
    if not sshd_installed():
        pytest.skip("sshd not installed: apt-get install openssh-server (.ci/run does this)")
    with run_sshd(sftp_server_dir) as server:
        yield server


@pytest.fixture
def ssh_home_config(isolated_env: Path, sftp_server: SFTPServer) -> Path:
    """~/.ssh/config in the test's HOME with `Host mlvtest` -> sftp_server (key, port, user,
    known_hosts), so ssh://mlvtest/PATH works as with a real host; the config's path."""
    return write_ssh_config(Path(os.environ["HOME"]), sftp_server)


@pytest.fixture(scope="session")
def gcs_server() -> Iterator[GCSServer]:
    """gcp-storage-emulator (in memory) for the session; skips if it or gcsfs is missing."""
    if not gcs_emulator_installed():
        pytest.skip(
            "gcp-storage-emulator or gcsfs not installed: pip install -e '.[test]' "
            "-c constraints.txt"
        )
    with run_gcs_emulator() as server:
        yield server


@pytest.fixture
def gcs_bucket(gcs_server: GCSServer) -> str:
    """The name of a new, empty bucket on gcs_server."""
    return gcs_server.create_bucket()


@pytest.fixture(scope="session")
def azurite_server() -> Iterator[AzuriteServer]:
    """Azurite's blob service (in memory) for the session; skips if Azurite, node or adlfs
    is missing."""
    command = azurite_command()
    if command is None:
        pytest.skip(
            "Azurite (npm package azurite, with node) or adlfs not installed: .ci/run "
            "installs Azurite into .ci/azurite"
        )
    with run_azurite(command) as server:
        yield server


@pytest.fixture
def azure_container(azurite_server: AzuriteServer) -> str:
    """The name of a new, empty container on azurite_server."""
    return azurite_server.create_container()
