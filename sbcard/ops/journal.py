"""The personalisation journal: which holder went to which card, and how far each card got.

SQLite (WAL, one connection per worker thread). The invariants are plain SQL constraints
that a server database would keep as well, but this module speaks SQLite only (identity
columns, ``?`` placeholders, ``BEGIN IMMEDIATE``); a PostgreSQL dialect for several stations
is future work. The invariants are enforced by the schema, not by hope: a card ID appears on at most one holder row (UNIQUE), a holder row has at most one
card, and a holder is handed out inside one ``BEGIN IMMEDIATE`` transaction so two readers
can never take the same one. Every step is written before it runs, so a pulled card or a
killed process leaves a row saying where it stopped; ``--resume`` continues from there.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sbcard.errors import RefusedError

SCHEMA = """
CREATE TABLE IF NOT EXISTS batch (
    id          INTEGER PRIMARY KEY,
    csv_sha256  TEXT NOT NULL UNIQUE,
    csv_path    TEXT NOT NULL,
    recipe      TEXT,
    created_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS holder (
    batch_id    INTEGER NOT NULL REFERENCES batch(id),
    row_no      INTEGER NOT NULL,
    ssn         TEXT NOT NULL,
    card_no     TEXT NOT NULL,
    card_id     TEXT UNIQUE,          -- NULL until a card is taken; one card, one holder
    status      TEXT NOT NULL,        -- pending | in_progress | torn | done | failed
    step        TEXT,
    attempts    INTEGER NOT NULL DEFAULT 0,
    reader      TEXT,
    detail      TEXT,
    updated_at  TEXT,
    PRIMARY KEY (batch_id, row_no),
    UNIQUE (batch_id, ssn)
);
CREATE TABLE IF NOT EXISTS event (
    id          INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,
    batch_id    INTEGER NOT NULL,
    row_no      INTEGER,
    card_id     TEXT,
    reader      TEXT,
    what        TEXT NOT NULL,
    detail      TEXT
);
CREATE TABLE IF NOT EXISTS spoiled (
    card_id     TEXT PRIMARY KEY,
    batch_id    INTEGER NOT NULL,
    row_no      INTEGER,
    at          TEXT NOT NULL,
    reason      TEXT
);
"""


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@dataclass(frozen=True)
class Claim:
    row_no: int
    resumed: bool          # the card had this holder already (torn or interrupted before)
    done: bool             # the card is already finished: nothing to do


@dataclass(frozen=True)
class Counts:
    total: int
    pending: int
    in_progress: int
    done: int
    failed: int

    @property
    def remaining(self) -> int:
        return self.total - self.done - self.failed


class Journal:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.db = sqlite3.connect(self.path, isolation_level=None, timeout=30,
                                  check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # -- batches -----------------------------------------------------------------------------
    def open_batch(self, csv_path: Path, holders: list, recipe: str, *, resume: bool) -> int:
        """The batch for this CSV: created, or found again (only with ``resume``)."""
        sha = file_sha256(csv_path)
        with self.tx() as db:
            row = db.execute("SELECT id FROM batch WHERE csv_sha256 = ?", (sha,)).fetchone()
            if row is not None:
                if not resume:
                    c = self._counts(db, row[0])
                    raise RefusedError(
                        f"{csv_path} was started before in {self.path} ({c.done} done, "
                        f"{c.remaining} to go): add --resume to continue it")
                return int(row[0])
            cur = db.execute("INSERT INTO batch (csv_sha256, csv_path, recipe, created_at) "
                             "VALUES (?, ?, ?, ?)", (sha, str(csv_path), recipe, _now()))
            batch_id = int(cur.lastrowid)
            db.executemany(
                "INSERT INTO holder (batch_id, row_no, ssn, card_no, status) "
                "VALUES (?, ?, ?, ?, 'pending')",
                [(batch_id, h.row, h.ssn.upper(), h.card_no) for h in holders])
            db.execute("INSERT INTO event (at, batch_id, what, detail) VALUES (?, ?, ?, ?)",
                       (_now(), batch_id, "batch created", f"{len(holders)} holders"))
            return batch_id

    # -- cards --------------------------------------------------------------------------------
    def claim(self, batch_id: int, card_id: str, reader: str) -> Claim | None:
        """The holder for this card: its own if it had one, else the next pending one.

        None when the card is spoiled or no holder is left.
        """
        with self.tx() as db:
            if db.execute("SELECT 1 FROM spoiled WHERE card_id = ?", (card_id,)).fetchone():
                return None
            row = db.execute("SELECT batch_id, row_no, status FROM holder WHERE card_id = ?",
                             (card_id,)).fetchone()
            if row is not None:
                b, row_no, status = row
                if b != batch_id:
                    raise RefusedError(f"card {card_id} belongs to another batch (#{b})")
                if status == "done":
                    return Claim(row_no, True, True)
                db.execute("UPDATE holder SET status = 'in_progress', attempts = attempts + 1,"
                           " reader = ?, updated_at = ? WHERE batch_id = ? AND row_no = ?",
                           (reader, _now(), batch_id, row_no))
                self._event(db, batch_id, row_no, card_id, reader, "resumed", status)
                return Claim(row_no, True, False)
            nxt = db.execute("SELECT row_no FROM holder WHERE batch_id = ? AND status = "
                             "'pending' AND card_id IS NULL ORDER BY row_no LIMIT 1",
                             (batch_id,)).fetchone()
            if nxt is None:
                return None
            db.execute("UPDATE holder SET card_id = ?, status = 'in_progress', attempts = 1,"
                       " reader = ?, updated_at = ? WHERE batch_id = ? AND row_no = ?",
                       (card_id, reader, _now(), batch_id, nxt[0]))
            self._event(db, batch_id, nxt[0], card_id, reader, "assigned", None)
            return Claim(nxt[0], False, False)

    def step(self, batch_id: int, row_no: int, step: str) -> None:
        self.db.execute("UPDATE holder SET step = ?, updated_at = ? WHERE batch_id = ? AND "
                        "row_no = ?", (step, _now(), batch_id, row_no))

    def finish(self, batch_id: int, row_no: int, status: str, detail: str | None = None) -> None:
        with self.tx() as db:
            db.execute("UPDATE holder SET status = ?, detail = ?, updated_at = ? WHERE "
                       "batch_id = ? AND row_no = ?", (status, detail, _now(), batch_id, row_no))
            card = db.execute("SELECT card_id, reader FROM holder WHERE batch_id = ? AND "
                              "row_no = ?", (batch_id, row_no)).fetchone()
            self._event(db, batch_id, row_no, card[0], card[1], status, detail)

    def release(self, batch_id: int, card_id: str, reason: str) -> int | None:
        """Mark a card spoiled (lost, broken) and give its holder back to the pending pool."""
        with self.tx() as db:
            row = db.execute("SELECT row_no, status FROM holder WHERE batch_id = ? AND "
                             "card_id = ?", (batch_id, card_id)).fetchone()
            if row is None:
                raise RefusedError(f"card {card_id} has no holder in this batch")
            if row[1] == "done":
                raise RefusedError(f"card {card_id} is finished (row {row[0]}); a done card is "
                                   "not released")
            db.execute("INSERT INTO spoiled (card_id, batch_id, row_no, at, reason) VALUES "
                       "(?, ?, ?, ?, ?)", (card_id, batch_id, row[0], _now(), reason))
            db.execute("UPDATE holder SET card_id = NULL, status = 'pending', step = NULL, "
                       "updated_at = ? WHERE batch_id = ? AND row_no = ?",
                       (_now(), batch_id, row[0]))
            self._event(db, batch_id, row[0], card_id, None, "released", reason)
            return int(row[0])

    def counts(self, batch_id: int) -> Counts:
        return self._counts(self.db, batch_id)

    @staticmethod
    def _counts(db: sqlite3.Connection, batch_id: int) -> Counts:
        rows = dict(db.execute("SELECT status, COUNT(*) FROM holder WHERE batch_id = ? "
                               "GROUP BY status", (batch_id,)).fetchall())
        total = sum(rows.values())
        return Counts(total, rows.get("pending", 0),
                      rows.get("in_progress", 0) + rows.get("torn", 0),
                      rows.get("done", 0), rows.get("failed", 0))

    def holders(self, batch_id: int) -> list[tuple]:
        return self.db.execute("SELECT row_no, ssn, card_no, card_id, status, step, attempts, "
                               "reader, detail FROM holder WHERE batch_id = ? ORDER BY row_no",
                               (batch_id,)).fetchall()

    @staticmethod
    def _event(db: sqlite3.Connection, batch_id: int, row_no: int | None, card_id: str | None,
               reader: str | None, what: str, detail: str | None) -> None:
        db.execute("INSERT INTO event (at, batch_id, row_no, card_id, reader, what, detail) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?)",
                   (_now(), batch_id, row_no, card_id, reader, what, detail))
