"""A card that answers from a session dump (``sbcard --dump``): record once, replay anywhere.

``ReplayCard`` implements the ``VirtualCard`` protocol, so it runs in-process
(``SimulatedTransport(ReplayCard.load(path))``, or ``sbcard --sim FILE.dump …``) and through
pcscd (``VpcdServer(ReplayCard.load(path))``, or ``sbcard sim replay FILE``). Its ATR is the
dump's.

Matching. A dump is masked (``sbcard.apdu.redact``): the data field of a VERIFY or a key load
is ``**`` per byte, so masked commands cannot be compared byte for byte. Each incoming command
is answered with the recorded response of the *next* recorded command that matches it, looking
forward from the last answered one and then wrapping to the start (a second run of the same
client replays the dump again):

1. a recorded command matches when it has the same length and every visible byte is equal
   (``**`` matches any byte) — so a VERIFY with another PIN of the same length gets the
   recorded answer, and one of another length does not;
2. only when nothing matches (and not ``strict``): the recorded command at the current
   position still answers if CLA, INS, P1, P2 and the length are equal. This replays commands
   whose data is fresh every run, such as EXTERNAL AUTHENTICATE over a random challenge;
3. otherwise the card answers ``6F00`` (``unknown_sw``) and says so through ``on_event`` and
   the ``sbcard.sim.replay`` logger.

With ``strict`` a command must match (rule 1) the very next recorded command; anything else is
a mismatch: ``ReplayMismatchError`` is raised, or, when ``on_mismatch`` is given, handed to it
and answered with ``unknown_sw`` (the vpcd server uses this to stop cleanly).

A recorded error (``!!`` line, e.g. the card was torn out mid-command) replays as a tear.
Masked PAN digits in responses come back as zeros with the last hidden digit chosen so the
number still passes the Luhn check: masked output of the replay equals the original's.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

from sbcard.apdu.dump import Dump, DumpExchange, load_dump, parse_dump
from sbcard.apdu.redact import ASCII_TRACK_TAGS, _pan_spans, mask_command
from sbcard.apdu.sw import SW
from sbcard.errors import MismatchError
from sbcard.transport.base import CardTornError

log = logging.getLogger(__name__)

#: Answer to a command the dump does not hold: "no precise diagnosis".
UNKNOWN_SW = SW.NO_DIAGNOSIS


class ReplayMismatchError(MismatchError):
    """In strict replay, a command that is not the next one of the dump (exit code 9)."""


@dataclass(frozen=True)
class ReplayEvent:
    """What happened to one incoming command: how it matched, or why it did not."""

    how: str                 # "exact", "masked", "position", "unknown", "mismatch", "torn"
    command: str             # incoming command, masked like a trace
    index: int | None        # 0-based exchange of the dump that answered, if any
    message: str


class ReplayCard:
    """Answers each command with the recorded response of the next matching command."""

    def __init__(self, dump: Dump, *, strict: bool = False, unknown_sw: int = UNKNOWN_SW,
                 on_event: Callable[[ReplayEvent], None] | None = None,
                 on_mismatch: Callable[[ReplayMismatchError], None] | None = None,
                 on_finished: Callable[[], None] | None = None) -> None:
        self.dump = dump
        self.exchanges: list[DumpExchange] = list(dump.exchanges)
        self.atr = dump.atr
        self.protocol = dump.protocol
        self.strict = strict
        self.unknown_sw = unknown_sw
        self.on_event = on_event
        self.on_mismatch = on_mismatch
        self.on_finished = on_finished    # called after each answer once the dump is through
        self.position = 0                 # index of the next recorded exchange
        self.answered = 0                 # commands answered from the dump
        self.misses: list[ReplayEvent] = []
        self.rounds = 0                   # times the whole dump has been replayed
        self.powered = False

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike[str], **kwargs) -> ReplayCard:
        return cls(load_dump(path), **kwargs)

    @classmethod
    def from_text(cls, text: str, **kwargs) -> ReplayCard:
        return cls(parse_dump(text), **kwargs)

    # -- VirtualCard ----------------------------------------------------------------------
    def power_on(self) -> bytes:
        self.powered = True
        return self.atr

    def power_off(self) -> None:
        self.powered = False

    def process(self, command: bytes) -> bytes:
        response = self._answer(bytes(command))
        if self.on_finished is not None and self.finished:
            self.on_finished()
        return response

    def _answer(self, command: bytes) -> bytes:
        shown = mask_command(command)
        index, how = self._find(command)
        if index is None:
            return self._miss(command, shown)
        exchange = self.exchanges[index]
        self.position = index + 1
        if self.position >= len(self.exchanges):
            self.rounds += 1
        if exchange.error is not None:
            self._event(ReplayEvent("torn", shown, index,
                                    f"#{index + 1} was recorded as {exchange.error}: tearing"))
            raise CardTornError(exchange.error)
        self.answered += 1
        if how != "exact":
            self._event(ReplayEvent(how, shown, index,
                                    f"{shown} answered by #{index + 1} "
                                    f"(dump line {exchange.line}, {how} match)"))
        return unmask_response(exchange.response or "")

    # -- state ----------------------------------------------------------------------------
    @property
    def finished(self) -> bool:
        """The whole dump has been answered through at least once."""
        return self.rounds > 0

    def rewind(self) -> None:
        self.position = 0

    # -- matching -------------------------------------------------------------------------
    def _order(self) -> list[int]:
        n = len(self.exchanges)
        start = self.position if self.position < n else 0
        return [*range(start, n), *range(0, start)]

    def _find(self, command: bytes) -> tuple[int | None, str]:
        order = self._order()
        if not order:
            return None, "unknown"
        if self.strict:
            first = order[0]
            ex = self.exchanges[first]
            if command_matches(ex, command):
                return first, "masked" if ex.masked else "exact"
            return None, "mismatch"
        for i in order:
            ex = self.exchanges[i]
            if command_matches(ex, command):
                return i, "masked" if ex.masked else "exact"
        first = order[0]
        if header_matches(self.exchanges[first], command):
            return first, "position"
        return None, "unknown"

    def _miss(self, command: bytes, shown: str) -> bytes:
        sw = f"{self.unknown_sw:04X}"
        if self.strict:
            nxt = self._order()[0] if self.exchanges else None
            expected = (f"expected #{nxt + 1} {self.exchanges[nxt].command} "
                        f"(dump line {self.exchanges[nxt].line})" if nxt is not None
                        else "the dump has no exchanges")
            message = f"replay: {shown} is not the next command of the dump; {expected}"
            event = ReplayEvent("mismatch", shown, None, message)
            self.misses.append(event)
            self._event(event)
            error = ReplayMismatchError(message)
            if self.on_mismatch is None:
                raise error
            self.on_mismatch(error)
            return self.unknown_sw.to_bytes(2, "big")
        event = ReplayEvent("unknown", shown, None,
                            f"replay: {shown} is not in the dump: answered {sw}")
        self.misses.append(event)
        self._event(event)
        return self.unknown_sw.to_bytes(2, "big")

    def _event(self, event: ReplayEvent) -> None:
        if event.how in ("unknown", "mismatch"):
            log.warning("%s", event.message)
        else:
            log.info("%s", event.message)
        if self.on_event is not None:
            self.on_event(event)


def command_matches(exchange: DumpExchange, command: bytes) -> bool:
    """Same length and every visible byte equal (``**`` in the dump matches any byte)."""
    if len(command) != exchange.command_len:
        return False
    pattern = exchange.command
    for i, byte in enumerate(command):
        pair = pattern[2 * i:2 * i + 2]
        if pair != "**" and pair != f"{byte:02X}":
            return False
    return True


def header_matches(exchange: DumpExchange, command: bytes) -> bool:
    """Same CLA INS P1 P2 and the same length: the loose, position-only rule."""
    return (len(command) == exchange.command_len and len(command) >= 4
            and exchange.command[:8] == command[:4].hex().upper())


def unmask_response(text: str) -> bytes:
    """Recorded response hex → bytes; masked PAN digits become zeros, Luhn kept valid."""
    if "*" not in text:
        return bytes.fromhex(text)
    nibbles = list(text.replace("*", "0"))
    hidden = [i for i, ch in enumerate(text) if ch == "*"]
    raw = bytes.fromhex("".join(nibbles))
    for tag, start, end, _cut in _pan_spans(raw[:-2]):
        if tag in ASCII_TRACK_TAGS:
            continue                          # track 1 text: masked whole, no Luhn to keep
        lo, hi = 2 * start, 2 * end
        inside = [i for i in hidden if lo <= i < hi]
        if not inside:
            continue
        last = inside[-1]
        for digit in "0123456789":
            nibbles[last] = digit
            digits = "".join(nibbles[lo:hi]).split("D")[0].rstrip("F")
            if digits.isdigit() and luhn_ok(digits):
                break
    return bytes.fromhex("".join(nibbles))


def luhn_ok(digits: str) -> bool:
    total = 0
    for n, ch in enumerate(reversed(digits)):
        d = int(ch)
        if n % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0
