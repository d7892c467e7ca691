"""Secrets kept for this machine: written only to a config.local.yaml that git ignores and
does not track, and sent only where the file that holds them sends them.

Review findings 3 and 4: `mlv remote modify --local` (the command mlv's own refusal
suggests) wrote a password into a config.local.yaml that a clone committed, or that its
.mlv/.gitignore left out (`git add -A` then committed it); and a header stored with
--local for remote `web` went to whatever host a later commit put in the committed url.
Real git, real mlv, real HTTP servers on loopback.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from helpers import assert_error, commit_all, git, mlv, write_files

# ---- finding 3: the local config is one git neither tracks nor would add ----------------

TRACKED = ".mlv/config.local.yaml is tracked by git"


def _clone(src: Path, tmp_path: Path) -> Path:
    clone = tmp_path / "clone"
    git("clone", "-q", str(src), str(clone), cwd=tmp_path)
    return clone


WRITES = [
    ("remote", "modify", "--local", "origin", "password", "hunter2"),
    ("config", "--local", "remote.origin.secret_access_key", "hunter2"),
    ("remote", "add", "--local", "mine", "s3://bucket/hunter2"),
    ("remote", "default", "--local", "origin"),
    ("config", "--local", "--unset", "core.hash"),
]


@pytest.mark.parametrize("args", WRITES, ids=" ".join)
def test_a_tracked_config_local_yaml_is_not_written(
    mlv_repo: Path, tmp_path: Path, args: tuple[str, ...]
) -> None:
    mlv("remote", "add", "-d", "origin", "s3://bucket/x", cwd=mlv_repo)
    write_files(mlv_repo, {".mlv/config.local.yaml": "core:\n  hash: xxh128\n"})
    git("add", "-f", ".mlv/config.local.yaml", cwd=mlv_repo)
    commit_all(mlv_repo, "a clone that commits this machine's config")
    clone = _clone(mlv_repo, tmp_path)
    before = (clone / ".mlv" / "config.local.yaml").read_text()
    line = assert_error(
        mlv(*args, cwd=clone, check=False),
        1,
        TRACKED,
        "`git rm -r --cached .mlv/config.local.yaml`",
    )
    assert "hunter2" not in line
    assert (clone / ".mlv" / "config.local.yaml").read_text() == before
    assert git("diff", cwd=clone).stdout == ""
    # the hint, then the command works and the file stays out of git
    hint = line.split("`")[1]
    git(*hint.split()[1:], cwd=clone)
    git("commit", "-q", "-m", "untrack", cwd=clone)
    mlv(*args, cwd=clone)
    assert git("status", "--porcelain", cwd=clone).stdout == ""
    git("add", "-A", cwd=clone)
    assert "config.local.yaml" not in git("diff", "--cached", "--name-only", cwd=clone).stdout


def test_a_tracked_config_local_yaml_in_a_subfolder_is_named_from_there(
    mlv_repo: Path, tmp_path: Path
) -> None:
    mlv("remote", "add", "-d", "origin", "s3://bucket/x", cwd=mlv_repo)
    write_files(mlv_repo, {".mlv/config.local.yaml": "", "sub/keep.txt": "x"})
    git("add", "-f", ".mlv/config.local.yaml", cwd=mlv_repo)
    commit_all(mlv_repo)
    clone = _clone(mlv_repo, tmp_path)
    sub = clone / "sub"
    line = assert_error(
        mlv("remote", "modify", "--local", "origin", "token", "t0k", cwd=sub, check=False),
        1,
        "../.mlv/config.local.yaml is tracked by git",
    )
    git(*line.split("`")[1].split()[1:], cwd=clone / "sub")  # the hint, from there
    git("commit", "-q", "-m", "untrack", cwd=clone)
    mlv("remote", "modify", "--local", "origin", "token", "t0k", cwd=clone / "sub")


@pytest.mark.parametrize("gitignore", ["without the line", "absent", "a link"])
def test_the_ignore_line_is_restored_before_a_secret_is_written(
    mlv_repo: Path, tmp_path: Path, gitignore: str
) -> None:
    """A clone whose .mlv/.gitignore leaves config.local.yaml out: the secret appeared as
    `?? .mlv/config.local.yaml`, which `git add -A` committed."""
    mlv("remote", "add", "-d", "origin", "s3://bucket/x", cwd=mlv_repo)
    ignore = mlv_repo / ".mlv" / ".gitignore"
    outside = tmp_path / "outside-ignore"
    outside.write_text("/cache/\n")
    if gitignore == "without the line":
        ignore.write_text("/cache/\n/tmp/")  # no newline at the end either
    elif gitignore == "absent":
        ignore.unlink()
        write_files(mlv_repo, {".gitignore": ".mlv/cache/\n.mlv/tmp/\n"})
    else:
        ignore.unlink()
        ignore.symlink_to(outside)  # git reads no .gitignore through a link
    commit_all(mlv_repo, "a .gitignore that lets the local config through")
    clone = _clone(mlv_repo, tmp_path)
    proc = mlv("remote", "modify", "--local", "origin", "password", "hunter2", cwd=clone)
    assert "Added /config.local.yaml to .mlv/.gitignore" in proc.stdout
    ignore = clone / ".mlv" / ".gitignore"
    assert not ignore.is_symlink()
    assert "/config.local.yaml" in ignore.read_text().splitlines()
    assert outside.read_text() == "/cache/\n"
    status = git("status", "--porcelain", cwd=clone).stdout
    assert "config.local.yaml" not in status and ".mlv/.gitignore" in status
    git("add", "-A", cwd=clone)
    git("commit", "-q", "-m", "wip", cwd=clone)
    assert "hunter2" not in git("log", "-p", cwd=clone).stdout
    # once ignored, no note and no change
    proc = mlv("remote", "modify", "--local", "origin", "token", "t0k", cwd=clone)
    assert proc.stdout == "" and git("status", "--porcelain", cwd=clone).stdout == ""


# ---- finding 4: a secret goes only where it was stored for ------------------------------


class _Logged(http.server.SimpleHTTPRequestHandler):
    """A static file server that records each request's path and Authorization header."""

    seen: list[str] = []  # noqa: RUF012 (one list per server subclass)

    def log_message(self, format: str, *args: object) -> None:
        pass

    def send_head(self) -> object:
        self.seen.append(f"{self.path} {self.headers.get('Authorization')}")
        return super().send_head()

    def translate_path(self, path: str) -> str:
        """A request sent through a proxy names the whole URL: as a proxy, serve its path."""
        return super().translate_path(urlsplit(path).path if "://" in path else path)


@contextlib.contextmanager
def serving(folder: Path) -> Iterator[tuple[str, list[str]]]:
    """An HTTP server of folder on loopback: (its url, the requests it saw)."""
    handler = type("Handler", (_Logged,), {"seen": []})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(folder))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler.seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


TOKEN = "Bearer MY-TOKEN"
SECRET_KEY = "remote.web.headers.Authorization"


def _published(mlv_repo: Path, tmp_path: Path) -> Path:
    """mlv_repo with data.txt pushed to a folder remote (what both web servers serve)."""
    store = tmp_path / "store"
    write_files(mlv_repo, {"data.txt": "the data"})
    mlv("add", "data.txt", cwd=mlv_repo)
    mlv("remote", "add", "store", str(store), cwd=mlv_repo)
    mlv("push", "-r", "store", cwd=mlv_repo)
    return store


def _commit_url(src: Path, url: str, message: str) -> None:
    mlv("remote", "add", "-d", "--force", "web", url, cwd=src)
    commit_all(src, message)


def _forget_data(clone: Path) -> None:
    """So that the next pull asks the remote again."""
    shutil.rmtree(clone / ".mlv" / "cache")
    (clone / "data.txt").unlink()


def _take_commits(clone: Path) -> None:
    """`git pull` the team's new commits and forget the data (the next pull asks again)."""
    git("pull", "-q", cwd=clone)
    _forget_data(clone)


def _pull_refused(clone: Path, *needles: str) -> str:
    """`mlv pull` in clone fails on one line holding needles; that line."""
    return assert_error(mlv("pull", cwd=clone, check=False), 1, *needles)


def test_a_local_secret_stays_with_the_url_it_was_stored_for(
    mlv_repo: Path, tmp_path: Path
) -> None:
    """The team commits the url, the user stores a header with --local: pull works; a later
    commit moves the committed url to another host: the header never goes there."""
    store = _published(mlv_repo, tmp_path)
    with serving(store) as (team_url, team_seen), serving(store) as (other_url, other_seen):
        _commit_url(mlv_repo, team_url, "the team's store")
        clone = _clone(mlv_repo, tmp_path)
        proc = mlv("config", "--local", SECRET_KEY, TOKEN, cwd=clone)
        assert f"Pinned remote.web.url ({team_url})" in proc.stdout
        local = yaml.safe_load((clone / ".mlv" / "config.local.yaml").read_text())
        assert local["remote"]["web"]["url"] == team_url
        mlv("pull", cwd=clone)
        assert (clone / "data.txt").read_text() == "the data"
        assert team_seen and all(line.endswith(TOKEN) for line in team_seen)
        _commit_url(mlv_repo, other_url, "move the store")
        _take_commits(clone)
        team_seen.clear()
        mlv("pull", cwd=clone)  # still from the url the secret was stored for
        assert (clone / "data.txt").read_text() == "the data"
        assert team_seen and other_seen == []


def test_remote_modify_local_pins_the_url_too(mlv_repo: Path, tmp_path: Path) -> None:
    mlv("remote", "add", "-d", "s3", "s3://bucket/p", cwd=mlv_repo)
    mlv("remote", "modify", "s3", "endpoint_url", "http://127.0.0.1:9000", cwd=mlv_repo)
    proc = mlv("remote", "modify", "--local", "s3", "secret", "hunter2", cwd=mlv_repo)
    assert "Pinned remote.s3.url (s3://bucket/p)" in proc.stdout
    assert "Pinned remote.s3.endpoint_url (http://127.0.0.1:9000)" in proc.stdout
    local = yaml.safe_load((mlv_repo / ".mlv" / "config.local.yaml").read_text())
    assert local["remote"]["s3"] == {
        "url": "s3://bucket/p",
        "endpoint_url": "http://127.0.0.1:9000",
        "secret": "hunter2",
    }
    # a second secret: already pinned, nothing more
    proc = mlv("remote", "modify", "--local", "s3", "key", "id", cwd=mlv_repo)
    assert "Pinned" not in proc.stdout
    # an option that is no secret pins nothing
    mlv("remote", "add", "-d", "t", "s3://bucket/t", cwd=mlv_repo)
    mlv("remote", "modify", "--local", "t", "region", "eu-west-1", cwd=mlv_repo)
    local = yaml.safe_load((mlv_repo / ".mlv" / "config.local.yaml").read_text())
    assert local["remote"]["t"] == {"region": "eu-west-1"}


@pytest.mark.parametrize("command", ["pull", "fetch", "status --remote web"])
def test_an_unpinned_local_secret_is_not_sent_to_a_committed_url(
    mlv_repo: Path, tmp_path: Path, command: str
) -> None:
    """config.local.yaml written before urls were pinned (or by hand) holds only the
    secret: the url a commit chose is refused until the user pins it (the hint)."""
    store = _published(mlv_repo, tmp_path)
    with serving(store) as (other_url, other_seen):
        _commit_url(mlv_repo, other_url, "a url someone chose")
        clone = _clone(mlv_repo, tmp_path)
        local = f"remote:\n  web:\n    headers:\n      Authorization: {TOKEN}\n"
        write_files(clone, {".mlv/config.local.yaml": local})
        line = assert_error(
            mlv(*command.split(), cwd=clone, check=False),
            1,
            "remote 'web': .mlv/config.local.yaml holds a secret for it (headers.Authorization)",
            f"its url {other_url} comes from .mlv/config.yaml",
            f"`mlv remote modify --local web url {other_url}`",
        )
        assert "MY-TOKEN" not in line
        assert other_seen == []
        mlv(*_hint(line), cwd=clone)  # the hint: the user trusts it
        mlv("pull", cwd=clone)
        assert (clone / "data.txt").read_text() == "the data"
        assert other_seen and all(line.endswith(TOKEN) for line in other_seen)


def test_a_global_secret_is_not_sent_to_another_repositorys_url(
    mlv_repo: Path, tmp_path: Path, isolated_env: Path
) -> None:
    """A secret in the global config is stored for a remote's name, in every repository:
    it goes only to the url this machine's config gives that name."""
    store = _published(mlv_repo, tmp_path)
    with serving(store) as (team_url, team_seen), serving(store) as (other_url, other_seen):
        _commit_url(mlv_repo, team_url, "the team's store")
        clone = _clone(mlv_repo, tmp_path)
        proc = mlv("config", "--global", SECRET_KEY, TOKEN, cwd=clone)
        assert f"Pinned remote.web.url ({team_url})" in proc.stdout
        mlv("pull", cwd=clone)
        assert team_seen and all(line.endswith(TOKEN) for line in team_seen)
        _commit_url(mlv_repo, other_url, "move the store")  # the committed url wins
        _take_commits(clone)
        line = _pull_refused(
            clone,
            f"remote 'web': {isolated_env / '.config' / 'mlv' / 'config.yaml'} holds a secret",
            f"`mlv remote modify --local web url {other_url}`",
        )
        assert other_seen == []
        mlv(*_hint(line), cwd=clone)
        mlv("pull", cwd=clone)
        assert other_seen and all(line.endswith(TOKEN) for line in other_seen)


def test_a_global_secret_is_not_sent_to_an_import_sources_url(
    mlv_repo: Path, tmp_path: Path, isolated_env: Path
) -> None:
    """`mlv import` opens the source's remote, whose url the source's author chose: a
    secret of the user's global config for that remote's name is not sent there."""
    source = tmp_path / "source"
    source.mkdir()
    git("init", "-q", "-b", "main", cwd=source)
    mlv("init", cwd=source)
    store = _published(source, tmp_path)
    shutil.rmtree(source / ".mlv" / "cache")  # only the remote holds the data
    with serving(store) as (other_url, other_seen):
        _commit_url(source, other_url, "the source's store")
        mlv("config", "--global", "remote.web.url", "http://127.0.0.1:9/mine", cwd=mlv_repo)
        mlv("config", "--global", SECRET_KEY, TOKEN, cwd=mlv_repo)
        line = assert_error(
            mlv("import", str(source), "data.txt", cwd=mlv_repo, check=False),
            1,
            f"remote 'web': {isolated_env / '.config' / 'mlv' / 'config.yaml'} holds a secret",
            f"`mlv config --global remote.web.url {other_url}`",
        )
        assert other_seen == [] and not (mlv_repo / "data.txt").exists()
        mlv(*line.split("`")[1].split()[1:], cwd=mlv_repo)  # the user trusts it
        mlv("import", str(source), "data.txt", cwd=mlv_repo)
        assert (mlv_repo / "data.txt").read_text() == "the data"
        assert other_seen and all(line.endswith(TOKEN) for line in other_seen)


# ---- review 61: other committed options, and pins that hide later changes ---------------


def _hint(line: str) -> list[str]:
    """The command a message's hint names (between backquotes), without `mlv`."""
    return line.split("`")[1].split()[1:]


def test_a_committed_proxy_does_not_get_a_local_secret(mlv_repo: Path, tmp_path: Path) -> None:
    """The url is pinned, but a commit adds `proxy`: every request (and its Authorization
    header) would go to the proxy. While this machine holds a secret for the remote, the
    committed config may set only mlv's own options (jobs, timeout...)."""
    store = _published(mlv_repo, tmp_path)
    with serving(store) as (team_url, team_seen), serving(store) as (proxy, proxy_seen):
        _commit_url(mlv_repo, team_url, "the team's store")
        clone = _clone(mlv_repo, tmp_path)
        mlv("config", "--local", SECRET_KEY, TOKEN, cwd=clone)
        for option, value in [("jobs", "2"), ("timeout", "30"), ("retries", "1")]:
            mlv("remote", "modify", "web", option, value, cwd=mlv_repo)
        commit_all(mlv_repo, "mlv's own options")
        git("pull", "-q", cwd=clone)
        mlv("pull", cwd=clone)  # allowed: they change neither where nor what
        assert team_seen and (clone / "data.txt").read_text() == "the data"
        mlv("remote", "modify", "web", "proxy", proxy, cwd=mlv_repo)
        commit_all(mlv_repo, "use a proxy")
        _take_commits(clone)
        team_seen.clear()
        line = _pull_refused(
            clone,
            f"remote 'web': .mlv/config.yaml sets proxy ({proxy})",
            "(headers.Authorization in .mlv/config.local.yaml)",
            f"`mlv remote modify --local web proxy {proxy}`",
        )
        assert "MY-TOKEN" not in line
        assert proxy_seen == [] and team_seen == []
        mlv(*_hint(line), cwd=clone)  # the user trusts the proxy
        mlv("pull", cwd=clone)
        assert (clone / "data.txt").read_text() == "the data"
        assert proxy_seen and all(line.endswith(TOKEN) for line in proxy_seen)
        assert all(line.startswith(f"{team_url}/") for line in proxy_seen)


def test_a_committed_client_kwargs_endpoint_does_not_get_s3_keys(
    mlv_repo: Path, tmp_path: Path, s3_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """S3 keys stored with --local are pinned to the url; a commit that
    adds client_kwargs.endpoint_url (which s3fs hands to botocore) would have the signed
    requests, access key id and session token, go to its host."""
    bucket = s3_server.create_bucket()
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint_url)  # the team's, as AWS
    mlv("remote", "add", "-d", "s3", f"s3://{bucket}/store", cwd=mlv_repo)
    mlv("remote", "modify", "s3", "retries", "0", cwd=mlv_repo)  # allowed: mlv's own
    commit_all(mlv_repo, "the team's bucket")
    clone = _clone(mlv_repo, tmp_path)
    for option, value in [("key", "AKIAUSERKEYID"), ("secret", "testing"), ("token", "SESS")]:
        mlv("remote", "modify", "--local", "s3", option, value, cwd=clone)
    write_files(clone, {"data.txt": "the data"})
    mlv("add", "data.txt", cwd=clone)
    mlv("push", cwd=clone)  # the usual flow
    with serving(tmp_path) as (evil, evil_seen):
        mlv("config", "remote.s3.client_kwargs.endpoint_url", evil, cwd=mlv_repo)
        commit_all(mlv_repo, "another endpoint")
        _take_commits(clone)
        line = _pull_refused(
            clone,
            f"remote 's3': .mlv/config.yaml sets client_kwargs.endpoint_url ({evil})",
            f"`mlv config --local remote.s3.client_kwargs.endpoint_url {evil}`",
        )
        assert evil_seen == []
        mlv(*_hint(line), cwd=clone)  # the user trusts it: requests go there
        mlv("pull", cwd=clone, check=False)
        assert evil_seen and any("AKIAUSERKEYID" in line for line in evil_seen)


def test_an_import_sources_proxy_does_not_get_a_global_secret(
    mlv_repo: Path, tmp_path: Path
) -> None:
    """A source repository names the url this machine's global config pins with a secret,
    and a proxy: the proxy is refused until the global config sets it."""
    source = tmp_path / "source"
    source.mkdir()
    git("init", "-q", "-b", "main", cwd=source)
    mlv("init", cwd=source)
    store = _published(source, tmp_path)
    shutil.rmtree(source / ".mlv" / "cache")  # only the remote holds the data
    with serving(store) as (team_url, team_seen), serving(store) as (proxy, proxy_seen):
        _commit_url(source, team_url, "the source's store")
        mlv("remote", "modify", "web", "proxy", proxy, cwd=source)
        mlv("remote", "modify", "web", "jobs", "2", cwd=source)  # allowed
        commit_all(source, "a proxy")
        mlv("config", "--global", "remote.web.url", team_url, cwd=mlv_repo)
        mlv("config", "--global", SECRET_KEY, TOKEN, cwd=mlv_repo)
        line = assert_error(
            mlv("import", str(source), "data.txt", cwd=mlv_repo, check=False),
            1,
            f"remote 'web': {source}: .mlv/config.yaml at ",
            f"sets proxy ({proxy})",
            f"`mlv config --global remote.web.proxy {proxy}`",
        )
        assert proxy_seen == [] and team_seen == []
        mlv(*_hint(line), cwd=mlv_repo)
        mlv("import", str(source), "data.txt", cwd=mlv_repo)
        assert (mlv_repo / "data.txt").read_text() == "the data"
        assert proxy_seen and all(line.endswith(TOKEN) for line in proxy_seen)


def _pinned_clone(mlv_repo: Path, tmp_path: Path, url: str) -> Path:
    _commit_url(mlv_repo, url, "the team's store")
    clone = _clone(mlv_repo, tmp_path)
    mlv("config", "--local", SECRET_KEY, TOKEN, cwd=clone)
    return clone


MOVES = [
    ("remote", "modify", "web", "url", "NEW"),
    ("remote", "add", "-d", "--force", "web", "NEW"),
    ("config", "remote.web.url", "NEW"),
]


@pytest.mark.parametrize("args", MOVES, ids=" ".join)
def test_moving_the_committed_url_of_a_pinned_remote_says_how(
    mlv_repo: Path, tmp_path: Path, args: tuple[str, ...]
) -> None:
    """The url pinned with the secret wins over the committed one: a committed write of
    the url would change nothing on this machine. It is refused, with the --local command
    that moves the pin; after it the committed write goes through, and pull goes there."""
    store = _published(mlv_repo, tmp_path)
    with serving(store) as (old, old_seen), serving(store) as (new, new_seen):
        clone = _pinned_clone(mlv_repo, tmp_path, old)
        command = [new if a == "NEW" else a for a in args]
        before = (clone / ".mlv" / "config.yaml").read_text()
        line = assert_error(
            mlv(*command, cwd=clone, check=False),
            2,
            f"remote 'web': .mlv/config.local.yaml pins its url to {old}",
            f"the committed url {new} would not be used here",
            f"`mlv remote modify --local web url {new}`",
        )
        assert (clone / ".mlv" / "config.yaml").read_text() == before
        mlv(*_hint(line), cwd=clone)
        mlv(*command, cwd=clone)
        committed = yaml.safe_load((clone / ".mlv" / "config.yaml").read_text())
        assert committed["remote"]["web"]["url"] == new
        mlv("pull", cwd=clone)
        assert new_seen and old_seen == []
        assert all(line.endswith(TOKEN) for line in new_seen)


def test_removing_a_remote_pinned_here_says_how(mlv_repo: Path, tmp_path: Path) -> None:
    clone = _pinned_clone(mlv_repo, tmp_path, "http://127.0.0.1:9/store")
    line = assert_error(
        mlv("remote", "remove", "web", cwd=clone, check=False),
        2,
        "remote 'web': .mlv/config.local.yaml keeps a secret for it, and its url",
        "`mlv remote remove --local web`",
    )
    mlv(*_hint(line), cwd=clone)
    mlv("remote", "remove", "web", cwd=clone)
    assert mlv("remote", "list", cwd=clone).stdout.strip() == ""
    local = yaml.safe_load((clone / ".mlv" / "config.local.yaml").read_text() or "{}")
    assert "web" not in (local or {}).get("remote", {}) and "pinned" not in (local or {})


def test_a_teammates_move_is_noted_and_followed(mlv_repo: Path, tmp_path: Path) -> None:
    """A commit moves the store (twice): pull keeps using the pinned url, says so once
    with the command that follows the new one; after it, pull goes to the new url."""
    store = _published(mlv_repo, tmp_path)
    with (
        serving(store) as (first, first_seen),
        serving(store) as (second, second_seen),
        serving(store) as (third, third_seen),
    ):
        clone = _pinned_clone(mlv_repo, tmp_path, first)
        mlv("pull", cwd=clone)
        assert first_seen
        for old, new, seen in [(first, second, second_seen), (second, third, third_seen)]:
            _commit_url(mlv_repo, new, "the store moved")
            _take_commits(clone)
            proc = mlv("pull", cwd=clone)
            notes = [n for n in proc.stderr.splitlines() if n.startswith("note:")]
            assert len(notes) == 1, proc.stderr
            assert f".mlv/config.yaml sets its url to {new}" in notes[0]
            assert f"sends its secrets to {old}, pinned in .mlv/config.local.yaml" in notes[0]
            assert seen == []
            mlv(*_hint(notes[0]), cwd=clone)
            _forget_data(clone)
            proc = mlv("pull", cwd=clone)
            assert "note:" not in proc.stderr
            assert (clone / "data.txt").read_text() == "the data"
            assert seen and all(line.endswith(TOKEN) for line in seen)


@pytest.mark.parametrize(
    "unset",
    [
        ("config", "--local", "--unset", SECRET_KEY),
        ("remote", "modify", "--local", "--unset", "web", "headers"),
    ],
    ids=" ".join,
)
def test_dropping_the_last_secret_drops_its_pins(
    mlv_repo: Path, tmp_path: Path, unset: tuple[str, ...]
) -> None:
    """The pin was there for the secret: without it, the committed url is followed again.
    A url the user set with --local is the user's, and stays."""
    store = _published(mlv_repo, tmp_path)
    with serving(store) as (old, old_seen), serving(store) as (new, new_seen):
        clone = _pinned_clone(mlv_repo, tmp_path, old)
        mlv("remote", "modify", "web", "timeout", "30", cwd=mlv_repo)  # not pinned: mlv's own
        _commit_url(mlv_repo, new, "the store moved")
        git("pull", "-q", cwd=clone)
        proc = mlv(*unset, cwd=clone)
        assert "Unpinned remote.web.url in .mlv/config.local.yaml" in proc.stdout
        local = yaml.safe_load((clone / ".mlv" / "config.local.yaml").read_text() or "{}")
        assert not local
        mlv("pull", cwd=clone)
        assert new_seen and old_seen == []
        assert all(line.endswith("None") for line in new_seen)  # no secret any more
        # a url set by hand is not a pin: it stays when the secret goes
        mlv("config", "--local", SECRET_KEY, TOKEN, cwd=clone)
        mlv("remote", "modify", "--local", "web", "url", old, cwd=clone)
        proc = mlv(*unset, cwd=clone)
        assert "Unpinned" not in proc.stdout
        local = yaml.safe_load((clone / ".mlv" / "config.local.yaml").read_text())
        assert local == {"remote": {"web": {"url": old}}}


@pytest.mark.parametrize(
    "committed",
    [
        {"url": "ssh://127.0.0.1:9/store", "proxy_command": "touch PWNED"},
        {"url": "simplecache::ssh://127.0.0.1:9/store"},
    ],
    ids=["proxy_command", "wrapper url"],
)
def test_storing_a_secret_does_not_pin_what_a_commit_may_not_set(
    mlv_repo: Path, tmp_path: Path, committed: dict[str, str]
) -> None:
    """Pinning copies the committed options into this machine's config, which would make
    them this machine's: an option a committed config may not set (it runs a command,
    wraps the file system) is never copied, and stays refused."""
    write_files(mlv_repo, {".mlv/config.yaml": yaml.safe_dump({"remote": {"s": committed}})})
    commit_all(mlv_repo, "a hostile remote")
    clone = _clone(mlv_repo, tmp_path)
    mlv("remote", "modify", "--local", "s", "password", "hunter2", cwd=clone)
    local = yaml.safe_load((clone / ".mlv" / "config.local.yaml").read_text())
    assert local["remote"]["s"] == {"password": "hunter2"} | (
        {"url": committed["url"]} if "proxy_command" in committed else {}
    )
    key = "proxy_command" if "proxy_command" in committed else "url"
    assert_error(
        mlv("fetch", "-r", "s", cwd=clone, check=False),
        1,
        f"remote.s.{key} is refused in a committed config",
    )
    assert not (clone / "PWNED").exists()
