"""What a batch tells the operator and the bureau's files: per-card outcomes (the report),
the journal's status, and the operator's release of a spoiled card.

Outcomes arrive from several reader threads; ``OutcomeLog`` serialises them (one lock) so the
report and the screen see one card at a time. The report is created 0600 (it names holders)
and its CSV cells can never start a spreadsheet formula.
"""

from __future__ import annotations

import csv
import json
import threading
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any

from sbcard.errors import BadInputError
from sbcard.ops.audit import mask_ssn
from sbcard.ops.holders import sheet_row
from sbcard.ops.journal import Counts, Journal, is_server_url
from sbcard.ops.personalise import CardOutcome
from sbcard.ops.private import open_private

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: object) -> str:
    """A CSV cell that Excel/LibreOffice show as text, never evaluate (CSV injection)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


class ReportWriter:
    """Per-card report: ``.csv`` (header once, formula-safe cells) or JSON lines.
    ``stream``: write JSON lines there instead of a file (``--report -``: stdout)."""

    def __init__(self, path: Path, stream: IO[str] | None = None) -> None:
        self.path = Path(path)
        self._own = stream is None
        if stream is not None:
            self._f: IO[str] = stream
        else:
            try:
                self._f = open_private(self.path, "a")
            except OSError as exc:
                raise BadInputError(f"report {path}: {exc.strerror}") from None
        self._csv = self._own and self.path.suffix.lower() == ".csv"
        self._header = self._own and self._f.tell() == 0

    def write(self, outcome: CardOutcome) -> None:
        row = outcome.to_json()
        if self._csv:
            w = csv.writer(self._f)
            if self._header:
                w.writerow(list(row))
                self._header = False
            w.writerow([spreadsheet_safe(v) for v in row.values()])
        else:
            self._f.write(json.dumps(row, ensure_ascii=False) + "\n")
        self._f.flush()

    def close(self) -> None:
        if self._own:
            self._f.close()
        else:
            self._f.flush()

    def __enter__(self) -> ReportWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class OutcomeLog:
    """Collects the outcomes of every slot, one at a time, and passes each on."""

    def __init__(self, report: ReportWriter | None = None,
                 on_outcome: Callable[[CardOutcome], None] = lambda _o: None) -> None:
        self.outcomes: list[CardOutcome] = []
        self._lock = threading.Lock()
        self._report = report
        self._on_outcome = on_outcome

    def __call__(self, outcome: CardOutcome) -> None:
        with self._lock:
            self.outcomes.append(outcome)
            if self._report is not None:
                self._report.write(outcome)
            self._on_outcome(outcome)


def describe(outcome: CardOutcome) -> str:
    """One line for the operator about a card that did not simply get done."""
    card = "unidentified card" if outcome.card_id == "?" else f"card {outcome.card_id}"
    row = f" (CSV row {outcome.sheet_row})" if outcome.row_no is not None else ""
    return f"{outcome.slot}: {card}{row}: {outcome.outcome}" + (
        f" — {outcome.detail}" if outcome.detail else "")


def summary(c: Counts) -> str:
    extra = f", already had a card 已有卡 {c.had_card}" if c.had_card else ""
    return (f"done 完成 {c.done - c.had_card}/{c.total}{extra}, failed 失败 "
            f"{c.failed + c.rejected} (rejected cards 废卡 {c.rejected}), unfinished 未完成 "
            f"{c.pending + c.in_progress}")


def open_existing(holders: Path, location: str | Path) -> tuple[Journal, int]:
    """The journal and batch of an existing batch (for --status, --release)."""
    if not is_server_url(location) and not Path(location).exists():
        raise BadInputError(f"no journal at {location}")
    journal = Journal(location)
    try:
        batch_id = journal.find_batch(holders)
        if batch_id is None:
            raise BadInputError(f"{journal.path} has no batch {Path(holders).name}")
    except BaseException:
        journal.close()
        raise
    return journal, batch_id


def status_lines(journal: Journal, batch_id: int) -> list[str]:
    """One truth per holder: the state of their latest card, and the batch's counts."""
    lines = []
    for r in journal.holders(batch_id):
        row_no, ssn, card_no, card_id, status, step, attempts, _reader, detail, note, issue = r
        state = "had a card" if note else status
        reissue = f" re-issue {issue}" if issue > 1 else ""
        lines.append(f"row {sheet_row(row_no):>4} ID {mask_ssn(ssn)} {card_no} "
                     f"card {card_id or '-':32} "
                     f"{state:<11}{reissue} attempts {attempts} {step or ''}"
                     f"{' — ' + detail if detail else ''}")
    c = journal.counts(batch_id)
    lines.append(f"{c.done - c.had_card}/{c.total} done, {c.had_card} had a card before, "
                 f"{c.rejected} cards rejected, {c.pending} pending, {c.in_progress} in "
                 "progress/torn")
    return lines


#: The keys of one holder in :func:`status_json`, in the journal's column order.
STATUS_KEYS = ("row", "ssn", "card_no", "card_id", "status", "step", "attempts", "reader",
               "detail", "note", "issue_no")


def status_json(journal: Journal, batch_id: int) -> dict[str, Any]:
    """``personalise --status --json``: every holder (ID number masked, spreadsheet row) and
    the batch's counts."""
    holders = []
    for r in journal.holders(batch_id):
        entry = dict(zip(STATUS_KEYS, r, strict=True))
        entry["ssn"] = mask_ssn(entry["ssn"])
        entry["row"] = sheet_row(entry["row"])
        holders.append(entry)
    return {"holders": holders, "counts": asdict(journal.counts(batch_id))}


def release_card(journal: Journal, batch_id: int, card_id: str) -> str:
    row_no = journal.release(batch_id, card_id.upper(), "released by operator")
    row = "" if row_no is None else f" row {sheet_row(row_no)}"
    return f"card {card_id} marked spoiled; holder{row} is waiting for a card again"
