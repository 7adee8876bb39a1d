"""What every subcommand shares: global options, opening the session, printing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click


@dataclass
class CliState:
    reader: str | None
    sim: str | None
    trace: bool
    keys: str | None = None
    psam: str | None = None
    hsm_command: str | None = None
    hsm_stdio: bool = False
    dump: Path | None = None            # --dump FILE: record every session of this run
    _dump_sessions: int = field(default=0, repr=False)

    @contextmanager
    def key_source(self) -> Iterator[Any]:
        """The key source the user named (None if none); closed afterwards."""
        from sbcard.ops.keysource import KeySourceOptions, open_key_source

        source = open_key_source(
            KeySourceOptions(self.keys, self.psam, self.hsm_command, self.hsm_stdio),
            warn=lambda m: click.echo(m, err=True),
        )
        try:
            yield source
        finally:
            if source is not None:
                source.close()

    @contextmanager
    def session(self, *, raw: bool = False) -> Iterator[Any]:
        from sbcard.ops.session import SessionOptions, open_session

        sink = (lambda line: click.echo(line, err=True)) if self.trace else None
        writer = None
        wrap = None
        if self.dump is not None:
            from sbcard.apdu.dump import DumpLayer, DumpWriter

            # The first session of the run starts the file; later ones append to it.
            writer = DumpWriter(self.dump, append=self._dump_sessions > 0)
            self._dump_sessions += 1

            def wrap(link: Any) -> Any:
                return DumpLayer(link, writer)

        options = SessionOptions(reader=self.reader, sim=self.sim, raw=raw, trace=sink,
                                 wrap_link=wrap)
        try:
            with open_session(options) as channel:
                yield channel
        finally:
            if writer is not None:
                writer.close()


def state(ctx: click.Context) -> CliState:
    return ctx.find_object(CliState)


def echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, indent=2, default=str))


def label(zh: str, en: str) -> str:
    """Field labels speak to Chinese technicians first: ``卡号 Card number``."""
    return f"{zh} {en}"


def echo_table(rows: list[tuple[str, str]]) -> None:
    """Two columns, labels padded by display width (CJK characters take two cells)."""
    import unicodedata

    def width(s: str) -> int:
        return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in s)

    w = max((width(k) for k, _ in rows), default=0)
    for key, value in rows:
        click.echo(f"{key}{' ' * (w - width(key))}  {value}")
