"""`mlv stage add` and `mlv stage list`."""

from __future__ import annotations

import os
import shlex
from typing import Any

import click

from mlv.cli import output
from mlv.cli.common import json_option
from mlv.errors import UsageError


@click.group("stage")
def stage_group() -> None:
    """Define the stages of the pipeline (mlv.yaml)."""


def _params(raw: tuple[str, ...]) -> list[Any]:
    """`-p lr` (params.yaml), `-p train.lr,train.epochs`, `-p other.yaml:seed,split` and
    `-p other.yaml:` (every key of the file) into mlv.yaml's params list."""
    entries: list[Any] = []
    by_file: dict[str, list[str]] = {}
    for item in raw:
        file, sep, keys = item.rpartition(":")
        names = [k.strip() for k in keys.split(",") if k.strip()]
        if not sep:
            entries.extend(names)
            continue
        if not file:
            raise UsageError(f"-p {item}: expected KEY, FILE:KEY[,KEY...] or FILE:")
        if file not in by_file:
            by_file[file] = []
            entries.append({file: by_file[file]})
        by_file[file].extend(names)
    return entries


def _command(words: tuple[str, ...]) -> str:
    """One word is the command as typed (quotes, pipes and all); several are joined with
    quoting where needed, the way the shell received them."""
    if len(words) == 1:
        return words[0]
    return shlex.join(words)


@stage_group.command("add")
@click.argument("name")
@click.option("-d", "--deps", "deps", multiple=True, metavar="PATH", help="A file or folder read.")
@click.option("-o", "--outs", "outs", multiple=True, metavar="PATH", help="An output mlv caches.")
@click.option(
    "-O",
    "--outs-no-cache",
    "outs_no_cache",
    multiple=True,
    metavar="PATH",
    help="An output git tracks (mlv only records its hash).",
)
@click.option(
    "--outs-persist",
    "outs_persist",
    multiple=True,
    metavar="PATH",
    help="A cached output not deleted before the stage runs.",
)
@click.option(
    "-p",
    "--params",
    "params",
    multiple=True,
    metavar="[FILE:]KEY,...",
    help="Parameters read (params.yaml unless FILE: is given).",
)
@click.option(
    "-M", "--metrics", "metrics", multiple=True, metavar="PATH", help="A metrics file written."
)
@click.option("-w", "--wdir", metavar="DIR", help="Run the command (and read paths) in DIR.")
@click.option("--desc", metavar="TEXT", help="A description shown by `mlv stage list`.")
@click.option("-f", "--force", is_flag=True, help="Replace a stage of the same name.")
@click.argument("command", nargs=-1, required=True)
def add_cmd(
    name: str,
    deps: tuple[str, ...],
    outs: tuple[str, ...],
    outs_no_cache: tuple[str, ...],
    outs_persist: tuple[str, ...],
    params: tuple[str, ...],
    metrics: tuple[str, ...],
    wdir: str | None,
    desc: str | None,
    force: bool,
    command: tuple[str, ...],
) -> None:
    """Add stage NAME to mlv.yaml: `mlv stage add train -d data -o model.bin -- python t.py`.

    Paths are relative to the stage's wdir: --wdir, else the folder you run this in. The
    command runs there, through /bin/sh, when `mlv repro` finds the stage out of date.
    Nothing runs now. In a templated mlv.yaml (vars, foreach, matrix) the templates are
    kept as written; the new stage is a plain one (`${...}` in it is interpolated).
    """
    from mlv.core.pipeline import dag, spec
    from mlv.core.pipeline.repro import check_outs_inside, tracked_paths
    from mlv.core.repo import Repo

    if not spec.valid_name(name):
        raise UsageError(f"invalid stage name {name!r}", spec.NAME_HINT)
    repo = Repo.open()
    try:
        if wdir is None:
            wdir = repo.rel(os.getcwd()) or "."
        else:
            wdir = repo.rel(os.path.join(os.getcwd(), wdir)) or "."
        body: dict[str, Any] = {"cmd": _command(command)}
        if desc:
            body["desc"] = desc
        if wdir != ".":
            body["wdir"] = wdir
        if deps:
            body["deps"] = list(deps)
        if params:
            body["params"] = _params(params)
        out_list: list[Any] = list(outs)
        out_list += [{p: {"cache": False}} for p in outs_no_cache]
        out_list += [{p: {"persist": True}} for p in outs_persist]
        if out_list:
            body["outs"] = out_list
        if metrics:
            body["metrics"] = list(metrics)

        def check(pipeline: spec.Pipeline) -> None:
            dag.build(pipeline, tracked_paths(repo))
            check_outs_inside(repo.root, pipeline.stages[name])

        with repo.lock():
            stage = spec.add_stage(repo.root, name, body, force, check)
            repo.stage([spec.PIPELINE_FILE])
    finally:
        repo.close()
    output.info(f"Added stage '{stage.name}' to {output.repo_path(spec.PIPELINE_FILE)}.")
    output.info(f"Run `mlv repro {stage.name}` to run it.")


@stage_group.command("list")
@json_option
def list_cmd(as_json: bool) -> None:
    """List the stages of mlv.yaml with what they read and write, in run order."""
    from mlv.core.pipeline.repro import load_graph
    from mlv.core.repo import Repo

    repo = Repo.open()
    try:
        graph = load_graph(repo)
    finally:
        repo.close()
    stages = [graph.stage(n) for n in graph.order]
    if as_json:
        output.emit_json(
            [
                {
                    "name": s.name,
                    "cmd": list(s.cmd),
                    "wdir": s.wdir or ".",
                    "deps": list(s.deps),
                    "params": {p.file: list(p.keys) for p in s.params},
                    "outs": [
                        {"path": o.path, "cache": o.cache, "persist": o.persist} for o in s.outs
                    ],
                    "metrics": list(s.metrics),
                    "needs": graph.parents[s.name],
                    "desc": s.desc,
                }
                for s in stages
            ]
        )
        return
    rows = []
    for s in stages:
        what = s.desc or s.command.replace("\n", "; ")
        deps = ", ".join(output.repo_path(p) for p in s.deps) or "-"
        outs = ", ".join(output.repo_path(p) for p in s.out_paths) or "-"
        rows.append([s.name, what, deps, outs])
    output.table(["Stage", "Command", "Deps", "Outs"], rows)
