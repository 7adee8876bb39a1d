"""Running a user-configured command (an HSM bridge, a back-office hook) with text on stdin.

One place for the failure messages: not found, no answer in time, non-zero exit with the first
line of its stderr. The caller picks the exception type that fits its layer.
"""

from __future__ import annotations

import shlex
import subprocess

from sbcard.errors import BadInputError


def split_command(command: str, option: str) -> list[str]:
    try:
        argv = shlex.split(command)
    except ValueError as exc:            # e.g. an unclosed quote
        raise BadInputError(f"{option} {command!r}: {exc}") from None
    if not argv:
        raise BadInputError(f"{option} is empty")
    return argv


def run_with_input(argv: list[str], text: str, *, timeout: float, what: str,
                   error: type[Exception]) -> str:
    """Run ``argv`` with ``text`` on stdin; its stdout, or ``error`` saying what went wrong."""
    try:
        done = subprocess.run(argv, input=text, capture_output=True, text=True,
                              timeout=timeout, check=False)
    except FileNotFoundError:
        raise error(f"{what} not found: {argv[0]}") from None
    except OSError as exc:               # not executable, not a program, …
        raise error(f"{what} {argv[0]} cannot run: {exc.strerror}") from None
    except subprocess.TimeoutExpired:
        raise error(f"{what} gave no answer within {timeout:.0f} s") from None
    if done.returncode != 0:
        first = (done.stderr.strip().splitlines() or ["no message"])[0]
        raise error(f"{what} failed (exit {done.returncode}): {first}")
    return done.stdout
