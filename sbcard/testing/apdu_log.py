"""Recording APDU exchanges in tests and asserting on them (the ``apdu_log`` fixture).

Records are ``sbcard.apdu.trace.TraceRecord``: already masked by the trace rules, so a test
that prints its log never leaks a PIN. Commands are matched by a hex *prefix* of the masked
command: spaces are ignored, ``?`` stands for any hex digit, ``*`` matches only masked digits.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from sbcard.apdu.redact import mask_command, mask_response, secret_rule
from sbcard.apdu.trace import TraceLayer, TraceRecord, format_record
from sbcard.hexutil import hex_mask_matches
from sbcard.transport.base import CardTornError, Transport, VirtualCard


def normalise_pattern(pattern: str) -> str:
    return "".join(pattern.split()).upper()


@dataclass(frozen=True)
class RecordFilter:
    prefix: str | None = None
    cla: int | None = None
    ins: int | None = None
    p1: int | None = None
    p2: int | None = None
    sw: int | None = None

    def __call__(self, record: TraceRecord) -> bool:
        text = record.command
        if self.prefix is not None and not hex_mask_matches(
                normalise_pattern(self.prefix), text, prefix=True):
            return False
        for offset, want in ((0, self.cla), (1, self.ins), (2, self.p1), (3, self.p2)):
            if want is None:
                continue
            part = text[2 * offset:2 * offset + 2]
            if len(part) != 2 or "*" in part or int(part, 16) != want:
                return False
        return self.sw is None or record.sw == self.sw

    def describe(self) -> str:
        parts = []
        if self.prefix is not None:
            parts.append(f"prefix {normalise_pattern(self.prefix)}")
        for name, value in (("CLA", self.cla), ("INS", self.ins), ("P1", self.p1),
                            ("P2", self.p2)):
            if value is not None:
                parts.append(f"{name}={value:02X}")
        if self.sw is not None:
            parts.append(f"SW={self.sw:04X}")
        return ", ".join(parts) or "any command"


class ApduLog:
    """Every exchange a card saw (or a transport sent), in order, masked like traces."""

    def __init__(self) -> None:
        self.records: list[TraceRecord] = []
        self.torn: list[int] = []           # indexes of records whose command tore the card

    # -- recording ------------------------------------------------------------------------
    def append(self, record: TraceRecord) -> None:
        """Use as ``on_record`` of a ``TraceLayer`` or ``SessionOptions``."""
        self.records.append(record)

    def wrap(self, transport: Transport) -> Transport:
        """A trace layer over ``transport`` that records into this log."""
        return TraceLayer(transport, on_record=self.append)

    def wrap_card(self, card: VirtualCard) -> RecordingCard:
        """A virtual card that records every command it answers into this log."""
        return RecordingCard(card, self)

    def clear(self) -> None:
        self.records.clear()
        self.torn.clear()

    # -- reading --------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[TraceRecord]:
        return iter(self.records)

    def __getitem__(self, index: int) -> TraceRecord:
        return self.records[index]

    @property
    def commands(self) -> list[str]:
        return [r.command for r in self.records]

    @property
    def sws(self) -> list[int | None]:
        return [r.sw for r in self.records]

    def find(self, prefix: str | None = None, *, cla: int | None = None,
             ins: int | None = None, p1: int | None = None, p2: int | None = None,
             sw: int | None = None) -> list[TraceRecord]:
        """Records whose command starts with ``prefix`` (masked hex) and has these fields."""
        match = RecordFilter(prefix, cla, ins, p1, p2, sw)
        return [r for r in self.records if match(r)]

    def count(self, prefix: str | None = None, **fields: int | None) -> int:
        return len(self.find(prefix, **fields))

    def format(self) -> str:
        """The log as ``--trace`` would print it."""
        lines = []
        for i, r in enumerate(self.records):
            lines.append(format_record(r) if i not in self.torn
                         else f">> {r.command}  ({r.command_len} B)\n<< (card torn)")
        return "\n".join(lines) or "(no APDU exchanged)"

    # -- assertions -----------------------------------------------------------------------
    def assert_sent(self, prefix: str | None = None, *, times: int | None = None,
                    **fields: int | None) -> list[TraceRecord]:
        """At least one matching command was sent (exactly ``times`` if given)."""
        found = self.find(prefix, **fields)
        what = RecordFilter(prefix, **fields).describe()
        if times is None and not found:
            raise AssertionError(f"no command matching {what} was sent; log:\n{self.format()}")
        if times is not None and len(found) != times:
            raise AssertionError(f"{len(found)} commands matching {what} were sent, expected "
                                 f"{times}; log:\n{self.format()}")
        return found

    def assert_not_sent(self, prefix: str | None = None, **fields: int | None) -> None:
        found = self.find(prefix, **fields)
        if found:
            raise AssertionError(f"{len(found)} command(s) matching "
                                 f"{RecordFilter(prefix, **fields).describe()} were sent; "
                                 f"log:\n{self.format()}")

    def assert_sequence(self, *prefixes: str) -> None:
        """Commands with these prefixes were sent in this order (others may come between)."""
        position = 0
        for prefix in prefixes:
            pattern = normalise_pattern(prefix)
            while position < len(self.records) and not hex_mask_matches(
                    pattern, self.records[position].command, prefix=True):
                position += 1
            if position == len(self.records):
                raise AssertionError(f"{pattern} not sent after the previous commands of "
                                     f"{list(prefixes)}; log:\n{self.format()}")
            position += 1

    def assert_no_clear_pin(self, *pins: str, texts: Iterable[str] = ()) -> None:
        """No PIN went by in clear.

        Every command whose data field is secret by the masking rules (VERIFY, CHANGE PIN,
        PIN reload, key loads…) must show that field masked; and each PIN given — as digits
        and as its PIN block (digits padded with F) — must appear in no command of the log
        and in none of ``texts`` (captured output, a dump file's text, …).
        """
        for r in self.records:
            header = bytes.fromhex(r.command[:10]) if "*" not in r.command[:10] else b""
            if len(header) == 5 and secret_rule(header + b"\x00") is not None:
                data = r.command[10:10 + 2 * header[4]]
                if data.strip("*"):
                    raise AssertionError(f"secret data field in clear: {r.command}")
        texts = list(texts)
        for pin in pins:
            block = pin + "F" * (len(pin) % 2)
            for r in self.records:
                if pin in r.command or block.upper() in r.command:
                    raise AssertionError(f"PIN {'*' * len(pin)} in clear in command "
                                         f"{r.command}")
            for n, text in enumerate(texts):
                if pin in text or block.upper() in text.upper():
                    raise AssertionError(f"PIN {'*' * len(pin)} in clear in text #{n + 1}")


class RecordingCard:
    """A ``VirtualCard`` wrapper that logs what the card answered (or that it tore)."""

    def __init__(self, card: VirtualCard, log: ApduLog,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.card = card
        self.log = log
        self._clock = clock

    def power_on(self) -> bytes:
        return self.card.power_on()

    def power_off(self) -> None:
        self.card.power_off()

    def process(self, command: bytes) -> bytes:
        start = self._clock()
        try:
            response = bytes(self.card.process(command))
        except CardTornError:
            self.log.torn.append(len(self.log.records))
            self.log.append(TraceRecord(mask_command(command), "", self._clock() - start, None,
                                        len(command), 0))
            raise
        sw = int.from_bytes(response[-2:], "big") if len(response) >= 2 else None
        self.log.append(TraceRecord(
            mask_command(command),
            mask_response(response) if sw is not None else response.hex().upper(),
            self._clock() - start, sw, len(command), len(response)))
        return response

    def __getattr__(self, name: str):
        # atr, apdu_count, command_hooks … of the wrapped card
        return getattr(self.card, name)
