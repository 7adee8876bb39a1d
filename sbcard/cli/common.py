"""What every subcommand shares: global options, opening the session, printing."""

from __future__ import annotations

import contextlib
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
    key_version: int | None = None      # --key-version: card key version (Lc 11 byte)
    dump: Path | None = None            # --dump FILE: record every session of this run
    wait: float = 0.0                   # --wait SECONDS: for the card to be inserted
    #: -1 with -q (results and errors only), 0 default, 1 with -v (steps), 2 with -vv (trace)
    verbosity: int = 0
    #: --trace and --dump mask the holder's ID number and name (EF06) unless --no-redact
    redact_holder: bool = True
    lang: str = "both"                  # --lang: zh, en or both (sbcard.messages)
    sim_state: Path | None = None       # --sim-state FILE: the simulated card's memory
    #: Readers holding something else this run (the PSAM's): never taken for the card's.
    reserved: dict[str, str] = field(default_factory=dict, repr=False)
    _dump_sessions: dict[Path, int] = field(default_factory=dict, repr=False)

    @property
    def psam_dump(self) -> Path | None:
        """Where the PSAM's exchanges go with ``--dump FILE``: ``FILE.psam`` beside it."""
        return None if self.dump is None else self.dump.with_name(self.dump.name + ".psam")

    def _recorder(self, path: Path | None) -> tuple[Any, Any]:
        """(writer, link wrapper) recording a session into ``path``; (None, None) without."""
        if path is None:
            return None, None
        from sbcard.apdu.dump import DumpLayer, DumpWriter

        # The first session of the run starts the file; later ones append to it.
        seen = self._dump_sessions.get(path, 0)
        writer = DumpWriter(path, append=seen > 0)
        self._dump_sessions[path] = seen + 1
        return writer, lambda link: DumpLayer(link, writer, redact_holder=self.redact_holder)

    def info(self, message: str) -> None:
        """A note for the operator on stderr (tries left, what is waited for); not with -q."""
        if self.verbosity >= 0:
            click.echo(message, err=True)

    def text(self, message: Any, **values: Any) -> str:
        """A catalogue message (sbcard.messages) in the operator's language."""
        from sbcard.messages import render

        return render(message(**values) if values else message, self.lang)

    def step(self, message: str) -> None:
        """One step of an operation, shown with -v."""
        if self.verbosity >= 1:
            click.echo(message, err=True)

    def _step_sink(self, prefix: str = "") -> Any:
        """With exactly -v: one line per card command (-vv shows the full trace instead)."""
        if self.verbosity != 1 or self.trace:
            return None
        from sbcard.apdu.trace import format_step

        return lambda record: self.step(prefix + format_step(record))

    def _trace_sink(self, prefix: str = "") -> Any:
        if not self.trace:
            return None
        return lambda text: click.echo(
            "\n".join(prefix + line for line in text.splitlines()), err=True)

    @contextmanager
    def key_source(self) -> Iterator[Any]:
        """The key source the user named (None if none); closed afterwards.

        A PSAM is a second card: ``--trace`` shows its APDUs prefixed ``PSAM``, and
        ``--dump FILE`` records them in ``FILE.psam``, masked the same way.
        """
        from sbcard.ops.keysource import KeySourceOptions, open_key_source
        from sbcard.ops.session import SessionOptions

        writer, wrap = self._recorder(self.psam_dump if self.psam else None)
        psam_session = SessionOptions(trace=self._trace_sink("PSAM "), wrap_link=wrap,
                                      on_record=self._step_sink("PSAM "))
        try:
            source = open_key_source(
                KeySourceOptions(self.keys, self.psam, self.hsm_command, self.hsm_stdio,
                                 psam_session=psam_session, key_version=self.key_version),
                warn=lambda m: click.echo(m, err=True),
            )
            psam_reader = getattr(source, "reader", None)
            if psam_reader:
                self.reserved[psam_reader] = "the PSAM (--psam)"
            try:
                yield source
            finally:
                if source is not None:
                    source.close()
                if psam_reader:
                    self.reserved.pop(psam_reader, None)
        finally:
            if writer is not None:
                writer.close()

    @contextmanager
    def session(self, *, raw: bool = False) -> Iterator[Any]:
        from sbcard.ops.session import SessionOptions, open_session

        writer, wrap = self._recorder(self.dump)
        reserved = dict(self.reserved)
        if self.psam not in (None, "sim") and self.sim is None and not reserved:
            # A command that does not use the PSAM still must not take its reader. If the
            # PSAM's reader is not there now, there is nothing to keep apart.
            from sbcard.errors import TransportError
            from sbcard.ops.readers import reader_name

            with contextlib.suppress(TransportError):
                reserved[reader_name(self.psam)] = "the PSAM (--psam)"
        saved: list[Any] = []
        if self.sim_state is not None:
            wrap = self._with_sim_state(wrap, saved)
        options = SessionOptions(reader=self.reader, sim=self.sim, raw=raw,
                                 trace=self._trace_sink(), wrap_link=wrap, wait=self.wait,
                                 on_record=self._step_sink(), on_wait=self.info,
                                 reserved=reserved, redact_holder=self.redact_holder)
        try:
            with open_session(options) as channel:
                yield channel
        finally:
            if writer is not None:
                writer.close()
            if saved:                   # also after a failure: a wrong PIN counts
                from sbcard.sim import state as sim_state

                sim_state.save(self.sim_state, sim_state.capture(saved[0], str(self.sim)))

    def _with_sim_state(self, wrap: Any, saved: list[Any]) -> Any:
        """A link wrapper that gives the simulated card its saved memory (--sim-state)."""
        if self.sim is None:
            raise click.UsageError("--sim-state goes with --sim (the in-process card)")

        def restore(link: Any) -> Any:
            from sbcard.sim import state as sim_state

            card = getattr(link, "card", None)
            if card is None or not hasattr(card, "pin"):
                raise click.UsageError("--sim-state: this --sim is not a simulated card "
                                       "(a dump replays, it keeps no state)")
            previous = sim_state.load(self.sim_state, str(self.sim))  # type: ignore[arg-type]
            if previous is not None:
                sim_state.restore(card, previous)
            saved.append(card)
            return link if wrap is None else wrap(link)

        return restore


def state(ctx: click.Context) -> CliState:
    return ctx.find_object(CliState)


def echo_json(obj: Any, *, err: bool = False) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, indent=2, default=str), err=err)


def label(zh: str, en: str) -> str:
    """Field labels speak to Chinese technicians first: ``卡号 Card number``."""
    return f"{zh} {en}"


def echo_table(rows: list[tuple[str, str]], *, err: bool = False) -> None:
    """Two columns, labels padded by display width (CJK characters take two cells)."""
    import unicodedata

    def width(s: str) -> int:
        return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in s)

    w = max((width(k) for k, _ in rows), default=0)
    for key, value in rows:
        click.echo(f"{key}{' ' * (w - width(key))}  {value}", err=err)


def echo_encoded(text: str, encoding: str = "utf-8") -> None:
    """``text`` and a newline on stdout in ``encoding`` (gbk: what national-interface
    integrators' programs expect)."""
    if encoding.lower().replace("-", "") in ("utf8", ""):
        click.echo(text)
    else:
        click.echo((text + "\n").encode(encoding, errors="replace"), nl=False)
