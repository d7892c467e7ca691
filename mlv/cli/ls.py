"""`mlv ls` and `mlv du`: what a revision holds at a path, read from pointers and trees."""

from __future__ import annotations

import os

import click

from mlv.cli import output
from mlv.cli.common import json_option
from mlv.core import view as view_mod
from mlv.core.repo import Repo
from mlv.core.view import Node, View
from mlv.errors import UsageError

rev_option = click.option(
    "--rev", metavar="REV", help="A commit, branch or tag (default: the workspace's pointers)."
)
remote_option = click.option(
    "-r",
    "--remote",
    metavar="NAME",
    help="Fetch trees the cache lacks from NAME (default: the default remote).",
)


def _open(rev: str | None, remote: str | None) -> tuple[Repo, View]:
    repo = Repo.open()
    try:
        return repo, View.of_repo(repo, rev, remote)
    except BaseException:
        repo.close()
        raise


def _rel(repo: Repo, path: str | None) -> str:
    return repo.rel(path) if path else repo.rel(os.curdir)


@click.command("ls")
@click.argument("path", required=False, type=click.Path())
@rev_option
@click.option("-R", "--recursive", is_flag=True, help="List everything below PATH.")
@click.option(
    "-l",
    "--long",
    "long_",
    is_flag=True,
    help="Show origin (mlv, git, folder), size, files and hash.",
)
@click.option("--data-only", is_flag=True, help="Only data tracked by mlv, not git's files.")
@remote_option
@json_option
def ls_cmd(
    path: str | None,
    rev: str | None,
    recursive: bool,
    long_: bool,
    data_only: bool,
    remote: str | None,
    as_json: bool,
) -> None:
    """List tracked data (and git's files) at PATH as of a revision, without checking out.

    Directories end with "/". Inside a tracked directory the entries come from its tree
    objects (fetched from the remote when the cache lacks them).
    """
    repo, view = _open(rev, remote)
    try:
        where = _rel(repo, path)
        nodes = list(view.walk(where)) if recursive else view.ls(where)
    finally:
        view.close()
        repo.close()
    if data_only:
        nodes = [n for n in nodes if n.tracked != view_mod.GIT]
    if as_json:
        output.emit_json([_as_dict(n) for n in nodes])
        return
    base = where + "/" if where else ""
    lines = []
    for n in nodes:
        slash = "/" if n.is_dir else ""
        if n.path.startswith(base):  # names below PATH, as ls prints them
            shown = output.path(n.path[len(base) :] + slash)
        else:
            shown = output.repo_path(n.path + slash)
        if long_:
            size = output.human_size(n.size) if n.size is not None else "-"
            files = str(n.files) if n.files is not None else "-"
            lines.append(f"{n.tracked:<6} {size:>10} {files:>8}  {n.hash or '-':<39} {shown}")
        else:
            lines.append(shown)
    if lines:
        output.out("\n".join(lines))  # one write: a 20,000-line listing in one go


def _as_dict(n: Node) -> dict[str, object]:
    return {
        "path": n.path,
        "kind": n.kind,
        "tracked": n.tracked,
        "size": n.size,
        "files": n.files,
        "hash": n.hash,
    }


@click.command("du")
@click.argument("path", required=False, type=click.Path())
@rev_option
@click.option("-s", "--summarize", is_flag=True, help="Only the total of PATH.")
@click.option(
    "-r",
    "--trees-from",
    "trees_from",
    metavar="NAME",
    help="Fetch trees the cache lacks from NAME (default: the default remote).",
)
@click.option(
    "--remote",
    metavar="NAME",
    is_flag=False,
    flag_value="",
    help="Instead: what remote NAME holds, logical and stored bytes; NAME defaults to core.remote.",
)
@json_option
def du_cmd(
    path: str | None,
    rev: str | None,
    summarize: bool,
    trees_from: str | None,
    remote: str | None,
    as_json: bool,
) -> None:
    """Show the size of tracked data at PATH as of a revision: each entry, then the total.

    Sizes come from pointers and trees (no data is read); git's own files count too.
    With --remote NAME: the objects the remote holds, their whole size and what they take
    there after chunk deduplication and compression, from its indexes (nothing downloaded).
    """
    if remote is not None:
        if path is not None or rev is not None or summarize or trees_from is not None:
            raise UsageError(
                "du --remote counts the whole remote: it takes no PATH, --rev, -s or -r",
                "run `mlv du --remote NAME` alone",
            )
        _remote_usage(remote or None, as_json)
        return
    repo, view = _open(rev, trees_from)
    try:
        where = _rel(repo, path)
        top = view.info(where)
        children = [] if summarize or not top.is_dir else view.ls(where)
        rows = [(c, _usage(view, c)) for c in children]
        total = _usage(view, top)
    finally:
        view.close()
        repo.close()
    if as_json:
        output.emit_json(
            {
                "path": top.path,
                "size": total[0],
                "files": total[1],
                "entries": [
                    {"path": c.path, "kind": c.kind, "size": s, "files": f} for c, (s, f) in rows
                ],
            }
        )
        return
    for c, (size, files) in rows:
        shown = output.repo_path(c.path + ("/" if c.is_dir else ""))
        output.out(f"{output.human_size(size):>10} {files:>9}  {shown}")
    shown = output.repo_path(top.path or ".")
    output.out(f"{output.human_size(total[0]):>10} {total[1]:>9}  {shown} (total)")


def _remote_usage(name: str | None, as_json: bool) -> None:
    repo = Repo.open()
    try:
        found = view_mod.remote_usage(repo, name)
    finally:
        repo.close()
    u = found.usage
    for line in u.warnings:
        output.warn(f"remote '{found.name}': {line}")
    if as_json:
        output.emit_json(
            {
                "remote": found.name,
                "url": found.url,
                "objects": u.objects,
                "chunked": u.chunked,
                "chunks": u.chunks,
                "loose": u.loose,
                "logical": u.logical,
                "stored": u.stored,
                "saved": u.saved,
                "ratio": round(u.ratio, 4),
                "compressed": u.compressed,
                "packs": u.packs,
                "pack_bytes": u.pack_bytes,
            }
        )
        return
    saved = (
        f"dedup and compression saved {output.human_size(u.saved)}"
        if u.saved >= 0
        else f"{output.human_size(-u.saved)} more than the data (chunk lists, no savings)"
    )
    output.out(
        f"remote '{found.name}': {u.objects:,} objects, {output.human_size(u.logical)} logical, "
        f"{output.human_size(u.stored)} stored ({u.ratio:.0%}): {saved}"
    )


def _usage(view: View, node: Node) -> tuple[int, int]:
    """(bytes, files) of a node: tracked data from its pointer or tree, folders summed."""
    if node.tracked == view_mod.FOLDER:
        size = files = 0
        for child in view.ls(node.path):
            s, f = _usage(view, child)
            size += s
            files += f
        return size, files
    if node.is_dir:
        return node.size or 0, node.files or 0
    return node.size or 0, 1
