"""Which readers are there and what is in them."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from sbcard.errors import (
    BadInputError,
    NoCardError,
    NoServiceError,
    ReaderChoiceError,
    ReaderNotFoundError,
    TransportError,
)
from sbcard.ops.identify import identify_atr
from sbcard.transport import pcsc


@dataclass(frozen=True)
class ReaderReport:
    index: int
    name: str
    card_present: bool
    atr: str
    card_type: str

    def to_json(self) -> dict:
        return {"index": self.index, "name": self.name, "card_present": self.card_present,
                "atr": self.atr or None, "card_type": self.card_type or None}


def reader_reports() -> list[ReaderReport]:
    out = []
    for r in pcsc.list_readers():
        card_type = ""
        if r.card_present:
            try:
                card_type = identify_atr(r.atr).card_type
            except BadInputError as exc:
                card_type = f"unparsable ATR ({exc})"
        out.append(ReaderReport(r.index, r.name, r.card_present, r.atr.hex().upper(), card_type))
    return out


def reader_name(spec: str) -> str:
    """The full name of the reader ``spec`` (index, name or fragment) designates now."""
    return pcsc.choose_reader(pcsc.list_readers(), spec).name


# -- waiting for a card ---------------------------------------------------------------------


def wait_for_card(reader: str | None, timeout_s: float,
                  say: Callable[[str], None] | None = None, poll: float = 0.1,
                  clock: Callable[[], float] = time.monotonic,
                  sleep: Callable[[float], None] = time.sleep,
                  reserved: Mapping[str, str] | None = None) -> str:
    """Wait until the chosen reader holds a card; returns the reader's name.

    For a technician who starts the command and then inserts the card. While waiting, a
    missing pcscd, a reader not plugged in yet or an empty reader are all waited out; ``say``
    hears once that we are waiting. On timeout the last reason is raised (``NoCardError``,
    ``ReaderNotFoundError`` or ``NoServiceError``), with how long we waited. An ambiguous
    reader name is not something time fixes: it is raised at once. ``reserved`` readers (the
    PSAM's) are never taken for the card's (see ``choose_reader``).
    """
    deadline = clock() + timeout_s
    told = False
    while True:
        try:
            info = pcsc.choose_reader(pcsc.list_readers(), reader, reserved)
            if info.card_present:
                return info.name
            problem: TransportError = NoCardError(f"{info.name}: no card in the reader")
        except ReaderChoiceError:                       # ambiguous, or the PSAM's reader
            raise
        except (NoServiceError, ReaderNotFoundError) as exc:
            problem = exc
        if clock() >= deadline:
            raise type(problem)(f"{problem} (waited {timeout_s:g} s)") from None
        if not told and say is not None:
            say(f"insert the card 请插入卡片 (waiting up to {timeout_s:g} s: {problem})")
            told = True
        sleep(poll)


# -- watching readers -----------------------------------------------------------------------


@dataclass(frozen=True)
class ReaderEvent:
    """Something that changed: a reader came or went, a card was inserted or removed."""

    at: float                     # time.time() when it was seen
    event: str                    # see EVENTS
    reader: str | None = None
    index: int | None = None
    atr: str | None = None
    card_type: str | None = None
    detail: str | None = None

    def to_json(self) -> dict:
        return {"time": _iso(self.at), "event": self.event, "reader": self.reader,
                "index": self.index, "atr": self.atr, "card_type": self.card_type,
                "detail": self.detail}

    def text(self) -> str:
        zh = EVENTS[self.event]
        where = f"{self.index}: {self.reader}  " if self.reader is not None else ""
        card = f"  ATR {self.atr}  {self.card_type}" if self.atr else ""
        why = f"  ({self.detail})" if self.detail else ""
        return f"{_iso(self.at)[11:19]}  {where}{zh} {self.event}{card}{why}"


#: Event names (stable, for --json) and their Chinese labels.
EVENTS: dict[str, str] = {
    "reader present": "读卡器",
    "reader added": "读卡器接入",
    "reader removed": "读卡器拔出",
    "card present": "有卡",
    "card inserted": "插卡",
    "card removed": "拔卡",
    "card changed": "换卡",
    "pcscd lost": "pcscd 中断",
    "pcscd back": "pcscd 恢复",
}


def _iso(at: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(at).astimezone().isoformat(timespec="seconds")


def _snapshot() -> dict[str, ReaderReport]:
    return {r.name: r for r in reader_reports()}


def reader_changes(before: dict[str, ReaderReport] | None, after: dict[str, ReaderReport],
                   at: float) -> list[ReaderEvent]:
    """The events between two snapshots (``before`` None: the first look, all 'present')."""
    def card(kind: str, r: ReaderReport) -> ReaderEvent:
        return ReaderEvent(at, kind, r.name, r.index, r.atr or None, r.card_type or None)

    events: list[ReaderEvent] = []
    if before is None:
        for r in after.values():
            events.append(ReaderEvent(at, "reader present", r.name, r.index))
            if r.card_present:
                events.append(card("card present", r))
        return events
    for name, old in before.items():
        if name not in after:
            events.append(ReaderEvent(at, "reader removed", name, old.index))
    for name, r in after.items():
        prev = before.get(name)
        if prev is None:
            events.append(ReaderEvent(at, "reader added", name, r.index))
            if r.card_present:
                events.append(card("card inserted", r))
        elif r.card_present and not prev.card_present:
            events.append(card("card inserted", r))
        elif prev.card_present and not r.card_present:
            events.append(ReaderEvent(at, "card removed", name, r.index))
        elif r.card_present and r.atr != prev.atr:
            events.append(card("card changed", r))
    return events


def watch_readers(poll: float = 0.2, should_stop: Callable[[], bool] = lambda: False,
                  snapshot: Callable[[], dict[str, ReaderReport]] = _snapshot,
                  sleep: Callable[[float], None] = time.sleep) -> Iterator[ReaderEvent]:
    """Events as readers and cards come and go, until ``should_stop()``.

    Each look opens a fresh PC/SC context, so a pcscd restart is an event pair ("pcscd
    lost", "pcscd back"), not the end of the watch (pyscard's monitor dies silently there).
    """
    before: dict[str, ReaderReport] | None = None
    lost: str | None = None
    while not should_stop():
        at = time.time()
        try:
            after = _snapshot_or_raise(snapshot)
        except NoServiceError as exc:
            if lost is None:
                yield ReaderEvent(at, "pcscd lost", detail=str(exc))
                lost = str(exc)
            sleep(poll)
            continue
        if lost is not None:
            yield ReaderEvent(at, "pcscd back")
            lost = None
        yield from reader_changes(before, after, at)
        before = after
        sleep(poll)


def _snapshot_or_raise(snapshot: Callable[[], dict[str, ReaderReport]]
                       ) -> dict[str, ReaderReport]:
    try:
        return snapshot()
    except ReaderNotFoundError:                        # pcscd up, no reader at all
        return {}
