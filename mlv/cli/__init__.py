"""The command line: the commands, the global flags and the error boundary.

Commands are imported only when invoked, so `mlv --help` and `mlv status` do not pay for
modules they do not use. click (the group, the options, the help: mlv.cli.app) is not
imported for a plain `mlv status [--json] [--check]`, the command run most often and the one
whose whole time is a stat per file plus start-up: click costs ~15 ms of its ~0.1 s; nor for a
plain `mlv checkout [PATHS]` (mlv.cli.checkout_report), whose hard-link run of 20,000 files
is measured against `cp -al`'s ~0.3 s. Every
error a user can cause is an MlvError, printed as one line; anything else is a bug, shown
with a traceback under -v.
"""

from __future__ import annotations

import sys
from typing import Any

from mlv.cli import output
from mlv.util import stdfds

# name -> (module, attribute, short help). Order is the order shown in --help.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "init": ("mlv.cli.init", "init_cmd", "Create .mlv/ at the root of this git repository."),
    "add": ("mlv.cli.add", "add_cmd", "Track files or directories: hash, cache, write PATH.mlv."),
    "status": ("mlv.cli.status", "status_cmd", "Compare tracked data with its pointers."),
    "verify": (
        "mlv.cli.verify",
        "verify_cmd",
        "Prove tracked data is intact: workspace, cache, remote.",
    ),
    "commit": ("mlv.cli.commit", "commit_cmd", "Record workspace changes into the pointers."),
    "checkout": ("mlv.cli.checkout", "checkout_cmd", "Make the workspace match the pointers."),
    "unprotect": ("mlv.cli.unprotect", "unprotect_cmd", "Make linked files writable copies."),
    "rm": ("mlv.cli.rm", "rm_cmd", "Stop tracking a path (keeps the data unless --outs)."),
    "mv": ("mlv.cli.mv", "mv_cmd", "Move tracked data and its pointer together."),
    "remote": ("mlv.cli.remote", "remote_group", "Manage remote storage (folder, S3, SSH...)."),
    "push": ("mlv.cli.transfer", "push_cmd", "Upload tracked data to a remote."),
    "fetch": (
        "mlv.cli.transfer",
        "fetch_cmd",
        "Download tracked data from a remote into the cache.",
    ),
    "pull": ("mlv.cli.transfer", "pull_cmd", "Fetch, then check out."),
    "diff": ("mlv.cli.diff", "diff_cmd", "Show tracked files changed between revisions."),
    "ls": ("mlv.cli.ls", "ls_cmd", "List tracked data as of any revision."),
    "du": ("mlv.cli.ls", "du_cmd", "Show the size of tracked data as of any revision."),
    "log": ("mlv.cli.log", "log_cmd", "Show the commits that changed a tracked path."),
    "get": ("mlv.cli.get", "get_cmd", "Download tracked data from another repository."),
    "import": (
        "mlv.cli.get",
        "import_cmd",
        "Download data from another repository and track its source.",
    ),
    "update": (
        "mlv.cli.get",
        "update_cmd",
        "Move an imported path to another revision of its source.",
    ),
    "gc": ("mlv.cli.gc", "gc_cmd", "Delete cache (or remote) objects no kept revision needs."),
    "install": (
        "mlv.cli.install",
        "install_cmd",
        "Install git hooks that run mlv checkout and push.",
    ),
    "stage": ("mlv.cli.stage", "stage_group", "Add and list pipeline stages (mlv.yaml)."),
    "repro": (
        "mlv.cli.repro",
        "repro_cmd",
        "Run the pipeline stages whose code, data or params changed.",
    ),
    "dag": ("mlv.cli.dag", "dag_cmd", "Show how pipeline stages depend on each other."),
    "params": ("mlv.cli.params", "params_group", "Compare parameters between revisions."),
    "metrics": ("mlv.cli.metrics", "metrics_group", "Show, compare and check metrics."),
    "plots": ("mlv.cli.plots", "plots_group", "Draw plots of revisions into an offline page."),
    "exp": ("mlv.cli.exp", "exp_group", "Compare experiments: commits by params and metrics."),
    "config": ("mlv.cli.config", "config_cmd", "Get or set configuration values."),
    "cache": ("mlv.cli.cache", "cache_group", "Manage the local cache."),
}


_GLOBAL_FLAGS = ("-v", "--verbose", "-q", "--quiet")


def _hoist_global_flags(args: list[str]) -> list[str]:
    """Accept -v/-q after the command name too (`mlv add -q data`), as users expect."""
    if "--" in args:
        cut = args.index("--")
        head, tail = args[:cut], args[cut:]
    else:
        head, tail = args, []
    flags = [a for a in head if a in _GLOBAL_FLAGS]
    rest = [a for a in head if a not in _GLOBAL_FLAGS]
    return flags + rest + tail


# What a status may say besides its name to be run without click: anything else (a path,
# -r, --help, -C, an unknown or misspelled option) goes through click, which parses it,
# shows the help or refuses it.
_FAST_STATUS_FLAGS = frozenset({"--json", "--check"})


def _fast_status(args: list[str]) -> bool:
    """True when args (global flags hoisted) are `status` with no more than the global
    flags and _FAST_STATUS_FLAGS: what mlv.cli.status_report.run_local does as click's
    status command would, without importing click."""
    rest = [a for a in args if a not in _GLOBAL_FLAGS]
    return rest[:1] == ["status"] and all(a in _FAST_STATUS_FLAGS for a in rest[1:])


# What a checkout may say besides its name and its paths to be run without click.
_FAST_CHECKOUT_FLAGS = frozenset({"--json", "-f", "--force", "--relink", "--wait-for-lock"})


def _fast_checkout(args: list[str]) -> bool:
    """True when args (global flags hoisted) are `checkout` with paths and no more than the
    global flags and _FAST_CHECKOUT_FLAGS: what mlv.cli.checkout_report.run does as click's
    checkout command would, without importing click. Anything else (`--`, -h, a bundle
    such as -fq, an unknown option) goes through click, and so does a path that exists but
    cannot be read, which click's Path type refuses with its own usage error."""
    import os

    rest = [a for a in args if a not in _GLOBAL_FLAGS]
    if rest[:1] != ["checkout"]:
        return False
    for a in rest[1:]:
        if a.startswith("-"):
            if a not in _FAST_CHECKOUT_FLAGS:
                return False
        elif os.path.exists(a) and not os.access(a, os.R_OK):
            return False
    return True


def _skip_exit_collections() -> None:
    """Spare the process the garbage collections Python runs as it shuts down: each goes
    over every object the imports made, ~6 ms in all after a status's or a checkout's
    (10.6 -> 4.0 ms from the last atexit hook to the process's end; a status takes ~0.1 s,
    a hard-link checkout of 20,000 files ~0.35 s), and what these two local commands leave
    needs no collecting (the database closed, the link helper ended, no remote session, the
    output written; buffered output is still flushed at exit). Not for in-process callers
    such as the tests (argv given): their objects must stay collectable."""
    import gc

    gc.freeze()


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and map every outcome to an exit code (raises SystemExit).

    What a command sets for itself (output settings, -v's logging, the secrets to redact)
    is undone on the way out, so main() can run many times in one process, as the tests do.
    The working directory (-C) is the caller's to restore."""
    stdfds.sanitize()  # first: a closed fd 0, 1 or 2 gets /dev/null, as in git
    from mlv import log

    try:
        _main(argv)
    finally:
        output.reset()
        log.forget_secrets()


def _main(argv: list[str] | None) -> None:
    from mlv.errors import EXIT_FAILURE, MlvError

    args = _hoist_global_flags(sys.argv[1:] if argv is None else argv)
    verbose = any(a in ("-v", "--verbose") for a in args)
    code: Any
    try:
        if _fast_status(args):
            output.configure(verbose=verbose, quiet=any(a in ("-q", "--quiet") for a in args))
            from mlv.cli import status_report

            code = status_report.run_local((), "--check" in args, "--json" in args)
            local = True
        elif _fast_checkout(args):
            output.configure(verbose=verbose, quiet=any(a in ("-q", "--quiet") for a in args))
            from mlv.cli import checkout_report

            words = [a for a in args if a not in _GLOBAL_FLAGS][1:]
            code = checkout_report.run(
                tuple(a for a in words if not a.startswith("-")),
                "-f" in words or "--force" in words,
                "--relink" in words,
                "--json" in words,
                "--wait-for-lock" in words,
            )
            local = True
        else:
            from mlv.cli import app

            code = app.run(args)
            local = [a for a in args if a not in _GLOBAL_FLAGS][:1] == ["checkout"]
        if argv is None and local:  # the process's own run, about to end
            _skip_exit_collections()
    except MlvError as e:
        output.error(e.text())  # its paths relative to the current folder
        if verbose:
            output.show_traceback()
        code = e.exit_code
    except KeyboardInterrupt:
        output.error("interrupted")
        code = 130
    except BrokenPipeError:
        code = EXIT_FAILURE
    except OSError as e:
        output.error(f"{e.strerror or e}" + (f": {e.filename}" if e.filename else ""))
        if verbose:
            output.show_traceback()
        code = EXIT_FAILURE
    except Exception as e:  # a bug: say so, and show it under -v
        if verbose:
            output.show_traceback()
            sys.exit(EXIT_FAILURE)
        output.error(
            f"internal error: {type(e).__name__}: {e} (run with -v for the traceback "
            "and please report it)"
        )
        code = EXIT_FAILURE
    sys.exit(code if isinstance(code, int) else 0)
