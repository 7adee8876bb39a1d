"""The one place where an error becomes a line on stderr and an exit code (docs/exit-codes.md).

Both entry points use it: ``sbcard`` (``cli.main``) and ``python -m sbcard.cli.cmd_replay``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import NoReturn

import click


def run_command(command: click.Command, args: Callable[[], list[str]] | list[str] | None,
                prog_name: str, *, typed: list[str] | None = None) -> NoReturn:
    """Run a click command; exit with its return value or with the code of what it raised.

    ``args`` may be a function that prepares the arguments: its errors exit the same way.
    ``typed`` is the command line as typed (for ``--json`` and ``--lang`` when preparing
    the arguments fails).
    """
    from sbcard.cli.failure import echo_error_object, error_line, wanted_lang, wants_json
    from sbcard.errors import ExitCode, SbcardError

    if typed is None and not callable(args):
        typed = args

    def fail(exc: BaseException, code: int, line: str | None = None) -> NoReturn:
        """One line on stderr; with --json also the error object on stdout."""
        if line is not None:
            click.echo(line, err=True)
        if wants_json(typed):
            echo_error_object(exc, code)
        sys.exit(code)

    try:
        argv = typed = args() if callable(args) else args
        rv = command.main(args=argv, prog_name=prog_name, standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("sbcard: aborted", err=True)
        sys.exit(ExitCode.FAILURE)
    except click.ClickException as exc:
        if isinstance(exc, click.NoSuchOption) and isinstance(command, click.Group):
            from sbcard.cli.argv import safe_suggestions

            exc = click.NoSuchOption(exc.option_name, possibilities=safe_suggestions(
                exc.option_name, exc.possibilities, command), ctx=exc.ctx)
        exc.show()
        fail(exc, ExitCode.USAGE if isinstance(exc, click.UsageError) else exc.exit_code)
    except SbcardError as exc:
        fail(exc, exc.exit_code, f"sbcard: error: {error_line(exc, wanted_lang(typed))}")
    except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError) as exc:
        # a path the user gave that cannot be read or written: their input, one line
        where = f": {exc.filename}" if exc.filename else ""
        fail(exc, ExitCode.BAD_INPUT, f"sbcard: error: {exc.strerror or exc}{where}")
    except KeyboardInterrupt:
        click.echo("sbcard: interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(ExitCode.FAILURE)
    sys.exit(rv if isinstance(rv, int) else ExitCode.OK)
