"""The activation audit log: SQLite, one row per attempt, written before the card is touched.

A row is inserted (and committed) as ``started`` before the first PIN command, then updated
step by step, so a card pulled out or a process killed mid-way leaves a row that says how far
it got. No PIN ever reaches the log; the ID number is stored masked.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sbcard.ops.private import ensure_private

SCHEMA = """
CREATE TABLE IF NOT EXISTS activation (
    id          INTEGER PRIMARY KEY,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    operator    TEXT NOT NULL,
    reader      TEXT,
    card_id     TEXT,
    card_no     TEXT,
    ssn_masked  TEXT,
    step        TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    detail      TEXT,
    hook        TEXT
);
"""


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def mask_ssn(ssn: str | None) -> str | None:
    if not ssn or len(ssn) < 8:
        return ssn
    return ssn[:4] + "*" * (len(ssn) - 8) + ssn[-4:]


@dataclass
class AuditEntry:
    id: int
    started_at: str
    finished_at: str | None
    operator: str
    reader: str | None
    card_id: str | None
    card_no: str | None
    ssn_masked: str | None
    step: str
    outcome: str
    detail: str | None
    hook: str | None


class AuditLog:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        ensure_private(self.path)          # 0600 whatever the umask: it names holders
        self.db = sqlite3.connect(self.path, isolation_level=None)   # autocommit each write
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(SCHEMA)

    def start(self, operator: str, reader: str | None) -> int:
        cur = self.db.execute(
            "INSERT INTO activation (started_at, operator, reader, step, outcome) "
            "VALUES (?, ?, ?, 'start', 'started')", (_now(), operator, reader))
        row = cur.lastrowid
        if row is None:                    # sqlite3 sets it after every INSERT
            raise RuntimeError("audit log: INSERT gave no row id")
        return row

    def update(self, row: int, **fields: str | None) -> None:
        allowed = {"card_id", "card_no", "ssn_masked", "step", "outcome", "detail", "hook"}
        bad = set(fields) - allowed
        if bad:
            raise ValueError(f"unknown audit fields {bad}")
        sets = ", ".join(f"{k} = ?" for k in fields)
        self.db.execute(f"UPDATE activation SET {sets} WHERE id = ?", (*fields.values(), row))

    def finish(self, row: int, outcome: str, detail: str | None = None) -> None:
        self.db.execute("UPDATE activation SET outcome = ?, detail = ?, finished_at = ? "
                        "WHERE id = ?", (outcome, detail, _now(), row))

    def entries(self, limit: int = 50) -> list[AuditEntry]:
        rows = self.db.execute(
            "SELECT id, started_at, finished_at, operator, reader, card_id, card_no, ssn_masked,"
            " step, outcome, detail, hook FROM activation ORDER BY id DESC LIMIT ?", (limit,))
        return [AuditEntry(*r) for r in rows]

    def close(self) -> None:
        self.db.close()
