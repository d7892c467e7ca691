"""The click side of the command line: the command group (each command's module imported
only when it runs), the global options, and what click raises turned into exit codes.

mlv.cli.main runs `mlv status` without it (click costs ~15 ms of a status's ~0.1 s); every
other command, and status with any other option or path, comes here.
"""

from __future__ import annotations

import importlib
import os
import re
from typing import Any

import click

from mlv import __version__
from mlv.cli import COMMANDS, output


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


def run(args: list[str]) -> Any:
    """Run the command line args (global flags hoisted) through click; returns the exit
    code, or what the command returned. What click raises is shown here as one line (the
    errors of mlv itself, and the rest, go up to mlv.cli's boundary)."""
    from mlv.errors import EXIT_FAILURE, EXIT_USAGE

    try:
        return cli.main(args=args, prog_name="mlv", standalone_mode=False)
    except click.exceptions.Exit as e:
        return e.exit_code
    except _NO_ARGS_IS_HELP as e:  # bare `mlv`: the help itself, as click shows it
        e.show()
        return EXIT_USAGE
    except click.UsageError as e:  # one line, like every other error
        output.error(_usage_line(e, args))
        return EXIT_USAGE
    except click.ClickException as e:
        e.show()
        return e.exit_code if e.exit_code is not None else EXIT_USAGE
    except click.exceptions.Abort as e:
        if isinstance(e.__context__, KeyboardInterrupt):  # click's word for Ctrl-C
            output.error("interrupted")
            return 130
        output.error("aborted")
        return EXIT_FAILURE
    except _Interrupted:
        output.error("interrupted")
        return 130
