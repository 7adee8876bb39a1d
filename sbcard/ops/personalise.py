"""Batch personalisation: holders in, finished cards out, every step in the journal.

One worker per reader ("slot"). A worker waits for a card, reads its 卡的识别码, asks the
journal for this card's holder (its own if it was started before, else the next pending one),
runs the recipe script with that holder's CSV row as variables (write EF05/EF06 through
UKSSSE, set the PIN, read back and compare), records the outcome, and waits for the card to
be taken out. A card pulled mid-way is marked ``torn`` and resumed, from the top of the
recipe (its writes are idempotent), when it comes back; a killed process resumes the same way
with ``--resume``.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from sbcard.apdu import commands as cmds
from sbcard.apdu.channel import ApduChannel
from sbcard.apdu.commands import RecordMode
from sbcard.card.elements import element, split_records
from sbcard.card.filesystem import EF05
from sbcard.card.profiles import CardProfile
from sbcard.errors import (
    BadInputError,
    CardRemovedError,
    NoCardError,
    SbcardError,
    TransportError,
)
from sbcard.keys.base import KeySource
from sbcard.ops.holders import Holder, sheet_row
from sbcard.ops.journal import CardElsewhereError, Journal
from sbcard.ops.read import select_ssse
from sbcard.ops.script import Script, ScriptContext, ScriptRunner
from sbcard.ops.script_ops import OPERATIONS
from sbcard.ops.session import StackOptions, open_channel
from sbcard.transport import pcsc

if TYPE_CHECKING:                  # the CA comes from the caller; its crypto loads with sm2-issue
    from sbcard.ops.pki_issue import CertificateAuthority


class CardSlot(Protocol):
    """Where cards are presented: a PC/SC reader, or a stack of simulated blank cards."""

    name: str

    def next_card(self, stop: threading.Event) -> ApduChannel | None:
        """Wait for a card and open a session on it (None when stopping or none will come)."""

    def release(self, channel: ApduChannel, *, finished: bool, wait: bool = True) -> None:
        """Close the session; wait until the card is taken out (readers) if ``wait``."""


@dataclass
class CardOutcome:
    slot: str
    card_id: str
    row_no: int | None           # data row, as the journal keeps it (``sheet_row`` for people)
    card_no: str | None
    outcome: str                 # done | torn | failed | refused | skipped | no holder left
    seconds: float
    detail: str | None = None
    crypto_seconds: float = 0.0

    def to_json(self) -> dict:
        return {"reader": self.slot, "card_id": self.card_id, "row": self.sheet_row,
                "card_no": self.card_no, "outcome": self.outcome,
                "seconds": round(self.seconds, 4), "detail": self.detail}

    @property
    def sheet_row(self) -> int | None:
        """The holder's row as the operator's spreadsheet numbers it (header = row 1)."""
        return None if self.row_no is None else sheet_row(self.row_no)


@dataclass
class BatchPlan:
    batch_id: int
    holders: dict[int, Holder]
    recipes: dict[str, Script]            # by generation key "2.0" / "3.0" (see recipe_key)
    keys: KeySource | None
    profile: CardProfile | None
    initial_pin: str | None = None
    ca: CertificateAuthority | None = None    # for 3.0 cards (sm2-issue)
    max_consecutive_failures: int = 3     # then stop: keys or recipe are wrong, not the cards
    on_outcome: Callable[[CardOutcome], None] = lambda _o: None
    stop: threading.Event = field(default_factory=threading.Event)
    stop_reason: str | None = None


def recipe_key(algorithm_id: int | None) -> str:
    """Which recipe a card gets: SM4 environment → the 3.0 recipe, otherwise 2.0."""
    return "3.0" if algorithm_id == 0x03 else "2.0"


def card_id_of(channel: ApduChannel) -> tuple[str, int | None]:
    """卡的识别码 (EF05 record 01) as 32 hex digits, and the FCI's algorithm id."""
    info = select_ssse(channel)
    r = channel.check(cmds.read_record(0x01, sfi=EF05.record_sfi, mode=RecordMode.FIRST_ID,
                                       le=element("EF05", 0x01).record_len))
    records = split_records(r.data)
    if not records or len(records[0].value) != 16:
        raise SbcardError("card has no 卡的识别码 (EF05 record 01): not initialised")
    return records[0].value.hex().upper(), info.algorithm_id


@functools.lru_cache(maxsize=8)
def _file_name(path: str) -> str:
    """A recipe's file name for the journal's step column (a Path per step cost more than
    the step's own journal write)."""
    return Path(path).name


def personalise_one(channel: ApduChannel, slot_name: str, journal: Journal,
                    plan: BatchPlan) -> CardOutcome:
    start = time.perf_counter()
    card_id, algorithm_id = card_id_of(channel)
    recipe = plan.recipes.get(recipe_key(algorithm_id))
    if recipe is None:
        return CardOutcome(slot_name, card_id, None, None, "refused", 0.0,
                           f"no recipe for {recipe_key(algorithm_id)} cards")
    try:
        claim = journal.claim(plan.batch_id, card_id, slot_name)
    except CardElsewhereError as exc:
        return CardOutcome(slot_name, card_id, None, None, "refused",
                           time.perf_counter() - start, str(exc))
    if claim is None:
        return CardOutcome(slot_name, card_id, None, None, "no holder left",
                           time.perf_counter() - start,
                           "no holder waiting (or the card is marked spoiled)")
    holder = plan.holders.get(claim.row_no)
    if holder is None or holder.ssn.upper() != claim.ssn:
        # another station loaded a different CSV under this batch's name: leave the card
        # to it (torn: it resumes there), never write this CSV's row to that holder's card
        journal.finish(plan.batch_id, claim.holder_id, "torn",
                       "holder not in this station's CSV")
        return CardOutcome(slot_name, card_id, claim.row_no, None, "refused",
                           time.perf_counter() - start,
                           f"card {card_id} belongs to a holder this station's CSV does not "
                           "have at that row; put it aside for the station with that CSV")
    if claim.done:
        return CardOutcome(slot_name, card_id, claim.row_no, holder.card_no, "skipped",
                           time.perf_counter() - start, "card already personalised")
    variables = dict(holder.values)
    if plan.initial_pin is not None and not variables.get("pin"):
        variables["pin"] = plan.initial_pin
    context = ScriptContext(keys=plan.keys, profile=plan.profile, variables=variables,
                            ca=plan.ca, operations=OPERATIONS)
    runner = ScriptRunner(channel, context)

    def on_step(st) -> None:
        journal.step(claim.holder_id, f"{_file_name(st.file)}:{st.line} {st.verb}")

    try:
        runner.run(recipe, on_step=on_step)
    except CardRemovedError as exc:
        journal.finish(plan.batch_id, claim.holder_id, "torn", str(exc))
        return CardOutcome(slot_name, card_id, claim.row_no, holder.card_no, "torn",
                           time.perf_counter() - start, str(exc))
    except SbcardError as exc:
        # A card that refuses its personalisation is rejected (spoiled, to be destroyed) and
        # its holder goes back to the queue for the next card: one holder, one good card.
        journal.finish(plan.batch_id, claim.holder_id, "failed", str(exc))
        journal.release(plan.batch_id, card_id, f"rejected: {exc}")
        return CardOutcome(slot_name, card_id, claim.row_no, holder.card_no, "failed",
                           time.perf_counter() - start,
                           f"card rejected, holder back in the queue: {exc}")
    journal.finish(plan.batch_id, claim.holder_id, "done",
                   "resumed after an interruption" if claim.resumed else None)
    return CardOutcome(slot_name, card_id, claim.row_no, holder.card_no, "done",
                       time.perf_counter() - start)


def run_slot(slot: CardSlot, journal_path: str | Path, plan: BatchPlan) -> None:
    """One worker: cards from ``slot`` until the batch is finished or ``plan.stop`` is set."""
    failures = 0
    with Journal(journal_path) as journal:
        while not plan.stop.is_set():
            if not journal.remaining(plan.batch_id):
                plan.stop.set()
                return
            channel = slot.next_card(plan.stop)
            if channel is None:
                return
            finished = False
            try:
                outcome = personalise_one(channel, slot.name, journal, plan)
                finished = outcome.outcome in ("done", "skipped", "failed", "refused",
                                               "no holder left")
            except (CardRemovedError, NoCardError) as exc:
                outcome = CardOutcome(slot.name, "?", None, None, "torn", 0.0, str(exc))
            except SbcardError as exc:
                # the card could not even be identified (no 卡的识别码, not a social
                # security card): nothing was written to it
                outcome = CardOutcome(slot.name, "?", None, None, "refused", 0.0,
                                      f"card not usable, nothing written: {exc}")
                finished = True
            plan.on_outcome(outcome)
            failures = failures + 1 if outcome.outcome in ("failed", "refused") else 0
            if failures >= plan.max_consecutive_failures:
                why = ("the key source or the recipe is likely wrong, not the cards"
                       if outcome.outcome == "failed" else "check which cards are presented")
                plan.stop_reason = (f"{failures} cards in a row were not personalised on "
                                    f"{slot.name} (last: {outcome.outcome} — {outcome.detail});"
                                    f" {why}; stopped")
                plan.stop.set()
            if hasattr(slot, "last_outcome"):
                slot.last_outcome = outcome    # what the robot's done/error command is told
            if not journal.remaining(plan.batch_id):
                plan.stop.set()            # tell the other slots, which may be waiting
            # the last card may stay in the reader: no need to wait for it to be taken out
            slot.release(channel, finished=finished, wait=not plan.stop.is_set())


# -- slots ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Robot:
    """Shell commands that drive a card robot or printer (like pySim's card handler):
    ``get`` puts the next card in the reader, ``done`` takes a finished card out, ``error``
    takes a failed or torn one to the reject bin. Each sees SBCARD_READER, SBCARD_CARD_ID,
    SBCARD_ROW, SBCARD_OUTCOME and SBCARD_DETAIL in its environment."""

    get: str | None = None
    done: str | None = None
    error: str | None = None
    timeout: float = 120.0

    def run(self, which: str, reader: str, outcome: CardOutcome | None = None) -> None:
        import os
        import subprocess

        command = getattr(self, which)
        if not command:
            return
        env = dict(os.environ, SBCARD_READER=reader, SBCARD_CARD_ID=outcome.card_id if outcome
                   else "", SBCARD_ROW="" if outcome is None or outcome.row_no is None
                   else str(outcome.sheet_row), SBCARD_OUTCOME=outcome.outcome if outcome else "",
                   SBCARD_DETAIL=(outcome.detail or "") if outcome else "")
        try:
            done = subprocess.run(command, shell=True, env=env, timeout=self.timeout,
                                  capture_output=True, text=True, check=False)
        except subprocess.TimeoutExpired:
            raise TransportError(f"robot {which} command did not finish in "
                                 f"{self.timeout:.0f} s") from None
        if done.returncode != 0:
            first = (done.stderr.strip().splitlines() or ["no message"])[0]
            raise TransportError(f"robot {which} command failed (exit {done.returncode}): "
                                 f"{first}")


class PcscSlot:
    """A PC/SC reader: wait for insertion, and for removal after each card (or let a robot
    put cards in and take them out)."""

    def __init__(self, reader: str | None,
                 session_factory: Callable[[str], AbstractContextManager[ApduChannel]],
                 poll: float = 0.05, say: Callable[[str], None] = lambda _m: None,
                 robot: Robot | None = None,
                 reserved: Mapping[str, str] | None = None) -> None:
        self.name = pcsc.choose_reader(pcsc.list_readers(), reader, reserved).name
        self._session_factory = session_factory
        self._poll = poll
        self._say = say
        self._ctx: AbstractContextManager[ApduChannel] | None = None
        self.robot = robot
        self.last_outcome: CardOutcome | None = None
        self._trouble: str | None = None        # what keeps the reader away, said once

    def _present(self) -> bool:
        """Is a card in the reader? A lost pcscd or an unplugged reader is waited out (a
        batch survives a pcscd restart), and said once when it starts and when it ends."""
        try:
            readers = {r.name: r for r in pcsc.list_readers()}
            trouble = None if self.name in readers else "the reader is gone (unplugged?)"
        except TransportError as exc:
            readers, trouble = {}, str(exc)
        if trouble != self._trouble:
            if trouble is not None:
                self._say(f"{self.name}: {trouble}; waiting for it 等待读卡器")
            else:
                self._say(f"{self.name}: reader back 读卡器已恢复")
            self._trouble = trouble
        info = readers.get(self.name)
        return info is not None and info.card_present

    def next_card(self, stop: threading.Event) -> ApduChannel | None:
        if self.robot is not None and not stop.is_set() and not self._present():
            self.robot.run("get", self.name)
        while not stop.is_set():
            if self._present():
                ctx = self._session_factory(self.name)
                try:
                    channel = ctx.__enter__()
                except (NoCardError, CardRemovedError):
                    stop.wait(self._poll)
                    continue
                self._ctx = ctx
                return channel
            stop.wait(self._poll)
        return None

    def release(self, channel: ApduChannel, *, finished: bool, wait: bool = True) -> None:
        ctx, self._ctx = self._ctx, None
        if ctx is not None:
            with contextlib.suppress(SbcardError):   # the card may already be gone
                ctx.__exit__(None, None, None)
        outcome, self.last_outcome = self.last_outcome, None
        if self.robot is not None:
            ok = outcome is not None and outcome.outcome in ("done", "skipped")
            self.robot.run("done" if ok else "error", self.name, outcome)
        elif finished:
            self._say(f"{self.name}: take the card out 请取出卡片")
        while wait and self._present():
            time.sleep(self._poll)


def check_distinct_slots(specs: Sequence[str], slots: Sequence[PcscSlot]) -> None:
    """Two workers on one reader would fight over each card: refuse before the first."""
    seen: dict[str, str] = {}
    for spec, slot in zip(specs, slots, strict=True):
        if slot.name in seen:
            raise BadInputError(f"--readers {seen[slot.name]!r} and {spec!r} are the same "
                                f"reader ({slot.name})")
        seen[slot.name] = spec


@contextmanager
def pcsc_session(reader: str, trace: Callable[[str], None] | None = None) -> Iterator[ApduChannel]:
    """A session on the card in ``reader`` (a PC/SC reader's name, as a ``PcscSlot`` has it)."""
    with open_channel(lambda: pcsc.PcscTransport(reader), StackOptions(trace=trace)) as channel:
        yield channel


def run_batch(slots: Sequence[CardSlot], journal_path: str | Path, plan: BatchPlan) -> None:
    """All slots in parallel (one thread each) until the batch is done or stopped."""
    if len(slots) == 1:
        run_slot(slots[0], journal_path, plan)
        return
    threads = [threading.Thread(target=run_slot, args=(s, journal_path, plan),
                                name=f"slot {s.name}", daemon=True) for s in slots]
    for t in threads:
        t.start()
    try:
        for t in threads:
            while t.is_alive():
                t.join(0.2)
    except KeyboardInterrupt:
        plan.stop.set()
        for t in threads:
            t.join(10)
        raise
