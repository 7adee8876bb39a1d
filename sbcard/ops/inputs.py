"""Keys and data from where an engineer keeps them: hex, files, stdin, ``@FILE``, ``env:VAR``.

Every failure is a one-line :class:`BadInputError` naming the option (``what``), so a caller
— the CLI or a script — never shows a traceback for a missing file or an unset variable.
Streams and the environment are parameters (defaulting to the process's own at call time),
so tests and embedders pass their own.
"""

from __future__ import annotations

import os
import string
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO, TextIO

from sbcard.errors import BadInputError, SbcardError
from sbcard.hexutil import parse_hex

#: Characters hex text may contain (digits and the separators parse_hex accepts).
HEX_TEXT = frozenset(string.hexdigits + " \t\r\n:-_")


def read_file(path: str, what: str, stdin: BinaryIO | None = None) -> bytes:
    """Bytes of ``path`` (``-`` is stdin)."""
    if path == "-":
        return (stdin if stdin is not None else sys.stdin.buffer).read()
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise BadInputError(f"{what}: no such file {path!r}") from None
    except IsADirectoryError:
        raise BadInputError(f"{what}: {path!r} is a directory, not a file") from None
    except OSError as exc:
        raise BadInputError(f"{what}: cannot read {path!r}: {exc.strerror or exc}") from None


def write_file(path: str, data: bytes, *, private: bool = False) -> None:
    """Write ``data``; ``private`` files are created (or reset) with mode 0600."""
    try:
        if private:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.fchmod(fd, 0o600)  # an existing file keeps its mode otherwise
                os.write(fd, data)
            finally:
                os.close(fd)
        else:
            Path(path).write_bytes(data)
    except OSError as exc:
        raise SbcardError(f"cannot write {path!r}: {exc.strerror or exc}") from None


def secret_hex(value: str, what: str, *, stdin: TextIO | None = None,
               environ: Mapping[str, str] | None = None) -> bytes:
    """A key as hex, from where argv does not show it: ``-`` (a line on stdin), ``@FILE``
    (hex text in a file) or ``env:NAME`` (an environment variable); plain hex still works
    but is visible to other users (ps)."""
    if value == "-":
        text = (stdin if stdin is not None else sys.stdin).readline().strip()
        where = "stdin"
    elif value.startswith("@"):
        text = read_file(value[1:], what).decode("ascii", "replace").strip()
        where = value[1:]
    elif value.startswith("env:"):
        env = os.environ if environ is None else environ
        name = value[4:]
        if name not in env:
            raise BadInputError(f"{what}: environment variable {name} is not set")
        text, where = env[name].strip(), f"${name}"
    else:
        return parse_hex(value, what)
    if not text:
        raise BadInputError(f"{what}: nothing in {where}")
    return parse_hex(text, f"{what} ({where})")


def looks_like_hex_text(data: bytes) -> bool:
    """True for a file that holds hex digits (and separators) rather than binary."""
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        return False
    return bool(text.strip()) and set(text) <= HEX_TEXT


def bytes_or_file(value: str, what: str) -> bytes:
    """A value that is either an existing file (PEM, DER, raw or hex text) or hex."""
    if os.path.exists(value):
        data = read_file(value, what)
        if looks_like_hex_text(data):
            return parse_hex("".join(data.decode("ascii").split()), f"{what} ({value})")
        return data
    if set(value) <= HEX_TEXT:
        return parse_hex(value, what)
    raise BadInputError(f"{what}: no such file {value!r} (and it is not hex either)")


def one_byte(text: str, what: str) -> int:
    """A single byte given as 2 hex digits (a key ID, a key version)."""
    value = parse_hex(text, what)
    if len(value) != 1:
        raise BadInputError(f"{what} must be one byte (2 hex digits), got {len(value)} bytes")
    return value[0]


class InputChoiceError(BadInputError):
    """None, or more than one, of the ways to give an input was used (a usage error)."""


def one_input(parts: tuple[str, ...], in_file: str | None, text: str | None = None, *,
              what: str = "data", text_offered: bool = False,
              stdin: BinaryIO | None = None) -> bytes:
    """The one input among hex ``parts``, a file ``in_file`` (``-`` is stdin) and (where the
    caller offers it) UTF-8 ``text``; hex ``-`` alone is stdin, never the empty string."""
    given = [name for name, value in (("HEX", parts or None), ("--in", in_file),
                                      ("--text", text)) if value is not None]
    if len(given) != 1:
        choices = "HEX, --in FILE or --text STRING" if text_offered else "HEX or --in FILE"
        if not given:
            raise InputChoiceError(f"no {what}: give it as {choices}")
        raise InputChoiceError(f"{what} given twice ({' and '.join(given)}): "
                               f"use one of {choices}")
    if in_file is not None:
        return read_file(in_file, f"--in {what}", stdin)
    if parts == ("-",):
        return read_file("-", f"{what} from stdin", stdin)
    if text is not None:
        return text.encode("utf-8")
    return parse_hex(" ".join(parts), what)
