"""`mlv repro`."""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import click

from mlv.cli import output
from mlv.cli.common import wait_for_lock_option
from mlv.errors import EXIT_FAILURE

F = TypeVar("F", bound=Callable[..., Any])
_LOCK = threading.Lock()


def _locked(method: F) -> F:
    """With -j N, worker threads report too: one event's lines at a time."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return method(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


class _Printer:
    """repro.Events as lines on stdout; flushed before each command, whose own output
    goes straight to the terminal (or the CI log) as it comes. With -j N, the commands'
    lines come through output(), each prefixed with its stage's name (`[train] ...`), and
    so does each `> command` line."""

    def __init__(self, parallel: bool = False) -> None:
        self.parallel = parallel

    @_locked
    def up_to_date(self, name: str) -> None:
        output.info(f"Stage '{name}' is up to date")

    @_locked
    def starting(self, name: str, reasons: list[str]) -> None:
        output.info(f"Running stage '{name}' ({_why(reasons)})")

    @_locked
    def command(self, name: str, cmd: str) -> None:
        output.info(f"[{name}] > {cmd}" if self.parallel else f"> {cmd}")
        output.flush()

    @_locked
    def restored(self, name: str, reasons: list[str], run_cache: bool) -> None:
        where = "the run cache" if run_cache else "the cache, as mlv.lock records it"
        output.info(f"Restored stage '{name}' from {where} ({_why(reasons)})")

    @_locked
    def updated(self, name: str, reasons: list[str]) -> None:
        output.info(
            f"Updated stage '{name}' in mlv.lock; its outputs were in place ({_why(reasons)})"
        )

    @_locked
    def would_update(self, name: str, reasons: list[str]) -> None:
        output.info(
            f"Would update stage '{name}' in mlv.lock; its outputs are in place ({_why(reasons)})"
        )

    @_locked
    def would_run(self, name: str, reasons: list[str], cmds: tuple[str, ...]) -> None:
        output.info(f"Would run stage '{name}' ({_why(reasons)})")
        for cmd in cmds:
            output.info(f"> {cmd}")

    @_locked
    def would_restore(self, name: str, reasons: list[str], run_cache: bool) -> None:
        where = "the run cache" if run_cache else "the cache, as mlv.lock records it"
        output.info(f"Would restore stage '{name}' from {where} ({_why(reasons)})")

    @_locked
    def note(self, line: str) -> None:
        output.warn(line)

    @_locked
    def frozen(self, name: str) -> None:
        output.info(f"Stage '{name}' is frozen; its outputs are as mlv.lock records")

    @_locked
    def output(self, name: str, line: bytes, err: bool) -> None:
        output.raw_line(f"[{name}] ", line, err)

    @_locked
    def recorded_data(self, path: str, pointer: str, dry: bool) -> None:
        where = f"{output.repo_path(path)} in {output.repo_path(pointer)}"
        if dry:
            output.info(f"Would record {where}: it changed (as `mlv commit` would)")
        else:
            output.info(f"Recorded {where}: it changed (as `mlv commit` would)")


def _why(reasons: list[str]) -> str:
    shown = reasons[:3]
    more = len(reasons) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


@click.command("repro")
@click.argument("stages", nargs=-1, metavar="[STAGE]...")
@click.option("-f", "--force", is_flag=True, help="Run the stages even if nothing changed.")
@click.option("--dry", is_flag=True, help="Say what would run, and why; run nothing.")
@click.option(
    "-k", "--keep-going", is_flag=True, help="After a failure, run what does not depend on it."
)
@click.option("--downstream", is_flag=True, help="The named stages and what depends on them.")
@click.option(
    "-s", "--single-item", is_flag=True, help="Only the named stages, not what they need."
)
@click.option("--no-run-cache", is_flag=True, help="Run commands even when a recorded run matches.")
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    metavar="N",
    default=1,
    show_default=True,
    help="Run up to N independent stages at once (their output lines prefixed [STAGE]).",
)
@wait_for_lock_option
def repro_cmd(
    stages: tuple[str, ...],
    force: bool,
    dry: bool,
    keep_going: bool,
    downstream: bool,
    single_item: bool,
    no_run_cache: bool,
    jobs: int,
    wait_for_lock: bool,
) -> None:
    """Bring the pipeline's outputs up to date with its code, data and params.

    Runs, in dependency order, each stage (all of them, or the STAGEs named and what they
    need) whose cmd, deps, params or outs differ from mlv.lock. A stage run before with
    exactly these inputs is restored from the run cache instead. Outputs go into the
    cache and mlv.lock is updated (and staged in git) after each stage.
    """
    from mlv.core.pipeline import repro
    from mlv.core.repo import Repo

    repo = Repo.open(lock_wait=None if wait_for_lock else 3.0)
    options = repro.Options(
        force=force,
        dry=dry,
        keep_going=keep_going,
        downstream=downstream,
        run_cache=not no_run_cache,
        single=single_item,
        jobs=jobs,
    )
    try:
        result = repro.repro(repo, list(stages), options, _Printer(parallel=jobs > 1 and not dry))
    finally:
        repo.close()
    for s in result.stages:
        if s.status == repro.FAILED:
            output.error(s.error or f"stage '{s.name}' failed")
        elif s.status == repro.SKIPPED:
            output.error(f"stage '{s.name}' not run: {s.error}")
    parts = []
    if dry:
        parts.append(f"{result.count(repro.WOULD_RUN)} would run")
        restorable = result.count(repro.WOULD_RESTORE)
        if restorable:
            parts.append(f"{restorable} would be restored")
        updatable = result.count(repro.WOULD_UPDATE)
        if updatable:
            parts.append(f"{updatable} would be updated")
    else:
        parts.append(f"{result.count(repro.RAN)} ran")
        restored = result.count(repro.RESTORED)
        if restored:
            parts.append(f"{restored} restored")
        updated = result.count(repro.UPDATED)
        if updated:
            parts.append(f"{updated} updated")
    parts.append(f"{result.count(repro.UP_TO_DATE)} up to date")
    failed = result.count(repro.FAILED)
    if failed:
        parts.append(f"{failed} failed")
    not_run = result.count(repro.SKIPPED) + result.count(repro.NOT_RUN)
    if not_run:
        parts.append(f"{not_run} not run")
    output.info("Stages: " + ", ".join(parts) + ".")
    if result.lock_as_committed:
        output.info("mlv.lock updated and staged: it is again as the last commit records it.")
    elif result.lock_written:
        output.info("mlv.lock updated and staged; `git commit` records this run.")
    if not result.ok:
        sys.exit(EXIT_FAILURE)
