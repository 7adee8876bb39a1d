"""Session dumps: every APDU of a session written to a plain-text file, masked like traces.

``sbcard --dump FILE <command>`` records what crossed the wire (GET RESPONSE rounds included,
because the dump layer sits directly on the link, under the T=0 layer). The file is meant to
be read by people and replayed by ``sbcard.sim.replay`` (``sbcard sim replay FILE``)::

    # sbcard-dump 1
    # sbcard: 0.1.0
    # date: 2025-03-01T10:15:02+08:00
    # reader: simulator: demo
    # atr: 3B6D000000814A4446866051990000000001
    # protocol: T=1
    # masked: PIN and key data fields as ** per byte, PAN digits as * (sbcard.apdu.redact)

    >> 00A404000F7378312E73682EC9E7BBE1B1A3D5CF00  (21 B)  t+0.000 s
    << 6F1C840F7378312E73682EC9E7BBE1B1A3D5CFA50988011E9F0C03860101 9000  (32 B, 0.05 ms)  …
    >> 0020000003******  (8 B)  t+0.012 s
    << 63C2  (2 B, 0.03 ms)  63C2 校验失败，还可再试 2 次 wrong PIN or key, 2 tries left
    !! CardRemovedError: card removed during the command; its effect is unknown
    -- reset  ATR 3B6D…

Exchange lines are the ``--trace`` lines (``sbcard.apdu.trace.format_record``) plus the time
since the session began. Masking is the one in ``sbcard.apdu.redact``, applied here exactly as
for traces: a dump never holds a PIN, a key or a full bank card number — but it does hold the
holder data the card gave out (name, ID number), so it is created readable by its owner only.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from sbcard import __version__
from sbcard.apdu.redact import mask_command
from sbcard.apdu.trace import TraceLayer, TraceRecord, format_record
from sbcard.errors import BadInputError
from sbcard.transport.base import Transport

MAGIC = "# sbcard-dump"
FORMAT_VERSION = 1
MASK_NOTE = "PIN and key data fields as ** per byte, PAN digits as * (sbcard.apdu.redact)"

_CMD_RE = re.compile(r"^>> (?P<hex>[0-9A-Fa-f*]*)\s+\((?P<len>\d+) B\)(?:\s+t\+(?P<t>[\d.]+) s)?")
_RSP_RE = re.compile(r"^<< (?P<hex>[0-9A-Fa-f*]*)\s*\((?P<len>\d+) B, (?P<ms>[\d.]+) ms\)")


# -- writing -------------------------------------------------------------------------------


class DumpWriter:
    """Writes dump lines to a file, flushed line by line (a crash leaves a usable dump).

    The file is created (mode 0600, or appended to with ``append``) at the first line, so a
    command that never reached a card leaves no empty dump behind.
    """

    def __init__(self, path: str | os.PathLike[str], *, append: bool = False) -> None:
        self.path = Path(path)
        self.append = append
        self._file: TextIO | None = None
        self._header_written = False
        self._started = time.monotonic()

    def _open(self) -> TextIO:
        if self._file is None:
            flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if self.append else os.O_TRUNC)
            try:
                fd = os.open(self.path, flags, 0o600)
            except OSError as exc:
                raise BadInputError(f"cannot write dump {self.path}: "
                                    f"{exc.strerror or exc}") from None
            self._file = os.fdopen(fd, "w", encoding="utf-8")
            if self.append and self.path.stat().st_size > 0:
                self._header_written = True
        return self._file

    def line(self, text: str) -> None:
        f = self._open()
        f.write(text + "\n")
        f.flush()

    def header(self, *, reader: str, atr: bytes, protocol: str) -> None:
        """The file header on the first connect; a ``-- connect`` event on later ones."""
        self._open()
        if self._header_written:
            self.line(f"-- connect  {reader}  ATR {atr.hex().upper()}  {protocol}")
            return
        now = dt.datetime.now().astimezone().isoformat(timespec="seconds")
        for text in (f"{MAGIC} {FORMAT_VERSION}", f"# sbcard: {__version__}", f"# date: {now}",
                     f"# reader: {reader}", f"# atr: {atr.hex().upper()}",
                     f"# protocol: {protocol}", f"# masked: {MASK_NOTE}", ""):
            self.line(text)
        self._header_written = True
        self._started = time.monotonic()

    def command(self, masked: str, length: int, sent_at: float) -> None:
        self.line(f">> {masked}  ({length} B)  t+{max(0.0, sent_at - self._started):.4f} s")

    def exchange(self, record: TraceRecord, sent_at: float) -> None:
        response = format_record(record).split("\n", 1)[1]
        self.command(record.command, record.command_len, sent_at)
        self.line(response)

    def error(self, exc: BaseException) -> None:
        message = " ".join(str(exc).split())
        self.line(f"!! {type(exc).__name__}: {message}")

    def event(self, text: str) -> None:
        self.line(f"-- {text}")

    def close(self) -> None:
        if self._file is not None and not self._file.closed:
            self._file.close()


class DumpLayer(TraceLayer):
    """A trace layer whose records go to a ``DumpWriter``; put it directly on the link.

    The writer belongs to whoever made it (it may outlive this session and take the next).
    """

    def __init__(self, inner: Transport, writer: DumpWriter, *,
                 redact_holder: bool = True) -> None:
        super().__init__(inner, sink=None, on_record=self._record, redact_holder=redact_holder)
        self.writer = writer
        self._sent_at = 0.0

    def _record(self, record: TraceRecord) -> None:
        self.writer.exchange(record, self._sent_at)

    def connect(self) -> None:
        self.inner.connect()
        self.writer.header(reader=self.description, atr=self.inner.atr,
                           protocol=self.inner.protocol)

    def transmit(self, command: bytes) -> bytes:
        self._sent_at = time.monotonic()
        try:
            return super().transmit(command)
        except Exception as exc:
            self.writer.command(mask_command(command), len(command), self._sent_at)
            self.writer.error(exc)
            raise

    def reset(self) -> bytes:
        atr = self.inner.reset()
        self.writer.event(f"reset  ATR {atr.hex().upper()}")
        return atr


# -- reading -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DumpExchange:
    """One recorded exchange. ``command``/``response`` are masked hex (``*`` = hidden)."""

    command: str
    command_len: int
    response: str | None          # None when the command ended in an error (``error``)
    response_len: int
    seconds: float
    error: str | None = None
    line: int = 0                 # line number of the ``>>`` line, for messages

    @property
    def masked(self) -> bool:
        return "*" in self.command

    @property
    def sw(self) -> int | None:
        if self.response is None or len(self.response) < 4 or "*" in self.response[-4:]:
            return None
        return int(self.response[-4:], 16)


@dataclass
class Dump:
    header: dict[str, str]
    exchanges: list[DumpExchange] = field(default_factory=list)
    events: list[tuple[int, str]] = field(default_factory=list)   # (exchange index, text)
    source: str = "<dump>"

    @property
    def atr(self) -> bytes:
        text = self.header.get("atr", "")
        try:
            return bytes.fromhex(text)
        except ValueError:
            raise BadInputError(f"{self.source}: header 'atr' is not hex: {text!r}") from None

    @property
    def protocol(self) -> str:
        return self.header.get("protocol", "T=1")

    @property
    def reader(self) -> str:
        return self.header.get("reader", "")


def is_dump_text(text: str) -> bool:
    return text.startswith(MAGIC)


def is_dump_file(path: str | os.PathLike[str]) -> bool:
    p = Path(path)
    try:
        with p.open("r", encoding="utf-8", errors="replace") as f:
            return is_dump_text(f.read(len(MAGIC)))
    except OSError:
        return False


def parse_dump(text: str, source: str = "<dump>") -> Dump:
    """Parse dump text; raises ``BadInputError`` naming the line that is wrong."""
    lines = text.splitlines()
    if not lines or not is_dump_text(lines[0]):
        raise BadInputError(f"{source}: not an sbcard dump (first line must be '{MAGIC} 1')")
    version = lines[0][len(MAGIC):].strip()
    if version != str(FORMAT_VERSION):
        raise BadInputError(f"{source}: dump format {version!r} is not supported "
                            f"(this sbcard reads format {FORMAT_VERSION})")
    dump = Dump(header={}, source=source)
    pending: tuple[str, int, int] | None = None      # (command hex, length, line number)
    for number, raw in enumerate(lines[1:], start=2):
        line = raw.rstrip()
        if not line:
            continue
        if line.startswith("#"):
            key, sep, value = line[1:].strip().partition(": ")
            if sep and not dump.exchanges and pending is None:
                dump.header[key.strip().lower()] = value.strip()
            continue
        if line.startswith(">>"):
            m = _CMD_RE.match(line)
            if m is None:
                raise BadInputError(f"{source}:{number}: cannot read command line {line!r}")
            if pending is not None:
                raise BadInputError(f"{source}:{number}: command without a response before it")
            pending = (m["hex"].upper(), int(m["len"]), number)
            _check_masked_hex(pending[0], pending[1], f"{source}:{number}")
        elif line.startswith("<<"):
            m = _RSP_RE.match(line)
            if m is None:
                raise BadInputError(f"{source}:{number}: cannot read response line {line!r}")
            if pending is None:
                raise BadInputError(f"{source}:{number}: response without a command")
            _check_response(m["hex"].upper(), int(m["len"]), f"{source}:{number}")
            dump.exchanges.append(DumpExchange(
                pending[0], pending[1], m["hex"].upper(), int(m["len"]),
                float(m["ms"]) / 1000, None, pending[2]))
            pending = None
        elif line.startswith("!!"):
            if pending is None:
                raise BadInputError(f"{source}:{number}: error line without a command")
            dump.exchanges.append(DumpExchange(pending[0], pending[1], None, 0, 0.0,
                                               line[2:].strip(), pending[2]))
            pending = None
        elif line.startswith("--"):
            dump.events.append((len(dump.exchanges), line[2:].strip()))
        else:
            raise BadInputError(f"{source}:{number}: unexpected line {line!r}")
    if pending is not None:
        raise BadInputError(f"{source}: the last command has no response")
    if "atr" not in dump.header:
        raise BadInputError(f"{source}: the header has no 'atr' line")
    dump.atr  # noqa: B018 - validate now, with the file named
    return dump


def load_dump(path: str | os.PathLike[str]) -> Dump:
    p = Path(path)
    try:
        text = p.read_text("utf-8")
    except OSError as exc:
        raise BadInputError(f"cannot read dump {p}: {exc.strerror or exc}") from None
    return parse_dump(text, str(p))


def _check_response(text: str, length: int, where: str) -> None:
    """A recorded response is served as it is: check it all at load, not when served."""
    if len(text) != 2 * length:
        raise BadInputError(f"{where}: response has {len(text) / 2:g} bytes but says "
                            f"({length} B)")
    if length < 2:
        raise BadInputError(f"{where}: response has no status word")
    sw = text[-4:]
    if "*" in sw or not 0x60 <= int(sw[:2], 16) <= 0x9F:
        raise BadInputError(f"{where}: response ends in {sw!r}, not a status word")


def _check_masked_hex(text: str, length: int, where: str) -> None:
    if len(text) != 2 * length:
        raise BadInputError(f"{where}: command has {len(text) // 2} bytes but says ({length} B)")
    for i in range(0, len(text), 2):
        pair = text[i:i + 2]
        if "*" in pair and pair != "**":
            raise BadInputError(f"{where}: half-masked byte {pair!r} in a command")
