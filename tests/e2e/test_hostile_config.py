"""Hostile YAML and config from a clone: alias bombs, absurd nesting, secrets, and options
that would make a storage library run a command or read a local file.

Every command here reads files that `git clone` brought: they must fail with one line that
names the file, quickly and in little memory, and never act on what they refuse.
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from helpers import MLV, assert_error, commit_all, git, mlv, write_files, xxh

LIMIT = 512 << 20  # address space for a command reading a bomb: a billion laughs needs GBs


def _limited(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`mlv ARGS` with at most 512 MiB of address space; fails the test past 60 s."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (LIMIT, LIMIT))

    start = time.monotonic()
    proc = subprocess.run(
        [MLV, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=cap,
        check=False,
    )
    elapsed = time.monotonic() - start
    assert elapsed < 20, f"mlv {' '.join(args)} took {elapsed:.0f} s"
    return proc


def _refused(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    """One line on stderr naming what was refused: an error (exit 1), or a warning when the
    command reports unreadable params and metrics files and goes on (exit 0)."""
    if proc.returncode != 0:
        return assert_error(proc, 1, *needles)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "lol" not in proc.stdout
    if proc.stdout.startswith("{"):  # --json: the reason is in "errors"
        lines = [json.dumps(json.loads(proc.stdout)["errors"])]
    else:  # a line for each revision that holds the file
        lines = proc.stderr.splitlines()
        assert lines and all(line.startswith("warning: ") for line in lines), proc.stderr
    for needle in needles:
        assert all(needle in line for line in lines), f"{needle!r} not in {lines!r}"
    return lines[0]


def _bomb(indent: str = "", levels: int = 9, width: int = 10) -> str:
    """Mapping lines whose last key names 10**9 copies of 'lol' through aliases."""
    lines = [f"{indent}l0: &a0 [{', '.join(['lol'] * width)}]"]
    for i in range(1, levels):
        lines.append(f"{indent}l{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]")
    lines.append(f"{indent}bomb: *a{levels - 1}")
    return "\n".join(lines) + "\n"


CONFIG_BOMB = "core:\n  remote: store\nremote:\n  store:\n    url: ../store\n" + _bomb("    ")


@pytest.mark.parametrize(
    "args",
    [
        ("remote", "list", "--json"),
        ("remote", "list"),
        ("config", "remote.store.url"),
        ("config", "remote.store.bomb"),
        ("status",),
        ("pull",),
        ("push",),
    ],
    ids=" ".join,
)
def test_alias_bomb_in_the_committed_config_is_one_line(mlv_repo: Path, args: tuple[str]) -> None:
    write_files(mlv_repo, {"data.txt": "tracked"})
    mlv("add", "data.txt", cwd=mlv_repo)
    (mlv_repo / ".mlv" / "config.yaml").write_text(CONFIG_BOMB)
    line = assert_error(_limited(*args, cwd=mlv_repo), 1, ".mlv/config.yaml", "aliases")
    assert "100,000" in line


def test_alias_bomb_in_the_local_and_global_config(mlv_repo: Path, isolated_env: Path) -> None:
    (mlv_repo / ".mlv" / "config.local.yaml").write_text(CONFIG_BOMB)
    assert_error(_limited("remote", "list", "--json", cwd=mlv_repo), 1, "config.local.yaml")
    (mlv_repo / ".mlv" / "config.local.yaml").unlink()
    (isolated_env / ".config" / "mlv").mkdir(parents=True)
    (isolated_env / ".config" / "mlv" / "config.yaml").write_text(CONFIG_BOMB)
    assert_error(_limited("remote", "list", "--json", cwd=mlv_repo), 1, "mlv/config.yaml")


PIPELINE = {"stages": {"train": {"cmd": "echo trained", "params": ["lr", "bomb"]}}}


def _pipeline_repo(repo: Path, params: str, name: str = "params.yaml") -> None:
    pipeline = PIPELINE
    if name != "params.yaml":
        pipeline = {"stages": {"train": {"cmd": "echo trained", "params": [{name: ["lr"]}]}}}
    first = '{"lr": 0.1}' if name.endswith(".json") else "lr: 0.1\n"
    write_files(repo, {"mlv.yaml": yaml.safe_dump(pipeline), name: first})
    commit_all(repo, "pipeline")
    (repo / name).write_text(params)


@pytest.mark.parametrize(
    "args",
    [("repro", "--dry"), ("params", "diff"), ("params", "diff", "--json"), ("exp", "show")],
    ids=" ".join,
)
def test_alias_bomb_in_params_yaml_is_one_line(mlv_repo: Path, args: tuple[str]) -> None:
    _pipeline_repo(mlv_repo, "lr: 0.2\n" + _bomb())
    line = _refused(_limited(*args, cwd=mlv_repo), "params.yaml", "aliases")
    assert "100,000" in line


def test_alias_bomb_in_a_committed_params_yaml(mlv_repo: Path) -> None:
    """Read from git's objects, not the workspace: params diff HEAD~1 HEAD."""
    _pipeline_repo(mlv_repo, "lr: 0.2\n" + _bomb())
    commit_all(mlv_repo, "bomb")
    for args in (("params", "diff", "HEAD~1", "HEAD"), ("exp", "show")):
        _refused(_limited(*args, cwd=mlv_repo), "params.yaml", "aliases")


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("mlv.yaml", "stages:\n  train:\n    cmd: echo hi\n" + _bomb("    ")),
        ("mlv.lock", "version: 1\n" + _bomb()),
        ("metrics.yaml", "acc: 0.9\n" + _bomb()),
    ],
    ids=["mlv.yaml", "mlv.lock", "metrics.yaml"],
)
def test_alias_bomb_in_pipeline_files(mlv_repo: Path, name: str, text: str) -> None:
    pipeline = {"stages": {"train": {"cmd": "echo hi", "metrics": ["metrics.yaml"]}}}
    write_files(mlv_repo, {"mlv.yaml": yaml.safe_dump(pipeline), "metrics.yaml": "acc: 1\n"})
    commit_all(mlv_repo, "pipeline")
    (mlv_repo / name).write_text(text)
    args = ("metrics", "show") if name == "metrics.yaml" else ("repro", "--dry")
    _refused(_limited(*args, cwd=mlv_repo), name, "aliases")


def test_alias_bomb_in_a_pointer(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"data.mlv": "version: 1\npath: data\n" + _bomb()})
    assert_error(_limited("status", cwd=mlv_repo), 1, "data.mlv", "aliases")


def test_an_alias_to_its_own_collection_is_refused(mlv_repo: Path) -> None:
    _pipeline_repo(mlv_repo, "lr: 0.2\nbomb: &loop [1, *loop]\n")
    _refused(_limited("params", "diff", cwd=mlv_repo), "params.yaml", "alias")


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("params.yaml", "lr: 0.1\nbomb: " + "[" * 100_000 + "]" * 100_000 + "\n"),
        ("params.yaml", "lr: 0.1\nbomb:\n  " + "- " * 50_000 + "x\n"),
        ("params.json", '{"lr": 0.1, "bomb": ' + "[" * 100_000 + "]" * 100_000 + "}"),
        ("params.json", '{"lr": 0.1, "bomb": ' + "[" * 500 + "]" * 500 + "}"),
    ],
    ids=["yaml flow", "yaml block", "json deep", "json 500"],
)
def test_absurd_nesting_is_one_line(mlv_repo: Path, name: str, text: str) -> None:
    """libyaml's composer recursed until the process died (SIGSEGV) on 50,000 levels."""
    _pipeline_repo(mlv_repo, text, name)
    line = _refused(_limited("params", "diff", cwd=mlv_repo), name, "nested")
    assert "100 levels" in line


def test_anchors_and_merges_in_params_still_work(mlv_repo: Path) -> None:
    """Hand-written params use `<<: *defaults`: well within the bound."""
    pipeline = {"stages": {"train": {"cmd": "echo hi", "params": ["small", "large"]}}}
    base = "defaults: &d {lr: 0.1, layers: [64, 64], dropout: 0.1}\n"
    write_files(
        mlv_repo,
        {
            "mlv.yaml": yaml.safe_dump(pipeline),
            "params.yaml": base + "small:\n  <<: *d\nlarge:\n  <<: *d\n  lr: 0.01\n",
        },
    )
    commit_all(mlv_repo, "params")
    (mlv_repo / "params.yaml").write_text(base + "small:\n  <<: *d\nlarge:\n  <<: *d\n  lr: 0.02\n")
    out = _limited("params", "diff", "--json", cwd=mlv_repo)
    assert out.returncode == 0, out.stderr
    assert "large.lr" in out.stdout and "small.lr" not in out.stdout


# ---- secrets: never written to the committed config, never printed ----------------------


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("endpoint_url", "http://minio:pw-s3cr3t@127.0.0.1:9000"),
        ("proxy", "https://me:pw-s3cr3t@proxy.example:3128"),
        ("auth", "pw-s3cr3t"),
        ("Authorization", "Bearer pw-s3cr3t"),
        ("bearer", "pw-s3cr3t"),
        ("pass", "pw-s3cr3t"),
        ("PWD", "pw-s3cr3t"),
        ("cookie", "session=pw-s3cr3t"),
        ("headers", "pw-s3cr3t"),
        ("api_auth_header", "pw-s3cr3t"),
    ],
)
def test_secrets_by_name_or_in_a_url_stay_out_of_the_committed_config(
    mlv_repo: Path, option: str, value: str
) -> None:
    mlv("remote", "add", "-d", "s3", "s3://bucket/p", cwd=mlv_repo)
    line = assert_error(
        mlv("remote", "modify", "s3", option, value, cwd=mlv_repo, check=False),
        2,
        f"mlv remote modify --local s3 {option}",
    )
    assert "s3cr3t" not in line
    line = assert_error(
        mlv("config", f"remote.s3.{option}", value, cwd=mlv_repo, check=False),
        2,
        f"mlv config --local remote.s3.{option}",
    )
    assert "s3cr3t" not in line
    assert "s3cr3t" not in (mlv_repo / ".mlv" / "config.yaml").read_text()
    mlv("remote", "modify", "--local", "s3", option, value, cwd=mlv_repo)
    assert "s3cr3t" in (mlv_repo / ".mlv" / "config.local.yaml").read_text()
    for args in (
        ("remote", "list", "--json"),
        ("remote", "list"),
        ("config", f"remote.s3.{option}"),
        ("config", "--local", f"remote.s3.{option}"),
    ):
        proc = mlv(*args, cwd=mlv_repo)
        assert "s3cr3t" not in proc.stdout + proc.stderr, args
    options = json.loads(mlv("remote", "list", "--json", cwd=mlv_repo).stdout)[0]["options"]
    assert options[option] in ("***", value.replace("pw-s3cr3t", "***"))


def test_nested_secrets_are_refused_and_masked(mlv_repo: Path) -> None:
    mlv("remote", "add", "-d", "web", "https://data.example/p", cwd=mlv_repo)
    key = "remote.web.client_kwargs.headers.Authorization"
    assert_error(mlv("config", key, "Bearer s3cr3t", cwd=mlv_repo, check=False), 2, "--local", key)
    # a hand-written (or cloned) config holding secrets: listings never print them
    (mlv_repo / ".mlv" / "config.yaml").write_text(
        "core: {remote: web}\nremote:\n  web:\n    url: https://tok:s3cr3t@data.example/p\n"
        "    client_kwargs: {headers: {Authorization: Bearer s3cr3t}, trust_env: true}\n"
        "    Password: s3cr3t\n"
    )
    doc = json.loads(mlv("remote", "list", "--json", cwd=mlv_repo).stdout)
    assert doc[0]["url"] == "https://tok:***@data.example/p"
    assert doc[0]["options"] == {
        "Password": "***",
        "client_kwargs": {"headers": "***", "trust_env": True},
    }
    for args in (("config", "remote.web.client_kwargs"), ("config", "remote.web.url")):
        assert "s3cr3t" not in mlv(*args, cwd=mlv_repo).stdout


# ---- a committed config cannot make mlv run a command or use files outside the repo ----


def _committed_remote(repo: Path, options: str, url: str = "ssh://127.0.0.1:1/srv") -> None:
    write_files(repo, {"f.txt": "data"})
    mlv("add", "f.txt", cwd=repo)
    (repo / ".mlv" / "config.yaml").write_text(
        f"core:\n  remote: evil\nremote:\n  evil:\n    url: {url}\n{options}"
    )
    commit_all(repo, "a config from someone else")


@pytest.mark.parametrize("command", ["push", "pull", "fetch", "status --remote evil"])
def test_a_committed_proxy_command_never_runs(mlv_repo: Path, tmp_path: Path, command: str) -> None:
    """asyncssh runs proxy_command: before, `mlv push` in a clone ran the author's command."""
    marker = tmp_path / "pwned"
    _committed_remote(mlv_repo, f"    proxy_command: touch {marker}\n")
    line = assert_error(
        mlv(*command.split(), cwd=mlv_repo, check=False),
        1,
        ".mlv/config.yaml",
        "remote.evil.proxy_command",
        "mlv config --local remote.evil.proxy_command",
    )
    assert "refused" in line
    assert not marker.exists()


@pytest.mark.parametrize(
    ("options", "url", "key"),
    [
        ("    client_keys: [/etc/ssh/ssh_host_ed25519_key]\n", None, "client_keys"),
        ("    config: [./ssh_config]\n", None, "config"),
        ("    known_hosts: null\n", None, "known_hosts"),
        ("    agent_forwarding: true\n", None, "agent_forwarding"),
        ("    Proxy_Command: x\n", None, "Proxy_Command"),
        ("    tunnel: jump.example\n", None, "tunnel"),
        (
            "    simplecache: {cache_storage: /tmp/anywhere, same_names: true}\n",
            "simplecache::s3://bucket/p",
            "url",
        ),
        ("    client_kwargs: {proxy_command: x}\n", "sftp://127.0.0.1:1/srv", "proxy_command"),
    ],
)
def test_committed_options_that_touch_local_files_are_refused(
    mlv_repo: Path, options: str, url: str | None, key: str
) -> None:
    _committed_remote(mlv_repo, options, url or "ssh://127.0.0.1:1/srv")
    assert_error(mlv("pull", cwd=mlv_repo, check=False), 1, ".mlv/config.yaml", key, "--local")


def test_this_machines_config_may_decide_them(mlv_repo: Path, tmp_path: Path) -> None:
    """config.local.yaml setting the option (it wins), or the global config holding the same
    value, lifts the refusal: the user chose it."""
    marker = tmp_path / "ran"
    _committed_remote(mlv_repo, "    known_hosts: /nonexistent/known_hosts\n")
    assert_error(mlv("push", cwd=mlv_repo, check=False), 1, "known_hosts")
    mlv("config", "--local", "remote.evil.proxy_command", f"touch {marker}", cwd=mlv_repo)
    # an existing (empty) file: with a missing one, asyncssh's failure to read it raced the
    # proxy command and sometimes killed it before it ran
    known_hosts = tmp_path / "known_hosts"
    known_hosts.touch()
    mlv("config", "--local", "remote.evil.known_hosts", str(known_hosts), cwd=mlv_repo)
    proc = mlv("push", cwd=mlv_repo, check=False)
    assert proc.returncode == 1 and "refused" not in proc.stderr, proc.stderr
    assert marker.exists()  # the user's own choice runs


def test_import_from_a_repository_whose_config_runs_a_command(
    mlv_repo: Path, tmp_path: Path
) -> None:
    """mlv import/get read the source's committed config: the same refusal applies."""
    marker = tmp_path / "pwned"
    source = tmp_path / "source"
    source.mkdir()
    git("init", "-q", "-b", "main", cwd=source)
    mlv("init", cwd=source)
    _committed_remote(source, f"    proxy_command: touch {marker}\n")
    shutil.rmtree(source / ".mlv" / "cache")  # only the remote holds the data
    for args in (("import", str(source), "f.txt"), ("get", str(source), "f.txt")):
        assert_error(mlv(*args, cwd=mlv_repo, check=False), 1, "proxy_command", "refused")
    assert not marker.exists()


@pytest.mark.parametrize(
    "options",
    [
        "    send_env: ['*']\n",  # every environment variable (AWS keys...) to the author's server
        "    client_host_keysign: ./keysign.sh\n",  # asyncssh runs it as ssh-keysign
        "    gss_delegate_creds: true\n",  # the user's Kerberos ticket to the author's server
    ],
    ids=["send_env", "client_host_keysign", "gss_delegate_creds"],
)
def test_committed_ssh_options_that_send_secrets_or_run_a_program(
    mlv_repo: Path, options: str
) -> None:
    _committed_remote(mlv_repo, options)
    key = options.split(":")[0].strip()
    line = assert_error(mlv("pull", cwd=mlv_repo, check=False), 1, f"remote.evil.{key}", "--local")
    assert "refused" in line


def _clone_with(tmp_path: Path, mlv_repo: Path, files: dict[str, str]) -> Path:
    """A clone of mlv_repo (data on a folder remote) whose author force-added files under
    .mlv that mlv keeps for one machine."""
    mlv("remote", "add", "-d", "store", str(tmp_path / "store"), cwd=mlv_repo)
    write_files(mlv_repo, {"f.txt": "data"})
    mlv("add", "f.txt", cwd=mlv_repo)
    mlv("push", cwd=mlv_repo)
    write_files(mlv_repo, files)
    git("add", "-f", *files, cwd=mlv_repo)
    commit_all(mlv_repo, "machine files from someone else")
    clone = tmp_path / "clone"
    git("clone", "-q", str(mlv_repo), str(clone), cwd=tmp_path)
    return clone


def test_a_committed_config_local_yaml_is_refused(mlv_repo: Path, tmp_path: Path) -> None:
    """config.local.yaml is this machine's: a clone that commits one would set what a
    committed config may not (a cache outside the repository, a proxy_command)."""
    outside = tmp_path / "outside"
    outside.mkdir()
    local = f"cache:\n  dir: {outside / 'cache'}\nremote:\n  store:\n    jobs: 2\n"
    clone = _clone_with(tmp_path, mlv_repo, {".mlv/config.local.yaml": local})
    for args in (("pull",), ("status",), ("push",)):
        assert_error(
            mlv(*args, cwd=clone, check=False),
            1,
            ".mlv/config.local.yaml is tracked by git",
            "`git rm -r --cached .mlv/config.local.yaml`",
        )
    assert list(outside.iterdir()) == []
    git("rm", "-q", "-r", "--cached", ".mlv/config.local.yaml", cwd=clone)  # the hint
    (clone / ".mlv" / "config.local.yaml").unlink()
    mlv("pull", cwd=clone)
    assert (clone / "f.txt").read_text() == "data"
    assert list(outside.iterdir()) == []


def test_committed_cache_objects_are_refused(mlv_repo: Path, tmp_path: Path) -> None:
    """An object planted in the cache under a name its bytes do not have would be taken as
    held: `mlv add` of a file with that hash would store nothing and push the planted bytes."""
    planted = xxh(b"the victim's future file")
    obj = f".mlv/cache/xxh128/{planted[7:9]}/{planted[9:]}"
    clone = _clone_with(tmp_path, mlv_repo, {obj: "planted bytes"})
    assert_error(
        mlv("status", cwd=clone, check=False),
        1,
        ".mlv/cache is tracked by git",
        "git rm -r --cached .mlv/cache",
    )


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("mlv.lock", ("status",)),
        ("mlv.yaml", ("repro", "--dry")),
        ("params.yaml", ("params", "diff")),
        (".mlv/config.yaml", ("remote", "list")),
        (".mlvignore", ("add", "data")),
    ],
)
def test_a_committed_link_to_a_device_is_not_read(
    mlv_repo: Path, tmp_path: Path, name: str, args: tuple[str, ...]
) -> None:
    """git commits `mlv.lock -> /dev/zero` as a link and never reads through it; mlv read
    such files whole and ran out of memory (MemoryError under a cap, gigabytes without)."""
    write_files(mlv_repo, {"mlv.yaml": "stages:\n  s:\n    cmd: echo\n"})
    if name == "params.yaml":
        (mlv_repo / "mlv.yaml").write_text("stages:\n  s:\n    cmd: echo\n    params: [lr]\n")
    target = mlv_repo / name
    target.unlink(missing_ok=True)
    target.symlink_to("/dev/zero")
    commit_all(mlv_repo, "a link to a device")
    clone = tmp_path / "clone"
    git("clone", "-q", str(mlv_repo), str(clone), cwd=tmp_path)
    write_files(clone, {"data/a.txt": "a"})
    proc = _limited(*args, cwd=clone)
    assert "MemoryError" not in proc.stderr and "internal error" not in proc.stderr
    line = _refused(proc)
    # params files, mlv.yaml, mlv.lock and the config are refused first as a committed link
    # out
    out = "a symbolic link that git tracks leads out of the work tree (to /dev/zero)"
    first = name in ("params.yaml", "mlv.yaml", "mlv.lock", ".mlv/config.yaml")
    assert "not a regular file" in line or (first and out in line), line
    assert name in line, (proc.stdout, proc.stderr)
