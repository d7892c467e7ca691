"""`mlv plots show | diff`: draw the plots mlv.yaml declares into one offline HTML page."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from typing import Any

import click

from mlv.cli import output
from mlv.cli.common import json_option
from mlv.cli.metrics import emit_json
from mlv.core.pipeline import plots as plots_mod
from mlv.core.pipeline.revs import Rev, workspace_rev
from mlv.core.repo import Repo
from mlv.errors import UsageError
from mlv.util import localfs

DEFAULT_DIR = "mlv_plots"  # DVC's is dvc_plots
IGNORE_ALL = b"# written by mlv plots: the page is output, not source\n*\n"


def out_option(f: Any) -> Any:
    return click.option(
        "-o",
        "--out",
        "out_dir",
        metavar="DIR",
        default=DEFAULT_DIR,
        show_default=True,
        help="Folder to write index.html (and static/ for images) into.",
    )(f)


def open_option(f: Any) -> Any:
    return click.option(
        "--open", "open_page", is_flag=True, help="Open the page in a web browser too."
    )(f)


@click.group("plots")
def plots_group() -> None:
    """Draw the plots that mlv.yaml declares (`plots:`) into an HTML page."""


@plots_group.command("show")
@click.argument("targets", nargs=-1, metavar="[TARGETS]...")
@out_option
@open_option
@json_option
def show_cmd(targets: tuple[str, ...], out_dir: str, open_page: bool, as_json: bool) -> None:
    """Draw the workspace's plots into DIR/index.html and print its path.

    Plots are the files of stages' `plots:` and of the top-level `plots:` in mlv.yaml:
    JSON, YAML, CSV and TSV data drawn as linear, scatter, bar or confusion plots; PNG, JPEG,
    GIF and SVG images shown as they are. TARGETS limit the page to those plots (ids or
    files; a file mlv.yaml does not declare is drawn with default properties). The page
    needs no network and runs no script.
    """
    _run(None, targets, out_dir, open_page, as_json)


@plots_group.command("diff")
@click.argument("revisions", nargs=-1, metavar="[REVISIONS]...")
@click.option(
    "--targets",
    "targets",
    multiple=True,
    metavar="TARGET",
    help="Only this plot id or file (repeatable).",
)
@out_option
@open_option
@json_option
def diff_cmd(
    revisions: tuple[str, ...],
    targets: tuple[str, ...],
    out_dir: str,
    open_page: bool,
    as_json: bool,
) -> None:
    """Draw the plots of revisions over each other into DIR/index.html.

    No revision: HEAD and the workspace. One: that revision and the workspace. More: those
    revisions. Each revision is read with its own mlv.yaml, from git and the cache, without
    checking anything out.
    """
    _run(revisions, targets, out_dir, open_page, as_json)


def _run(
    revisions: Sequence[str] | None,
    targets: Sequence[str],
    out_dir: str,
    open_page: bool,
    as_json: bool,
) -> None:
    """revisions None: the workspace alone (`show`); else `diff`'s revisions."""
    if open_page and as_json:
        raise click.UsageError("--open draws a page, --json prints data: choose one")
    repo = Repo.open()
    folder = None if as_json else os.path.abspath(out_dir)
    try:
        made = [] if folder is None else _prepare(out_dir, folder, repo.root)
        if revisions is None:
            rev_list = [workspace_rev()]
        else:
            rev_list = plots_mod.diff_revisions(repo, revisions)
        static = None if folder is None else os.path.join(folder, "static")
        if static is not None and not os.path.isdir(static):
            os.mkdir(static)
            made.append(static)
        elif static is not None and _inside(static, repo.root):
            _no_link(static, repo.root)
        result = plots_mod.collect(repo, rev_list, targets, image_dir=static)
    finally:
        repo.close()
    if as_json:
        emit_json(as_dict(result))
        return
    for e in result.errors:
        where = "" if e.rev.commit is None else f" at {e.rev.name}"
        output.warn(_one_line(output.about(e.file, e.why) + where))
    if not any(p.series or p.images for p in result.plots):
        output.warn(
            "no plots to draw: declare data or image files under `plots:` in mlv.yaml "
            "(docs/pipelines.md, Plots), and run `mlv repro` to write them"
        )
        for path in reversed(made):  # leave no empty folder behind
            with contextlib.suppress(OSError):
                os.rmdir(path)
        return
    from mlv.cli import plots_page

    assert folder is not None
    if made and made[0] == folder and _inside(folder, repo.root):
        # a page is output, not source: git ignores a folder mlv made for it, as venv does
        localfs.write_bytes_atomic(os.path.join(folder, ".gitignore"), IGNORE_ALL)
    index = os.path.join(folder, "index.html")
    localfs.write_bytes_atomic(index, plots_page.page(result).encode("utf-8", "replace"))
    output.out(output.path(index))
    if open_page:
        _open(index)


def _open(index: str) -> None:
    """Show the page in the user's browser ($BROWSER when set, as Python's webbrowser
    finds one); without one, say so and where the page is."""
    import webbrowser
    from pathlib import Path

    try:
        opened = webbrowser.open(Path(index).as_uri())
    except webbrowser.Error:
        opened = False
    if not opened:
        output.warn(f"no web browser found to open the page: open {output.path(index)} in one")


def _one_line(text: str) -> str:
    """text with its control characters escaped (a file name in it may hold a newline)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _prepare(out_dir: str, folder: str, root: str) -> list[str]:
    """Create the page's folder before anything is read (a folder that cannot be written
    fails at once, not after reading history); returns the folders made, outermost first.
    A folder inside the repository is refused when a symbolic link leads to it: a clone
    may hold `mlv_plots -> /somewhere/else`, and the page must not be written there."""
    if not out_dir.strip():
        raise UsageError("--out is empty", "name a folder, e.g. -o mlv_plots")
    if _inside(folder, root):
        step = root
        for part in os.path.relpath(folder, root).split(os.sep):
            step = os.path.join(step, part)
            _no_link(step, root)
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise UsageError(f"{out_dir} is not a folder", "name a folder for the page with -o DIR")
    made: list[str] = []
    missing = folder
    while not os.path.exists(missing):
        made.insert(0, missing)
        missing = os.path.dirname(missing)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise UsageError(
            f"cannot create {out_dir}: {e.strerror}", "name a folder you can write with -o DIR"
        ) from None
    return made


def _inside(path: str, root: str) -> bool:
    return os.path.commonpath([path, root]) == root


def _no_link(path: str, root: str) -> None:
    if os.path.islink(path):
        rel = os.path.relpath(path, root).replace(os.sep, "/")
        raise UsageError(
            f"{output.repo_path(rel)} is a symbolic link: mlv writes no page through one inside "
            "the repository (it may lead out of it)",
            "remove the link, or name another folder with -o DIR",
        )


def as_dict(result: plots_mod.Result) -> dict[str, Any]:
    """The --json shape (docs/commands.md, mlv plots show)."""

    def rev(r: Rev) -> dict[str, Any]:
        return {"rev": r.name, "commit": r.commit}

    return {
        "revisions": [rev(r) for r in result.revs],
        "plots": [
            {
                "id": p.id,
                "template": p.template,
                "title": p.title,
                "x_label": p.x_label,
                "y_label": p.y_label,
                "series": [
                    {
                        **rev(s.rev),
                        "file": s.file,
                        "x": s.x,
                        "y": s.y,
                        "points": [list(pt) for pt in s.points],
                        "skipped": s.skipped,
                    }
                    for s in p.series
                ],
                "images": [{**rev(i.rev), "file": i.file} for i in p.images],
            }
            for p in result.plots
        ],
        "errors": [{**rev(e.rev), "file": e.file, "error": e.why} for e in result.errors],
    }
