from __future__ import annotations

import sys

import click

from mlv.cli import output
from mlv.cli.add import _as_dict
from mlv.cli.common import json_option, open_repo, wait_for_lock_option
from mlv.core import add as add_mod


@click.command("commit")
@click.argument("paths", nargs=-1, type=click.Path())
@json_option
@wait_for_lock_option
def commit_cmd(paths: tuple[str, ...], as_json: bool, wait_for_lock: bool) -> None:
    """Record workspace changes of tracked paths (all when none are named) into their
    pointers; an edited stage output records its stage into mlv.lock (as dvc commit)."""
    repo = open_repo(wait_for_lock)
    failed: add_mod.CommitError | None = None
    try:
        with output.TerminalProgress() as progress:
            results = add_mod.commit(repo, list(paths), progress)
    except add_mod.CommitError as e:  # some were recorded: say so, then what failed
        failed, results = e, e.recorded
    finally:
        repo.close()
    if as_json:
        output.emit_json([_as_dict(r) for r in results])
    else:
        _render(results, failed is None)
    if failed is not None:
        for problem in failed.errors:
            output.error(problem.text())
        sys.exit(failed.exit_code)


def _render(results: list[add_mod.Tracked], done: bool) -> None:
    changed = [r for r in results if r.changed]
    for r in changed:
        output.info(f"Recorded {output.repo_path(r.path)} -> {output.repo_path(r.pointer)}")
    filled = [output.repo_path(r.path) for r in results if r.filled]
    if filled and not changed:
        output.info(
            f"Stored the objects missing from the cache for {', '.join(filled)}; "
            "pointers unchanged."
        )
    elif filled:
        output.info(f"Stored the objects missing from the cache for {', '.join(filled)}.")
    elif not changed and done:
        output.info("Nothing changed.")
