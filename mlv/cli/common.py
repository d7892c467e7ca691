"""Options and helpers shared by commands."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

import click

from mlv.core.repo import Repo
from mlv.core.selection import Revisions
from mlv.errors import UsageError

F = TypeVar("F", bound=Callable[..., Any])


def wait_for_lock_option(f: F) -> F:
    return click.option(
        "--wait-for-lock",
        is_flag=True,
        help="Wait as long as it takes for another mlv writing in this repository.",
    )(f)


def json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON (documented shape).")(f)


def remote_option(help: str) -> Callable[[F], F]:
    """-r/--remote [NAME]: NAME may be left out (`mlv status -r`, `mlv push data -r`) for the
    default remote, as `dvc status -c` uses DVC's: the command sees "" then. A word after -r
    is always the remote's name, as in DVC (`-r NAME PATH` keeps working); one that names no
    remote but a path is refused with the command that meant it (`mlv status data -r`)."""
    return click.option(
        "-r",
        "--remote",
        metavar="[NAME]",
        is_flag=False,
        flag_value="",
        callback=_check_remote_word,
        help=help,
    )


def _check_remote_word(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    """Refuse `-r PATH` where PATH names no remote but a file or folder here: the user
    meant the default remote and that path (or mistyped a remote's name next to a file)."""
    import os

    if not value or not os.path.lexists(value):
        return value
    from mlv.core.remotes import default_name, remote_names

    names = remote_names()
    if value in names:
        return value
    default = default_name()
    command = ctx.command_path
    if default is not None:
        hint = f"`{command} {value} -r` uses the default remote '{default}'"
    elif names:
        first = sorted(names)[0]
        hint = f"name the remote before the path: `{command} -r {first} {value}`"
    else:
        hint = "no remote is configured: add one with `mlv remote add -d NAME URL`"
    raise UsageError(
        f"no remote named '{value}' ('{value}' is a path here: -r takes a remote's name)", hint
    )


def revision_options(keep: bool = False) -> Callable[[F], F]:
    """--rev, -a/--all-branches, -T/--all-tags, -A/--all-commits, handed to the command as
    one `revisions: Revisions` argument. keep: gc's wording (revisions whose objects it
    keeps) instead of the transfers' and verify's (revisions whose pointers it selects)."""
    also = "Also keep" if keep else "Also"
    rev = "git revision REV" if keep else "this git revision"
    options = [
        click.option(
            "--rev", "revs", multiple=True, metavar="REV", help=f"{also} {rev} (repeatable)."
        ),
        click.option(
            "--all-branches", "-a", is_flag=True, help=f"{also} the tips of all branches."
        ),
        click.option("--all-tags", "-T", is_flag=True, help=f"{also} all tags."),
        click.option("--all-commits", "-A", is_flag=True, help=f"{also} every commit."),
    ]

    def decorate(f: F) -> F:
        @functools.wraps(f)
        def command(
            *args: Any,
            revs: tuple[str, ...],
            all_branches: bool,
            all_tags: bool,
            all_commits: bool,
            **kwargs: Any,
        ) -> Any:
            revisions = Revisions(
                revs=tuple(revs),
                all_branches=all_branches,
                all_tags=all_tags,
                all_commits=all_commits,
            )
            return f(*args, revisions=revisions, **kwargs)

        decorated: Any = command
        for option in reversed(options):
            decorated = option(decorated)
        return cast(F, decorated)

    return decorate


def open_repo(wait_for_lock: bool = False) -> Repo:
    return Repo.open(lock_wait=None if wait_for_lock else 3.0)
