"""The command line: click groups, the error boundary and the global flags.

Commands are imported only when invoked, so `mlv --help` and `mlv status` do not pay for
modules they do not use. Every error a user can cause is an MlvError, printed as one line;
anything else is a bug, shown with a traceback under -v.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from typing import Any

import click

from mlv import __version__
from mlv.cli import output

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


class _Interrupted(Exception):
    """Ctrl-C during a command, carried past click's main() (which would print an empty
    line on stderr before it) to the error boundary, which prints one line."""


class LazyGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            raise _Interrupted() from None

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        spec = COMMANDS.get(cmd_name)
        if spec is None:
            return None
        module = importlib.import_module(spec[0])
        command: click.Command = getattr(module, spec[1])
        return command

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[Any]:
        """Shell completion of a command name: the names and short help of COMMANDS, as
        `mlv --help` shows them, without importing every command's module (click's own
        would, for zsh's and fish's descriptions); options as click completes them."""
        from click.shell_completion import CompletionItem

        results = [
            CompletionItem(name, help=spec[2])
            for name, spec in COMMANDS.items()
            if name.startswith(incomplete)
        ]
        results.extend(click.Command.shell_complete(self, ctx, incomplete))
        return results

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, spec[2]) for name, spec in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="mlv", message="%(prog)s %(version)s")
@click.option("-v", "--verbose", is_flag=True, help="Debug logs and tracebacks.")
@click.option("-q", "--quiet", is_flag=True, help="Print only errors.")
@click.option("-C", "directory", metavar="DIR", help="Run as if started in DIR.")
def cli(verbose: bool, quiet: bool, directory: str | None) -> None:
    """mlv: version data and models next to your code.

    Data lives in a content-addressed cache (.mlv/cache); git tracks small PATH.mlv
    pointer files. Run `mlv COMMAND --help` for each command.
    """
    output.configure(verbose=verbose, quiet=quiet)
    if directory:
        try:
            os.chdir(directory)
        except OSError as e:
            raise click.UsageError(f"cannot change to {directory}: {e.strerror}") from None


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


def _command_path(args: list[str]) -> str:
    """`mlv push` for `mlv -q push -r`: the command a usage error that click raised without
    its context (an option missing its value) is about, so the hint names that command's
    --help."""
    words = [a for i, a in enumerate(args) if not a.startswith("-") and args[i - 1 : i] != ["-C"]]
    if not words or words[0] not in COMMANDS:
        return "mlv"
    command = cli.get_command(click.Context(cli), words[0])
    if isinstance(command, click.Group) and len(words) > 1 and words[1] in command.commands:
        return f"mlv {words[0]} {words[1]}"
    return f"mlv {words[0]}"


_NO_SUCH_COMMAND = re.compile(r"No such command '(.+)'\.")


def _usage_line(e: click.UsageError, args: list[str]) -> str:
    """A usage error as one line that ends with the help to read. A misspelled command or
    option gets the close names (difflib, as git's "most similar command"), and the help
    to read is that of the one command suggested, else that of the command at hand:
    ``no such command 'statsu' (did you mean 'status'?): see `mlv status --help` ``."""
    ctx = e.ctx
    where = ctx.command_path if ctx is not None else _command_path(args)
    unknown = _NO_SUCH_COMMAND.match(e.message)
    if isinstance(e, click.NoSuchOption):
        what, name, close = "option", e.option_name, e.possibilities or []
    elif unknown is not None and ctx is not None and isinstance(ctx.command, click.Group):
        import difflib

        what, name = "command", unknown.group(1)
        close = difflib.get_close_matches(name, ctx.command.list_commands(ctx))
        if len(close) == 1:
            where = f"{where} {close[0]}"
    else:
        message = " ".join(e.format_message().split()).rstrip(".")
        return f"{message[:1].lower() + message[1:]}: see `{where} --help`"
    guess = ""
    if close:
        guess = f" (did you mean {' or '.join(repr(c) for c in sorted(close))}?)"
    return f"no such {what} {name!r}{guess}: see `{where} --help`"


# click >= 8.2 raises this (a UsageError) for a group called without a command.
_NO_ARGS_IS_HELP: Any = getattr(click.exceptions, "NoArgsIsHelpError", ())


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and map every outcome to an exit code (raises SystemExit).

    What a command sets for itself (output settings, -v's logging, the secrets to redact)
    is undone on the way out, so main() can run many times in one process, as the tests do.
    The working directory (-C) is the caller's to restore."""
    from mlv import log

    try:
        _main(argv)
    finally:
        output.reset()
        log.forget_secrets()


def _main(argv: list[str] | None) -> None:
    from mlv.errors import EXIT_FAILURE, EXIT_USAGE, MlvError

    args = _hoist_global_flags(sys.argv[1:] if argv is None else argv)
    verbose = any(a in ("-v", "--verbose") for a in args)
    code: Any
    try:
        code = cli.main(args=args, prog_name="mlv", standalone_mode=False)
    except MlvError as e:
        output.error(e.text())  # its paths relative to the current folder
        if verbose:
            output.show_traceback()
        code = e.exit_code
    except click.exceptions.Exit as e:
        code = e.exit_code
    except _NO_ARGS_IS_HELP as e:  # bare `mlv`: the help itself, as click shows it
        e.show()
        code = EXIT_USAGE
    except click.UsageError as e:  # one line, like every other error
        output.error(_usage_line(e, args))
        code = EXIT_USAGE
    except click.ClickException as e:
        e.show()
        code = e.exit_code if e.exit_code is not None else EXIT_USAGE
    except click.exceptions.Abort as e:
        if isinstance(e.__context__, KeyboardInterrupt):  # click's word for Ctrl-C
            output.error("interrupted")
            code = 130
        else:
            output.error("aborted")
            code = EXIT_FAILURE
    except (KeyboardInterrupt, _Interrupted):
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
