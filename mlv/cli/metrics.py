"""`mlv metrics show | diff | check`, and the table rendering that params and exp share."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from mlv.cli import output
from mlv.cli.common import json_option
from mlv.core.pipeline import checks as checks_mod
from mlv.core.pipeline import metrics as metrics_mod
from mlv.core.pipeline.revs import Rev, json_safe
from mlv.core.repo import Repo

MISSING_CELL = "-"

# ---- shared rendering ------------------------------------------------------------------


def md_option(f: Any) -> Any:
    return click.option("--md", "as_md", is_flag=True, help="Print a Markdown table.")(f)


def one_format(**flags: bool) -> None:
    """A usage error (exit 2) when more than one output format flag is given."""
    if sum(flags.values()) > 1:
        names = [f"--{name}" for name in flags]
        raise click.UsageError(f"choose one of {', '.join(names[:-1])} and {names[-1]}")


def revision(value: str | None, what: str) -> str | None:
    """A revision named on the command line; an empty one is a usage error (exit 2), not
    HEAD."""
    if value is not None and not value.strip():
        raise click.UsageError(f"{what} is empty: name a commit, branch or tag")
    return value


def emit_json(data: Any) -> None:
    """Strict JSON: NaN and infinite floats become the strings "NaN", "Infinity" and
    "-Infinity" (docs/metrics.md), never the bare tokens that JSON parsers reject."""
    output.emit_json(json_safe(data))


def cell(value: Any) -> str:
    """A value as a table shows it: numbers as Python prints them, None as '-'."""
    if value is None:
        return MISSING_CELL
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, ensure_ascii=False)


def signed(value: Any) -> str:
    if value is None:
        return MISSING_CELL
    return f"+{value!r}" if value > 0 else repr(value)


def percent(value: float | None) -> str:
    if value is None:
        return MISSING_CELL
    return f"{value * 100:+.2f}%"


def rev_label(rev: Rev) -> str:
    if rev.commit is None or rev.name == rev.commit:
        return rev.name if rev.commit is None else rev.commit[:7]
    return rev.name


def warn_errors(errors: dict[str, str], where: str = "") -> None:
    """One warning per file (relative to the root) that could not be read: the file as text
    output names it (relative to the current folder), then why."""
    for file, why in errors.items():
        output.warn(output.about(file, why) + where)


def path_cell(file: str, as_md: bool) -> str:
    """A path in a table: relative to the current folder, as text output names paths; in
    a Markdown table (pasted into a pull request) relative to the root, as `diff --md`."""
    return file if as_md else output.repo_path(file)


# ---- commands --------------------------------------------------------------------------


@click.group("metrics")
def metrics_group() -> None:
    """Show, compare and check the metrics files that stages declare (`metrics:`)."""


@metrics_group.command("show")
@click.option(
    "--rev", "rev_names", multiple=True, metavar="REV", help="Also show REV (repeatable)."
)
@click.option("-A", "--all-commits", is_flag=True, help="Also show every commit.")
@json_option
@md_option
def show_cmd(rev_names: tuple[str, ...], all_commits: bool, as_json: bool, as_md: bool) -> None:
    """Show the metrics of the workspace, and of revisions without checking them out.

    Metrics files are those of every stage's `metrics:` in mlv.yaml (as of each revision),
    JSON or YAML, shown by dotted key. --rev REV (repeatable) adds revisions; --all-commits
    adds every commit of every branch and tag.
    """
    if rev_names and all_commits:
        raise click.UsageError("--rev and --all-commits cannot be combined")
    one_format(json=as_json, md=as_md)
    for name in rev_names:
        revision(name, "--rev")
    repo = Repo.open()
    try:
        shown = metrics_mod.show(repo, rev_names, all_commits)
        notes = metrics_mod.ignored_notes(repo)
    finally:
        repo.close()
    for note in notes:
        output.warn(note)
    if as_json:
        emit_json(
            [
                {
                    "rev": s.rev.name,
                    "commit": s.rev.commit,
                    "metrics": s.snapshot.metrics,
                    "errors": s.snapshot.errors,
                }
                for s in shown
            ]
        )
        return
    for s in shown:
        label = "" if s.rev.commit is None else f" at {rev_label(s.rev)}"
        warn_errors(s.snapshot.errors, label)
    keys = list(
        dict.fromkeys(k for s in shown for values in s.snapshot.metrics.values() for k in values)
    )
    rows = [
        [rev_label(s.rev), path_cell(file, as_md), *[cell(values.get(k)) for k in keys]]
        for s in shown
        for file, values in s.snapshot.metrics.items()
    ]
    if not rows:
        if not as_md:
            output.info("No metrics: no stage in mlv.yaml declares `metrics:` files that exist.")
        return
    output.table(["Revision", "Path", *keys], rows, as_md)


@metrics_group.command("diff")
@click.argument("a_rev", metavar="[A]", required=False)
@click.argument("b_rev", metavar="[B]", required=False)
@click.option("--all", "everything", is_flag=True, help="Also list unchanged metrics.")
@json_option
@md_option
def diff_cmd(
    a_rev: str | None, b_rev: str | None, everything: bool, as_json: bool, as_md: bool
) -> None:
    """Compare metrics between revisions: old, new, change and relative change.

    No revision: HEAD against the workspace. One: A against the workspace. Two: A against
    B. Change is new - old; relative change is (new - old) / abs(old), for numbers only.
    """
    one_format(json=as_json, md=as_md)
    revision(a_rev, "revision A")
    revision(b_rev, "revision B")
    repo = Repo.open()
    try:
        result = metrics_mod.diff_metrics(repo, a_rev, b_rev, everything)
        notes = metrics_mod.ignored_notes(repo)
    finally:
        repo.close()
    for note in notes:
        output.warn(note)
    if as_json:
        emit_json(diff_dict(result, "metrics"))
        return
    _diff_warnings(result)
    if not result.changes:
        if not as_md:
            output.info("No metrics changed." if not everything else "No metrics.")
        return
    rows = [
        [
            path_cell(c.file, as_md),
            c.key,
            cell(c.old),
            cell(c.new),
            signed(c.change),
            percent(c.relative),
        ]
        for c in result.changes
    ]
    output.table(["Path", "Metric", "Old", "New", "Change", "Relative"], rows, as_md)


def _diff_warnings(result: metrics_mod.DiffResult) -> None:
    for side, rev in (("a", result.a), ("b", result.b)):
        label = "" if rev.commit is None else f" at {rev_label(rev)}"
        warn_errors(result.errors.get(side, {}), label)


def diff_dict(result: metrics_mod.DiffResult, kind: str) -> dict[str, Any]:
    by_file: dict[str, dict[str, Any]] = {}
    for c in result.changes:
        entry: dict[str, Any] = {"old": c.old, "new": c.new}
        if kind == "metrics":
            entry["change"] = c.change
            entry["relative"] = c.relative
        by_file.setdefault(c.file, {})[c.key] = entry
    return {
        "a": {"rev": result.a.name, "commit": result.a.commit},
        "b": {"rev": result.b.name, "commit": result.b.commit},
        kind: by_file,
        "errors": result.errors,
    }


@metrics_group.command("check")
@click.option(
    "--baseline",
    metavar="REV",
    help="The revision whose metrics baseline.NAME reads.  [default: HEAD]",
)
@json_option
@md_option
def check_cmd(baseline: str | None, as_json: bool, as_md: bool) -> None:
    """Check the workspace's metrics against the `checks:` of mlv.yaml.

    Each check is a condition such as `accuracy >= 0.9` or `loss <= baseline.loss * 1.05`,
    where baseline.NAME is metric NAME at --baseline (default HEAD). Prints each check with
    the values it read; exits 1 when any fails, 0 when all pass or there are none.
    """
    one_format(json=as_json, md=as_md)
    revision(baseline, "--baseline")
    repo = Repo.open()
    try:
        report = checks_mod.run(repo, baseline)
    finally:
        repo.close()
    if as_json:
        emit_json(
            {
                "baseline": (
                    {"rev": report.baseline.name, "commit": report.baseline.commit}
                    if report.baseline
                    else None
                ),
                "passed": report.passed,
                "checks": [
                    {
                        "check": r.check,
                        "passed": r.passed,
                        "values": r.values,
                        "reason": r.reason,
                    }
                    for r in report.results
                ],
                "errors": report.errors,
            }
        )
    else:
        warn_errors(report.errors)
        if not report.results:
            if not as_md:
                output.info("No checks: mlv.yaml declares no `checks:`.")
        else:
            rows = [
                [
                    r.check,
                    ", ".join(f"{n}={cell(v)}" for n, v in r.values.items()),
                    "pass" if r.passed else "FAIL",
                    r.reason or "",
                ]
                for r in report.results
            ]
            output.table(["Check", "Values", "Result", "Reason"], rows, as_md)
            failed = sum(not r.passed for r in report.results)
            if not as_md:
                base = ""
                if report.baseline is not None:
                    b = report.baseline
                    base = f" (baseline {b.name}" + (
                        f" = {b.commit[:7]})" if b.commit and b.name != b.commit else ")"
                    )
                output.info(
                    f"{len(report.results)} checks: {len(report.results) - failed} passed, "
                    f"{failed} failed{base}"
                )
    if not report.passed:
        sys.exit(1)
