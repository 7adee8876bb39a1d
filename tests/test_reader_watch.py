"""Waiting for a card (`--wait`) and watching readers (`readers --watch`), without pcscd.

The PC/SC side is replaced by scripted reader lists; the same code runs through the real
pcscd in tests/hil/test_pcscd_tools.py.
"""

from __future__ import annotations

import pytest

from sbcard.errors import NoCardError, NoServiceError, ReaderNotFoundError
from sbcard.ops import readers as ops_readers
from sbcard.ops.readers import ReaderReport, reader_changes, wait_for_card, watch_readers
from sbcard.transport import pcsc
from sbcard.transport.pcsc import ReaderInfo

ATR = bytes.fromhex("3B6D000000814A44468660519900000001")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def scripted(monkeypatch, states: list[object]) -> None:
    """``list_readers`` answers from ``states`` in turn (then repeats the last one)."""
    def list_readers():
        state = states.pop(0) if len(states) > 1 else states[0]
        if isinstance(state, Exception):
            raise state
        return state

    monkeypatch.setattr(pcsc, "list_readers", list_readers)


def info(card: bool, name: str = "ACME 00 00", index: int = 0) -> ReaderInfo:
    return ReaderInfo(index, name, card, ATR if card else b"")


def test_wait_outlasts_no_pcscd_no_reader_and_an_empty_reader(monkeypatch):
    scripted(monkeypatch, [NoServiceError("pcscd is not running"),
                           ReaderNotFoundError("no card reader found"),
                           [info(False)], [info(False)], [info(True)]])
    clock, said = Clock(), []
    name = wait_for_card(None, 10, say=said.append, clock=clock, sleep=clock.sleep)
    assert name == "ACME 00 00"
    assert said == ["insert the card 请插入卡片 (waiting up to 10 s: pcscd is not running)"]
    assert clock.now == pytest.approx(0.4)


def test_wait_times_out_with_the_last_reason(monkeypatch):
    scripted(monkeypatch, [[info(False)]])
    clock = Clock()
    with pytest.raises(NoCardError, match=r"ACME 00 00: no card in the reader \(waited 2 s\)"):
        wait_for_card(None, 2, clock=clock, sleep=clock.sleep)
    assert clock.now == pytest.approx(2.0)


def test_wait_refuses_an_ambiguous_reader_at_once(monkeypatch):
    scripted(monkeypatch, [[info(False, "ACME 00 00", 0), info(False, "ACME 00 01", 1)]])
    clock = Clock()
    with pytest.raises(ReaderNotFoundError, match="matches 2 readers"):
        wait_for_card("ACME", 30, clock=clock, sleep=clock.sleep)
    assert clock.now == 0


def test_wait_with_a_card_already_in_says_nothing(monkeypatch):
    scripted(monkeypatch, [[info(True)]])
    said: list[str] = []
    assert wait_for_card("0", 5, say=said.append) == "ACME 00 00" and said == []


def report(card: bool, atr: str = ATR.hex().upper(), name: str = "R 00",
           index: int = 0) -> ReaderReport:
    return ReaderReport(index, name, card, atr if card else "", "type" if card else "")


def test_changes_between_snapshots():
    first = reader_changes(None, {"R 00": report(True)}, 1.0)
    assert [e.event for e in first] == ["reader present", "card present"]
    cases = [
        ({"R 00": report(False)}, {"R 00": report(True)}, ["card inserted"]),
        ({"R 00": report(True)}, {"R 00": report(False)}, ["card removed"]),
        ({"R 00": report(True)}, {"R 00": report(True, "3B00")}, ["card changed"]),
        ({"R 00": report(True)}, {"R 00": report(True)}, []),
        ({}, {"R 00": report(True)}, ["reader added", "card inserted"]),
        ({"R 00": report(True)}, {}, ["reader removed"]),
    ]
    for before, after, events in cases:
        assert [e.event for e in reader_changes(before, after, 2.0)] == events


def test_watch_survives_a_pcscd_restart():
    snapshots: list[object] = [
        {"R 00": report(False)},
        NoServiceError("pcscd is not running"),
        NoServiceError("pcscd is not running"),
        ReaderNotFoundError("no card reader found"),       # pcscd back, reader not yet
        {"R 00": report(True)},
    ]

    def snapshot():
        item = snapshots.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    events = list(watch_readers(should_stop=lambda: not snapshots, snapshot=snapshot,
                                sleep=lambda _s: None))
    assert [e.event for e in events] == [
        "reader present", "pcscd lost", "pcscd back", "reader removed", "reader added",
        "card inserted"]
    lost = events[1]
    assert lost.detail == "pcscd is not running" and lost.to_json()["reader"] is None
    line = events[-1].text()
    assert "0: R 00  插卡 card inserted  ATR 3B6D" in line
    assert set(events[-1].to_json()) == {"time", "event", "reader", "index", "atr",
                                         "card_type", "detail"}
    assert set(ops_readers.EVENTS) >= {e.event for e in events}


def test_wait_for_a_reader_still_to_be_plugged_in(monkeypatch):
    # "no reader matches 'ACME'" is a reader not there yet: wait for it (unlike a fragment
    # that matches two readers).
    scripted(monkeypatch, [[info(False, "Other 00 00")], [info(False, "Other 00 00")],
                           [info(False, "Other 00 00"), info(True, "ACME 00 00", 1)]])
    clock = Clock()
    assert wait_for_card("ACME", 10, clock=clock, sleep=clock.sleep) == "ACME 00 00"
    assert clock.now == pytest.approx(0.2)


def test_wait_never_settles_for_the_psams_reader(monkeypatch):
    psam_reader = info(True, "PSAM 00 00", 0)
    scripted(monkeypatch, [[psam_reader, info(False, "ACME 00 00", 1)],
                           [psam_reader, info(True, "ACME 00 00", 1)]])
    clock = Clock()
    name = wait_for_card(None, 10, clock=clock, sleep=clock.sleep,
                         reserved={"PSAM 00 00": "the PSAM (--psam)"})
    assert name == "ACME 00 00" and clock.now == pytest.approx(0.1)


def test_wait_refuses_the_psams_reader_at_once(monkeypatch):
    from sbcard.errors import ReaderChoiceError

    scripted(monkeypatch, [[info(True, "PSAM 00 00", 0)]])
    clock = Clock()
    with pytest.raises(ReaderChoiceError, match="PSAM 00 00 holds the PSAM"):
        wait_for_card("PSAM", 10, clock=clock, sleep=clock.sleep,
                      reserved={"PSAM 00 00": "the PSAM (--psam)"})
    assert clock.now == 0
