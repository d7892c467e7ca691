"""`mlv params diff`."""

from __future__ import annotations

import click

from mlv.cli import output
from mlv.cli.common import json_option
from mlv.cli.metrics import (
    cell,
    diff_dict,
    emit_json,
    md_option,
    one_format,
    path_cell,
    rev_label,
    revision,
    warn_errors,
)
from mlv.core.pipeline import metrics as metrics_mod
from mlv.core.repo import Repo


@click.group("params")
def params_group() -> None:
    """Compare the parameters that stages depend on (`params:` in mlv.yaml)."""


@params_group.command("diff")
@click.argument("a_rev", metavar="[A]", required=False)
@click.argument("b_rev", metavar="[B]", required=False)
@click.option("--all", "everything", is_flag=True, help="Also list unchanged params.")
@json_option
@md_option
def diff_cmd(
    a_rev: str | None, b_rev: str | None, everything: bool, as_json: bool, as_md: bool
) -> None:
    """Show parameters changed between revisions, without checking anything out.

    No revision: HEAD against the workspace. One: A against the workspace. Two: A against
    B. Params are the keys every stage lists in `params:` (a key naming a mapping stands
    for each value below it); with no stage listing any, every key of params.yaml.
    """
    one_format(json=as_json, md=as_md)
    revision(a_rev, "revision A")
    revision(b_rev, "revision B")
    repo = Repo.open()
    try:
        result = metrics_mod.diff_params(repo, a_rev, b_rev, everything)
    finally:
        repo.close()
    if as_json:
        emit_json(diff_dict(result, "params"))
        return
    for side, rev in (("a", result.a), ("b", result.b)):
        label = "" if rev.commit is None else f" at {rev_label(rev)}"
        warn_errors(result.errors.get(side, {}), label)
    if not result.changes:
        if not as_md:
            output.info("No params changed." if not everything else "No params.")
        return
    rows = [[path_cell(c.file, as_md), c.key, cell(c.old), cell(c.new)] for c in result.changes]
    output.table(["Path", "Param", "Old", "New"], rows, as_md)
