"""`mlv get`, `mlv import` and `mlv update`: data from another repository."""

from __future__ import annotations

import sys
from typing import Any

import click

from mlv.cli import output
from mlv.cli.common import json_option, open_repo, wait_for_lock_option
from mlv.core import imports as imports_mod
from mlv.core.imports import ImportResult
from mlv.core.repo import Repo
from mlv.errors import NotARepoError

rev_option = click.option(
    "--rev", metavar="REV", help="A branch, tag or commit of the source (default: its HEAD)."
)
out_option = click.option(
    "-o", "--out", metavar="OUT", help="Where to write (default: the name of PATH, here)."
)
jobs_option = click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    help="Downloads at once from the source's remote (default: per backend).",
)


@click.command("get")
@click.argument("url")
@click.argument("path")
@rev_option
@out_option
@jobs_option
@click.option("-f", "--force", is_flag=True, help="Replace OUT if it exists.")
@json_option
@wait_for_lock_option
def get_cmd(
    url: str,
    path: str,
    rev: str | None,
    out: str | None,
    jobs: int | None,
    force: bool,
    as_json: bool,
    wait_for_lock: bool,
) -> None:
    """Download PATH of the repository at URL into OUT, as plain files that mlv does not track.

    URL is any git URL or the path of a local repository. PATH is data tracked there (a
    file, a directory, a path inside a directory) or a file git tracks. Inside an mlv
    repository the objects go through its cache; elsewhere through a temporary one.
    """
    repo: Repo | None
    try:
        repo = open_repo(wait_for_lock)
    except NotARepoError:
        repo = None
    try:
        result = imports_mod.get(url, path, rev, out, force, jobs, repo)
    finally:
        if repo is not None:
            repo.close()
    if as_json:
        output.emit_json(
            {
                "out": result.out,
                "kind": result.kind,
                "files": result.files,
                "bytes": result.bytes,
                "source": {"url": result.url, "path": result.path, "rev": rev},
                "commit": result.commit,
            }
        )
        return
    what = f"{result.files} file(s), {output.human_size(result.bytes)}"
    output.info(
        f"Downloaded {result.path} ({what}) from {result.url} at {result.commit[:10]} "
        f"to {result.out}."
    )


@click.command("import")
@click.argument("url")
@click.argument("path")
@rev_option
@out_option
@jobs_option
@click.option("-f", "--force", is_flag=True, help="Replace OUT if it exists (data and pointer).")
@json_option
@wait_for_lock_option
def import_cmd(
    url: str,
    path: str,
    rev: str | None,
    out: str | None,
    jobs: int | None,
    force: bool,
    as_json: bool,
    wait_for_lock: bool,
) -> None:
    """Download PATH of the repository at URL into OUT and track it with OUT.mlv.

    The pointer records the source (url, path, --rev, and the commit it resolved to), so
    `mlv update OUT` can move it later. The data is in the cache and checked out like
    `mlv checkout` does; OUT.mlv and the .gitignore line are staged in git.
    """
    repo = open_repo(wait_for_lock)
    try:
        result = imports_mod.import_(repo, url, path, rev, out, force, jobs)
    finally:
        repo.close()
    _finish(result, as_json, "import")


@click.command("update")
@click.argument("path", type=click.Path())
@click.option(
    "--rev", metavar="REV", help="Move to this revision of the source (recorded from now on)."
)
@jobs_option
@click.option("-f", "--force", is_flag=True, help="Discard changes to the data in the workspace.")
@json_option
@wait_for_lock_option
def update_cmd(
    path: str,
    rev: str | None,
    jobs: int | None,
    force: bool,
    as_json: bool,
    wait_for_lock: bool,
) -> None:
    """Resolve the source revision of an imported PATH again and move the data to it.

    Without --rev, the revision recorded at import (or the source's HEAD) is resolved
    again. Refuses when the data has changes not recorded in its pointer, unless --force.
    """
    repo = open_repo(wait_for_lock)
    try:
        result = imports_mod.update(repo, path, rev, force, jobs)
    finally:
        repo.close()
    _finish(result, as_json, "update")


def _finish(result: ImportResult, as_json: bool, action: str) -> None:
    if as_json:
        output.emit_json(_as_dict(result, action))
    else:
        _render(result, action)
    if not result.ok:
        sys.exit(1)


def _render(r: ImportResult, action: str) -> None:
    from mlv.cli.checkout import render_results

    at = f"{r.commit[:10]}" + (f" ({r.rev})" if r.rev else "")
    path = output.repo_path(r.path)  # source_path is in the source repository: as it is
    if action == "import":
        output.info(f"Imported {r.source_path} from {_shown(r.url)} at {at} to {path}.")
    elif not r.changed:
        output.info(f"{path} is already up to date ({_shown(r.url)} at {at}).")
    else:
        same = "; the data did not change" if r.old_hash == r.hash else ""
        output.info(f"Updated {path} to {at}, from {(r.old_commit or '')[:10]}{same}.")
    if not r.ok:
        render_results(r.checkout)


def _shown(url: str) -> str:
    from mlv.util.urls import redact

    return redact(url)


def _as_dict(r: ImportResult, action: str) -> dict[str, Any]:
    source: dict[str, Any] = {"url": r.url, "path": r.source_path}
    if r.rev is not None:
        source["rev"] = r.rev
    source["commit"] = r.commit
    return {
        "action": action,
        "path": r.path,
        "pointer": r.pointer,
        "source": source,
        "old_commit": r.old_commit,
        "changed": r.changed,
        "hash": r.hash,
        "ok": r.ok,
        "checkout": [vars(c) for c in r.checkout],
    }
