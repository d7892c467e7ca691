"""`mlv install [--uninstall]`: the git hooks."""

from __future__ import annotations

import os

import click

from mlv.cli import output
from mlv.core import hooks


@click.command("install")
@click.option(
    "--uninstall", is_flag=True, help="Remove mlv's hooks and put back the ones they replaced."
)
def install_cmd(uninstall: bool) -> None:
    """Install git hooks: post-checkout runs `mlv checkout`, pre-push runs `mlv push` for the
    commits being pushed, pre-commit warns about data changed without `mlv commit`.

    Hooks already there are kept and run first. Running it again changes nothing.
    `git push --no-verify` skips the data push once.
    """
    if uninstall:
        _render_uninstall(hooks.uninstall(os.getcwd()))
    else:
        _render_install(hooks.install(os.getcwd()))


def _where(report: hooks.HooksReport) -> str:
    rel = os.path.relpath(report.hooks_dir, report.root)
    return report.hooks_dir if rel.startswith(os.pardir) else rel.replace(os.sep, "/")


def _names(report: hooks.HooksReport, *actions: str) -> list[str]:
    return [a.hook for a in report.actions if a.action in actions]


def _render_install(report: hooks.HooksReport) -> None:
    where = _where(report)
    if not report.changed:
        output.info(f"mlv git hooks are already installed in {where}.")
        return
    written = _names(report, hooks.INSTALLED, hooks.UPDATED, hooks.CHAINED)
    output.info(f"Installed git hooks in {where}: {', '.join(written)}.")
    for hook in _names(report, hooks.CHAINED):
        output.info(
            f"Kept the existing {hook} hook: it runs first, from {where}/{hook}"
            f"{hooks.SAVED_SUFFIX}."
        )
    output.info(
        "git checkout now checks out the data, git push pushes it "
        "(`git push --no-verify` skips that)."
    )


def _render_uninstall(report: hooks.HooksReport) -> None:
    where = _where(report)
    if not report.changed:
        output.info(f"mlv git hooks are not installed in {where}.")
        return
    removed = _names(report, hooks.REMOVED, hooks.RESTORED)
    output.info(f"Removed mlv git hooks from {where}: {', '.join(removed)}.")
    for hook in _names(report, hooks.RESTORED):
        output.info(f"Restored the earlier {hook} hook.")
