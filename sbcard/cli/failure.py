"""How a failure is told: one line on stderr in the operator's language, and with ``--json``
also a JSON error object on stdout, for every command that has ``--json``.

The object: ``{"ok": false, "exit_code": 7, "error": "…", "error_zh": "…", "sw": "6983"}``
(``sw`` only when the card answered; ``tries_left`` when the card said how many).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from typing import Any

import click

from sbcard.messages import EXIT_ZH, LANGS, Text, default_lang


def _before_dashes(argv: Sequence[str]) -> Sequence[str]:
    return argv[:list(argv).index("--")] if "--" in argv else argv


def wanted_lang(argv: Sequence[str] | None) -> str:
    """``--lang X`` of the command line (it may not have parsed), else the default."""
    args = list(_before_dashes(argv or []))
    for i, arg in enumerate(args):
        value = (arg.partition("=")[2] if arg.startswith("--lang=") else
                 args[i + 1] if arg == "--lang" and i + 1 < len(args) else None)
        if value in LANGS:
            return value
    return default_lang()


def wants_json(argv: Sequence[str] | None) -> bool:
    args = list(_before_dashes(argv or []))
    return "--json" in args or any(a == "--format=json" for a in args) or any(
        a == "--format" and b == "json" for a, b in itertools.pairwise(args))


def text_of(exc: BaseException) -> Text:
    """The error in both languages: its own Chinese, the card's words, or the kind of failure."""
    from sbcard.apdu.sw import CardError
    from sbcard.errors import ExitCode

    own = getattr(exc, "text", None)
    if isinstance(own, Text):
        return own
    code = int(getattr(exc, "exit_code", ExitCode.FAILURE))
    if isinstance(exc, CardError):               # the SW table has both languages
        where = f"{exc.command}: " if exc.command else ""
        tries = exc.tries_left
        left = f"（剩余{tries}次）" if tries else ""
        return Text(f"{where}卡片返回 {exc.sw:04X} {exc.entry.zh}{left}", str(exc))
    return Text(f"{EXIT_ZH.get(code, '错误')}: {exc}", str(exc))


def error_line(exc: BaseException, lang: str) -> str:
    """The one stderr line: with ``both``, an error without its own Chinese stays as it is
    (a card's status word is already in both languages)."""
    if lang == "both" and not isinstance(getattr(exc, "text", None), Text):
        return str(exc)
    return text_of(exc).render(lang)


def error_object(exc: BaseException, exit_code: int) -> dict[str, Any]:
    text = text_of(exc)
    obj: dict[str, Any] = {"ok": False, "exit_code": int(exit_code), "error": text.en,
                           "error_zh": text.zh}
    sw = getattr(exc, "sw", None)
    if isinstance(sw, int):
        obj["sw"] = f"{sw:04X}"
        tries = getattr(exc, "tries_left", None)
        if tries is not None:
            obj["tries_left"] = tries
    return obj


def echo_error_object(exc: BaseException, exit_code: int) -> None:
    click.echo(json.dumps(error_object(exc, exit_code), ensure_ascii=False))
