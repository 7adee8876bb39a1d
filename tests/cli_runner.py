"""Running the `sbcard` command in-process, as the tests of every command do."""

from __future__ import annotations

import io
import sys

import pytest

from sbcard.cli.main import main


def run_cli(capsys: pytest.CaptureFixture[str], *args: str,
            stdin: str | None = None) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``sbcard ARGS``; ``stdin`` feeds prompts/--pin-stdin."""
    saved = sys.stdin
    if stdin is not None:
        # a text stream over bytes, as a real stdin is (commands that take a file as `-`
        # read sys.stdin.buffer)
        sys.stdin = io.TextIOWrapper(io.BytesIO(stdin.encode()), encoding="utf-8")
    try:
        with pytest.raises(SystemExit) as exc:
            main(list(args))
    finally:
        sys.stdin = saved
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err
