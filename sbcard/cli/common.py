"""What every subcommand shares: global options, opening the session, printing."""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from sbcard.apdu.channel import ApduChannel
    from sbcard.card.profiles import CardProfile
    from sbcard.compose import Workbench
    from sbcard.keys.base import KeySource


@dataclass
class CliState:
    """The global options of one run; sessions and key sources come from its
    ``sbcard.compose.Workbench`` (built on first use, so ``--help`` imports nothing heavy)."""

    reader: str | None
    sim: str | None
    trace: bool
    keys: str | None = None
    psam: str | None = None
    hsm_command: str | None = None
    hsm_stdio: bool = False
    #: --hsm-protocol: ``json`` or ``national``; None = json (``sbcard call``: the driver's)
    hsm_protocol: str | None = None
    key_version: int | None = None      # --key-version: card key version (Lc 11 byte)
    dump: Path | None = None            # --dump FILE: record every session of this run
    wait: float = 0.0                   # --wait SECONDS: for the card to be inserted
    #: -1 with -q (results and errors only), 0 default, 1 with -v (steps), 2 with -vv (trace)
    verbosity: int = 0
    #: --trace and --dump mask the holder's ID number and name (EF06) unless --no-redact
    redact_holder: bool = True
    lang: str = "both"                  # --lang: zh, en or both (sbcard.messages)
    sim_state: Path | None = None       # --sim-state FILE: the simulated card's memory
    _bench: Any = field(default=None, repr=False)

    @property
    def bench(self) -> Workbench:
        if self._bench is None:
            from sbcard.compose import Workbench

            self._bench = Workbench(
                reader=self.reader, sim=self.sim, keys=self.keys, psam=self.psam,
                hsm_command=self.hsm_command, hsm_stdio=self.hsm_stdio,
                hsm_protocol=self.hsm_protocol or "json",
                key_version=self.key_version,
                trace=(lambda text: click.echo(text, err=True)) if self.trace else None,
                steps=self.step if self.verbosity == 1 else None, dump=self.dump,
                wait=self.wait, sim_state=self.sim_state, redact_holder=self.redact_holder,
                say=self.info,
                warn=lambda m: click.echo(m, err=True))
        return self._bench

    @property
    def reserved(self) -> dict[str, str]:
        """Readers holding something else this run (the PSAM's): never the card's."""
        return self.bench.reserved

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

    def key_source(self, profile: CardProfile | None = None
                   ) -> AbstractContextManager[KeySource | None]:
        """The key source the user named (None if none); closed afterwards. ``profile``
        maps card keys to PSAM keys and HSM addresses (default: the default profile's)."""
        return self.bench.key_source(profile)

    def session(self, *, raw: bool = False) -> AbstractContextManager[ApduChannel]:
        if self.sim_state is not None:
            from sbcard.apdu.dump import is_dump_file

            if self.sim is None:
                raise click.UsageError("--sim-state goes with --sim (the in-process card)")
            if is_dump_file(self.sim):
                raise click.UsageError("--sim-state: this --sim is not a simulated card "
                                       "(a dump replays, it keeps no state)")
        return self.bench.session(raw=raw)


def state(ctx: click.Context) -> CliState:
    found = ctx.find_object(CliState)
    if found is None:                  # the ``sbcard`` group makes it before any command
        raise RuntimeError("sbcard command run outside the sbcard group")
    return found


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
