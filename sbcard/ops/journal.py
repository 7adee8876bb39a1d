"""The personalisation journal: which holder got which card, and how far each card got.

SQLite by default (a file, mode 0600; WAL, one connection per worker thread), PostgreSQL when
several stations share a bureau's work (``--journal postgresql://…``; needs the ``pg`` extra,
psycopg 3). The two differ only in a small dialect (placeholders, identity columns, how a
claim locks).

The journal knows *holders*, not files. A holder (ID number) has one row per card issued to
them (``issue_no`` 1, and 2, 3… only for an explicit re-issue), UNIQUE(ssn, issue_no): whatever
batch or CSV a holder arrives in, once they have a ``done`` card they are never personalised
again by accident. A batch is a named list of holders (the CSV's file name), so a re-saved or
corrected CSV is the same batch: rows already done are matched by ID number and kept, changed
data of an undone row is taken, changed data of a done row is reported.

The other invariants are enforced by the schema and by one locking transaction per claim
(SQLite ``BEGIN IMMEDIATE``; PostgreSQL ``LOCK TABLE holder IN SHARE ROW EXCLUSIVE MODE``): a
card ID appears on at most one holder row (UNIQUE), so two readers, or two stations, can
never take the same holder or card. Every step is written before it runs, so a pulled card or
a killed process leaves a row saying where it stopped; ``--resume`` continues from there.

Why the full ID number is stored: it is the holder's identity across CSVs (the only key that
stops a second card) and what ``--reissue`` names. The file is created 0600; messages and
``--status`` show it masked.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:                      # optional at run time: only a PostgreSQL journal needs it
    import psycopg

from sbcard.errors import BadInputError, RefusedError
from sbcard.ops.audit import mask_ssn
from sbcard.ops.holders import (  # noqa: F401 (data_sha256: its old home)
    Holder,
    Holders,
    data_sha256,
    sheet_row,
)
from sbcard.ops.private import ensure_private, redact_url

SCHEMA_VERSION = "2"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key         TEXT PRIMARY KEY,
    value       TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS batch (
    id          {identity},
    name        TEXT NOT NULL UNIQUE,  -- the CSV's file name: an edited CSV is the same batch
    csv_path    TEXT NOT NULL,
    csv_sha256  TEXT NOT NULL,         -- of the last load (its entries are that file's rows)
    recipe      TEXT,
    created_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS holder (
    id          {identity},
    ssn         TEXT NOT NULL,
    issue_no    INTEGER NOT NULL,      -- 1: the first card, 2…: an explicit re-issue
    batch_id    INTEGER NOT NULL,      -- the batch this issue was created in
    card_no     TEXT NOT NULL,
    data_sha256 TEXT NOT NULL,         -- the holder's CSV data (PIN excluded)
    card_id     TEXT UNIQUE,           -- NULL until a card is taken: one card, one holder
    status      TEXT NOT NULL,         -- pending | in_progress | torn | done | failed
    step        TEXT,
    attempts    INTEGER NOT NULL DEFAULT 0,
    reader      TEXT,
    detail      TEXT,
    updated_at  TEXT,
    UNIQUE (ssn, issue_no)
);
CREATE INDEX IF NOT EXISTS holder_busy ON holder (status)
    WHERE status IN ('in_progress', 'torn');
CREATE TABLE IF NOT EXISTS entry (
    batch_id    INTEGER NOT NULL REFERENCES batch(id),
    row_no      INTEGER NOT NULL,
    holder_id   INTEGER NOT NULL REFERENCES holder(id),
    open        INTEGER NOT NULL,      -- 1 while the holder waits for a card
    note        TEXT,                  -- 'had a card': done before this batch named them
    data_sha256 TEXT,                  -- the row's data_sha256 at the last load (NULL:
                                       -- unknown), so the same file resumes without re-checks
    PRIMARY KEY (batch_id, row_no),
    UNIQUE (batch_id, holder_id)
);
CREATE INDEX IF NOT EXISTS entry_open ON entry (batch_id, row_no) WHERE open = 1;
CREATE INDEX IF NOT EXISTS entry_holder ON entry (holder_id);
CREATE TABLE IF NOT EXISTS event (
    id          {identity},
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

HAD_A_CARD = "had a card"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _who(h: Holder, ssn: str) -> str:
    """A CSV row as a notice names it (masked: built only when there is something to say)."""
    return f"row {sheet_row(h.row)} (ID {mask_ssn(ssn)})"


def batch_name(csv_path: Path) -> str:
    return Path(csv_path).name


@dataclass(frozen=True)
class Claim:
    holder_id: int
    row_no: int            # the holder's row in this batch's CSV
    ssn: str
    resumed: bool          # the card had this holder already (torn or interrupted before)
    done: bool             # the card is already finished: nothing to do


@dataclass(frozen=True)
class Counts:
    total: int
    pending: int
    in_progress: int
    done: int              # including holders who had a card before this batch
    failed: int
    had_card: int = 0      # done before this batch named them (not made again)
    rejected: int = 0      # cards that refused their personalisation (spoiled, destroyed)

    @property
    def remaining(self) -> int:
        return self.total - self.done - self.failed


@dataclass
class BatchOpened:
    """The batch, and what the operator must hear about the CSV against the journal."""

    batch_id: int
    notices: list[str] = field(default_factory=list)   # one line each, operator's terms
    created: bool = False


class CardElsewhereError(RefusedError):
    """The card was started for a holder this batch does not name."""


def is_server_url(location: str | Path) -> bool:
    return str(location).startswith(("postgresql://", "postgres://"))


class _Db:
    """One connection in autocommit mode, with the dialect differences in one place."""

    def __init__(self, location: str | Path) -> None:
        self.server = is_server_url(location)
        self.conn: sqlite3.Connection | psycopg.Connection[Any] = self._connect(location)
        # Whatever fails once the connection is open (an older journal, a file that is no
        # database, a schema it cannot create: a view in a table's place, no CREATE right)
        # closes it before the error leaves: a caller that keeps the error (a service, a
        # retry loop, a test) must not keep the file or the server session too.
        try:
            self._set_up(location)
        except BaseException as exc:
            self.conn.close()
            if isinstance(exc, self._driver_errors()):     # the database's own words, 1 line
                raise BadInputError(f"journal {redact_url(str(location))}: "
                                    f"{_scrub(_first_line(exc), str(location))}") from None
            raise

    def _connect(self, location: str | Path) -> sqlite3.Connection | psycopg.Connection[Any]:
        """The open connection; nothing is left open when this raises."""
        if self.server:
            try:
                import psycopg
            except ImportError:
                raise BadInputError("a PostgreSQL journal needs psycopg: "
                                    "pip install 'sbcard[pg]'") from None
            try:
                return psycopg.connect(str(location), autocommit=True)
            except psycopg.OperationalError as exc:
                raise BadInputError(f"journal {redact_url(str(location))}: "
                                    f"{_scrub(_first_line(exc), str(location))}") from None
        try:
            ensure_private(location)
        except OSError as exc:
            raise BadInputError(f"journal {location}: {exc.strerror}") from None
        return sqlite3.connect(Path(location), isolation_level=None, timeout=30,
                               check_same_thread=False)

    def _driver_errors(self) -> tuple[type[BaseException], ...]:
        if self.server:
            import psycopg

            return (psycopg.Error,)
        return (sqlite3.Error,)

    def _set_up(self, location: str | Path) -> None:
        """Pragmas, the schema check and the tables (created if missing)."""
        if self.server:
            identity = "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
        else:
            for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):
                self.conn.execute(f"PRAGMA {pragma}")
            identity = "INTEGER PRIMARY KEY"
        self._check_version(location)
        if self.server:
            # Stations opening a new journal at once: PostgreSQL's CREATE … IF NOT EXISTS is
            # not safe against a concurrent creator (duplicate key in pg_type), so creating
            # the tables is one transaction under a lock per schema.
            self.conn.execute("BEGIN")
            self.conn.execute("SELECT pg_advisory_xact_lock(hashtext('sbcard journal ' || "
                              "current_schema()))")
        for statement in SCHEMA.format(identity=identity).split(";"):
            if statement.strip():
                self.conn.execute(statement)
        self._add_entry_digest()
        self.execute("INSERT INTO meta (key, value) VALUES ('schema', ?) ON CONFLICT (key) "
                     "DO NOTHING", (SCHEMA_VERSION,))
        if self.server:
            self.conn.execute("COMMIT")

    def _check_version(self, location: str | Path) -> None:
        """A journal of the first schema (batches by CSV hash) is not silently mixed in."""
        if self.server:
            old = self.conn.execute(
                "SELECT 1 FROM information_schema.columns WHERE table_schema = "
                "current_schema() AND table_name = 'holder' AND column_name = 'row_no'"
            ).fetchone()
        else:
            old = self.conn.execute("SELECT 1 FROM pragma_table_info('holder') WHERE "
                                    "name = 'row_no'").fetchone()
        if old:
            raise BadInputError(f"journal {redact_url(str(location))} was written by an older "
                                "sbcard (batches by CSV hash): finish it with that version, "
                                "or start a new journal with --journal")

    def _add_entry_digest(self) -> None:
        """Journals written before ``entry.data_sha256`` get the column (NULL: unknown)."""
        if self.server:
            self.conn.execute("ALTER TABLE entry ADD COLUMN IF NOT EXISTS data_sha256 TEXT")
        elif not self.conn.execute("SELECT 1 FROM pragma_table_info('entry') WHERE "
                                   "name = 'data_sha256'").fetchone():
            self.conn.execute("ALTER TABLE entry ADD COLUMN data_sha256 TEXT")

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.server else sql

    def execute(self, sql: str, params: tuple | list = ()):
        return self.conn.execute(self._sql(sql), params)

    def executemany(self, sql: str, rows: list) -> None:
        if not rows:
            return
        if isinstance(self.conn, sqlite3.Connection):
            self.conn.executemany(sql, rows)
        else:
            with self.conn.cursor() as cur:
                cur.executemany(self._sql(sql), rows)

    def begin_locked(self) -> None:
        if self.server:
            self.conn.execute("BEGIN")
            self.conn.execute("LOCK TABLE holder IN SHARE ROW EXCLUSIVE MODE")
        else:
            self.conn.execute("BEGIN IMMEDIATE")

    def close(self) -> None:
        self.conn.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _scrub(text: str, url: str) -> str:
    """Remove a URL's password from a driver message that may quote it."""
    from urllib.parse import urlsplit

    try:
        password = urlsplit(url).password
    except ValueError:
        return text
    return text.replace(password, "***") if password else text


def _chunks(items: list, size: int = 900) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


class Journal:
    """One connection to the journal; ``with Journal(path) as j:`` closes it."""

    def __init__(self, location: str | Path) -> None:
        self.location = str(location)
        self.path = redact_url(self.location)      # for messages: never a password
        self.db = _Db(location)

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def tx(self) -> Iterator[_Db]:
        self.db.begin_locked()
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def find_batch(self, csv_path: Path) -> int | None:
        row = self.db.execute("SELECT id FROM batch WHERE name = ?",
                              (batch_name(csv_path),)).fetchone()
        return None if row is None else int(row[0])

    # -- batches -----------------------------------------------------------------------------
    def open_batch(self, csv_path: Path, holders: list, recipe: str, *, resume: bool,
                   reissue: Iterable[str] = (), csv_sha256: str | None = None) -> BatchOpened:
        """The batch for this CSV (created, or found again with ``resume``), its holders
        matched against every holder the journal knows, by ID number.

        ``reissue``: ID numbers whose done card is replaced by a new one (a lost card), an
        explicit, audited act; a CSV column ``reissue`` (1/yes/是) asks the same per row.
        ``csv_sha256``: the CSV's hash when it is not a file to read (stdin).
        Holders from ``load_holders`` carry the hash of the bytes they were checked from:
        the batch keeps it, with each row's ``data_sha256``, for ``loaded_before``; and when
        those bytes are the ones loaded last time, only the rows whose holder changed since
        are matched again (``_unsettled``).
        """
        own = holders.file_sha256 if isinstance(holders, Holders) else ""
        sha = own or csv_sha256 or file_sha256(csv_path)
        name = batch_name(csv_path)
        wanted = {s.strip().upper() for s in reissue if s.strip()}
        with self.tx() as db:
            row = db.execute("SELECT id, csv_sha256 FROM batch WHERE name = ?",
                             (name,)).fetchone()
            created = row is None
            same_file = not created and bool(own) and row[1] == own
            if row is not None:
                if not resume:
                    c = self._counts(db, row[0])
                    raise RefusedError(
                        f"batch {name} was started before in {self.path} ({c.done} done, "
                        f"{c.remaining} to go): add --resume to continue it")
                batch_id = int(row[0])
                db.execute("UPDATE batch SET csv_path = ?, csv_sha256 = ? WHERE id = ?",
                           (str(csv_path), sha if own else "", batch_id))
            else:
                batch_id = int(db.execute(
                    "INSERT INTO batch (name, csv_path, csv_sha256, recipe, created_at) "
                    "VALUES (?, ?, ?, ?, ?) RETURNING id",
                    (name, str(csv_path), sha if own else "", recipe, _now())).fetchone()[0])
            opened = BatchOpened(batch_id, created=created)
            self._match_holders(db, batch_id, holders, wanted, opened.notices,
                                same_file=same_file)
            self._event(db, batch_id, None, None, None,
                        "batch created" if created else "batch loaded",
                        f"{len(holders)} holders, csv sha256 {sha[:16]}")
            return opened

    def _latest(self, db: _Db, ssns: list[str]) -> dict[str, tuple]:
        """Each known holder's latest issue: ssn → (id, issue_no, batch_id, data_sha256,
        status, card_id, updated_at). A batch that is much of the journal (a resume) reads
        the whole table in one pass: a 50,000-row scan costs less than as many index probes."""
        columns = "ssn, id, issue_no, batch_id, data_sha256, status, card_id, updated_at"
        total = db.execute("SELECT COUNT(*) FROM holder").fetchone()[0]
        if not total:
            return {}
        if len(ssns) * 4 >= total:
            wanted = set(ssns)
            rows = [r for r in db.execute(f"SELECT {columns} FROM holder").fetchall()
                    if r[0] in wanted]
        else:
            rows = [r for part in _chunks(ssns) for r in db.execute(
                f"SELECT {columns} FROM holder WHERE ssn IN ({', '.join('?' * len(part))})",
                part).fetchall()]
        latest: dict[str, tuple] = {}
        for r in rows:
            if r[0] not in latest or r[2] > latest[r[0]][1]:
                latest[r[0]] = tuple(r[1:])
        return latest

    @staticmethod
    def _unsettled(db: _Db, batch_id: int) -> dict[int, tuple]:
        """The batch's entries that matching could change or must speak about, for a
        load of exactly the file loaded last time (so each entry's ``data_sha256`` is its
        row's): row → (holder_id, open, note, data_sha256). Settled — left out — is an entry
        whose holder is still the latest issue of that ID number, with the same data, the
        ``open`` matching would give, no note, and not a card done in another batch: for it
        matching finds nothing to write and nothing to say."""
        return {int(r[0]): (int(r[1]), int(r[2]), r[3], r[4]) for r in db.execute(
            "SELECT e.row_no, e.holder_id, e.open, e.note, e.data_sha256 FROM entry e "
            "JOIN holder h ON h.id = e.holder_id WHERE e.batch_id = ? AND NOT COALESCE("
            "e.data_sha256 IS NOT NULL AND e.data_sha256 = h.data_sha256 AND e.note IS NULL"
            " AND e.open = CASE WHEN h.status = 'pending' AND h.card_id IS NULL THEN 1 "
            "ELSE 0 END AND (h.status <> 'done' OR h.batch_id = e.batch_id) AND NOT EXISTS "
            "(SELECT 1 FROM holder n WHERE n.ssn = h.ssn AND n.issue_no > h.issue_no), "
            "FALSE)", (batch_id,)).fetchall()}

    def _match_holders(self, db: _Db, batch_id: int, holders: list, wanted: set[str],
                       notices: list[str], *, same_file: bool = False) -> None:
        have: dict[int, tuple] | None = None
        if same_file and not wanted and not any(
                h.values.get("reissue", "").strip() for h in holders):
            have = self._unsettled(db, batch_id)
            holders = [h for h in holders if h.row in have]
        ssns = [h.ssn.upper() for h in holders]
        latest = self._latest(db, ssns)
        now = _now()
        new_rows: list[tuple] = []
        reissues: list[tuple[str, str]] = []
        updates: list[tuple] = []
        #: row → (ssn, open, note, data_sha256)
        desired: dict[int, tuple[str, int, str | None, str]] = {}
        for h, ssn in zip(holders, ssns, strict=True):
            data = h.data_sha256
            cur = latest.get(ssn)
            asked = ssn in wanted or h.values.get("reissue", "").strip().lower() in (
                "1", "yes", "y", "true", "是")
            if cur is None:
                if asked:
                    notices.append(f"{_who(h, ssn)}: re-issue asked, but they have no card "
                                   "yet: made as their first card")
                new_rows.append((ssn, 1, batch_id, h.card_no, data, "pending", now))
                desired[h.row] = (ssn, 1, None, data)
                continue
            hid, issue_no, made_in, old_data, status, card_id, at = cur
            if status == "done":
                if asked and not (issue_no > 1 and made_in == batch_id):
                    reissues.append((ssn, f"card {card_id} replaced (re-issue {issue_no + 1})"))
                    new_rows.append((ssn, issue_no + 1, batch_id, h.card_no, data, "pending",
                                     now))
                    desired[h.row] = (ssn, 1, None, data)
                    continue
                note = HAD_A_CARD if made_in != batch_id else None
                desired[h.row] = (ssn, 0, note, data)
                if old_data != data:
                    notices.append(f"{_who(h, ssn)}: data changed since their card {card_id} "
                                   f"was made ({at[:10]}); that card is kept, no new card is "
                                   "made — to replace it use --reissue ID")
                elif note:
                    notices.append(f"{_who(h, ssn)}: already has a card ({card_id}, "
                                   f"{at[:10]}); not made again — to replace a lost card use "
                                   "--reissue ID")
                continue
            if asked:
                notices.append(f"{_who(h, ssn)}: re-issue asked, but their first card is "
                               "not finished yet: it is finished instead")
            if old_data != data:
                updates.append((h.card_no, data, now, hid))
                self._event(db, batch_id, h.row, card_id, None, "data updated",
                            "holder data changed in the CSV; the new data is used")
            desired[h.row] = (ssn, int(status == "pending" and card_id is None), None, data)
        db.executemany("INSERT INTO holder (ssn, issue_no, batch_id, card_no, data_sha256, "
                       "status, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)", new_rows)
        db.executemany("UPDATE holder SET card_no = ?, data_sha256 = ?, updated_at = ? "
                       "WHERE id = ?", updates)
        for ssn, detail in reissues:
            row_no = next(r for r, d in desired.items() if d[0] == ssn)
            self._event(db, batch_id, row_no, None, None, "re-issue", detail)
        if new_rows:
            latest.update(self._latest(db, [r[0] for r in new_rows]))
        want = {row: (latest[ssn][0], open_, note, data)
                for row, (ssn, open_, note, data) in desired.items()}
        if have is None:                # all rows matched: every entry of the batch counts
            have = {int(r[0]): (int(r[1]), int(r[2]), r[3], r[4]) for r in db.execute(
                "SELECT row_no, holder_id, open, note, data_sha256 FROM entry WHERE "
                "batch_id = ?", (batch_id,)).fetchall()}
        gone = [(batch_id, row) for row, v in have.items() if want.get(row) != v]
        db.executemany("DELETE FROM entry WHERE batch_id = ? AND row_no = ?", gone)
        db.executemany("INSERT INTO entry (batch_id, row_no, holder_id, open, note, "
                       "data_sha256) VALUES (?, ?, ?, ?, ?, ?)",
                       [(batch_id, row, *v) for row, v in want.items() if have.get(row) != v])

    def known_holders(self) -> Callable[[Holder], bool]:
        """A test for CSV holders: is this holder, with exactly this data (its
        ``data_sha256``, computed once when the CSV was read), in the journal already (and so
        checked when it came in)?"""
        known: set[tuple[str, str]] | None = None

        def test(h: Holder) -> bool:
            nonlocal known
            if known is None:                   # only when a row is not known unchanged
                known = {(ssn, sha) for ssn, sha in
                         self.db.execute("SELECT ssn, data_sha256 FROM holder").fetchall()}
            return (h.values.get("ssn", "").upper(), h.data_sha256) in known
        return test

    def loaded_before(self, csv_path: Path) -> Callable[[str], Sequence[str] | None]:
        """For ``load_holders(unchanged=…)``: given a CSV's SHA-256, each row's data hash
        if this batch's last load was exactly that file (every row was checked then), else
        None. While the journal is open."""
        def digests(sha: str) -> Sequence[str] | None:
            rows = self.db.execute(
                "SELECT e.row_no, e.data_sha256 FROM entry e JOIN batch b ON b.id = "
                "e.batch_id WHERE b.name = ? AND b.csv_sha256 = ? ORDER BY e.row_no",
                (batch_name(csv_path), sha)).fetchall()
            if not rows or any(r[0] != n or not r[1] for n, r in enumerate(rows, 1)):
                return None
            return [r[1] for r in rows]
        return digests

    def reserve_sim_serials(self, count: int) -> int:
        """The first of ``count`` simulated-card serials never handed out by this journal
        (so a resumed simulated batch gets new blank cards, not the finished ones again)."""
        with self.tx() as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'next_sim_serial'").fetchone()
            first = int(row[0]) if row else 1
            db.execute("INSERT INTO meta (key, value) VALUES ('next_sim_serial', ?) ON CONFLICT "
                       "(key) DO UPDATE SET value = excluded.value", (str(first + count),))
            return first

    # -- cards --------------------------------------------------------------------------------
    def claim(self, batch_id: int, card_id: str, reader: str) -> Claim | None:
        """The holder for this card: its own if it had one, else the next waiting one.

        None when the card is spoiled or no holder is left.
        """
        with self.tx() as db:
            if db.execute("SELECT 1 FROM spoiled WHERE card_id = ?", (card_id,)).fetchone():
                return None
            row = db.execute("SELECT id, ssn, status, batch_id FROM holder WHERE card_id = ?",
                             (card_id,)).fetchone()
            if row is not None:
                hid, ssn, status, made_in = row
                entry = db.execute("SELECT row_no FROM entry WHERE batch_id = ? AND "
                                   "holder_id = ?", (batch_id, hid)).fetchone()
                if entry is None:
                    where = db.execute("SELECT name FROM batch WHERE id = ?",
                                       (made_in,)).fetchone()
                    raise CardElsewhereError(
                        f"card {card_id} was started for holder ID {mask_ssn(ssn)} of batch "
                        f"{where[0] if where else made_in}, who is not in this CSV: put it "
                        "aside for that batch's station (or --release it there)")
                if status == "done":
                    return Claim(hid, int(entry[0]), ssn, True, True)
                db.execute("UPDATE holder SET status = 'in_progress', attempts = attempts + 1,"
                           " reader = ?, updated_at = ? WHERE id = ?", (reader, _now(), hid))
                self._event(db, batch_id, entry[0], card_id, reader, "resumed", status)
                return Claim(hid, int(entry[0]), ssn, True, False)
            while True:
                nxt = db.execute("SELECT row_no, holder_id FROM entry WHERE batch_id = ? AND "
                                 "open = 1 ORDER BY row_no LIMIT 1", (batch_id,)).fetchone()
                if nxt is None:
                    return None
                row_no, hid = int(nxt[0]), int(nxt[1])
                # every batch naming this holder stops offering them
                db.execute("UPDATE entry SET open = 0 WHERE holder_id = ?", (hid,))
                taken = db.execute(
                    "UPDATE holder SET card_id = ?, status = 'in_progress', attempts = "
                    "attempts + 1, reader = ?, updated_at = ? WHERE id = ? AND status = "
                    "'pending' AND card_id IS NULL RETURNING ssn",
                    (card_id, reader, _now(), hid)).fetchone()
                if taken is not None:
                    self._event(db, batch_id, row_no, card_id, reader, "assigned", None)
                    return Claim(hid, row_no, taken[0], False, False)

    def step(self, holder_id: int, step: str) -> None:
        self.db.execute("UPDATE holder SET step = ?, updated_at = ? WHERE id = ?",
                        (step, _now(), holder_id))

    def finish(self, batch_id: int, holder_id: int, status: str,
               detail: str | None = None) -> None:
        with self.tx() as db:
            card = db.execute("UPDATE holder SET status = ?, detail = ?, updated_at = ? WHERE "
                              "id = ? RETURNING card_id, reader",
                              (status, detail, _now(), holder_id)).fetchone()
            row = db.execute("SELECT row_no FROM entry WHERE batch_id = ? AND holder_id = ?",
                             (batch_id, holder_id)).fetchone()
            self._event(db, batch_id, row[0] if row else None, card[0], card[1], status,
                        detail)

    def release(self, batch_id: int, card_id: str, reason: str) -> int | None:
        """Mark a card spoiled (lost, broken) and give its holder back to the waiting pool."""
        with self.tx() as db:
            row = db.execute("SELECT id, status FROM holder WHERE card_id = ?",
                             (card_id,)).fetchone()
            entry = None if row is None else db.execute(
                "SELECT row_no FROM entry WHERE batch_id = ? AND holder_id = ?",
                (batch_id, row[0])).fetchone()
            if row is None or entry is None:
                raise RefusedError(f"card {card_id} has no holder in this batch")
            hid, status = row
            if status == "done":
                raise RefusedError(f"card {card_id} is finished (row {sheet_row(entry[0])}); a "
                                   "done card "
                                   "is not released")
            db.execute("INSERT INTO spoiled (card_id, batch_id, row_no, at, reason) VALUES "
                       "(?, ?, ?, ?, ?)", (card_id, batch_id, entry[0], _now(), reason))
            db.execute("UPDATE holder SET card_id = NULL, status = 'pending', step = NULL, "
                       "updated_at = ? WHERE id = ?", (_now(), hid))
            db.execute("UPDATE entry SET open = 1 WHERE holder_id = ?", (hid,))
            self._event(db, batch_id, entry[0], card_id, None, "released", reason)
            return int(entry[0])

    def remaining(self, batch_id: int) -> bool:
        """Is anything left to do in this batch? (cheap: no count over the batch)"""
        if self.db.execute("SELECT 1 FROM entry WHERE batch_id = ? AND open = 1 LIMIT 1",
                           (batch_id,)).fetchone():
            return True
        return self.db.execute(
            "SELECT 1 FROM holder h JOIN entry e ON e.holder_id = h.id AND e.batch_id = ? "
            "WHERE h.status IN ('in_progress', 'torn') LIMIT 1", (batch_id,)
        ).fetchone() is not None

    def counts(self, batch_id: int) -> Counts:
        return self._counts(self.db, batch_id)

    @staticmethod
    def _counts(db: _Db, batch_id: int) -> Counts:
        rows = dict(db.execute("SELECT h.status, COUNT(*) FROM entry e JOIN holder h ON "
                               "h.id = e.holder_id WHERE e.batch_id = ? GROUP BY h.status",
                               (batch_id,)).fetchall())
        had = db.execute("SELECT COUNT(*) FROM entry WHERE batch_id = ? AND note = ?",
                         (batch_id, HAD_A_CARD)).fetchone()[0]
        rejected = db.execute("SELECT COUNT(*) FROM spoiled WHERE batch_id = ? AND reason "
                              "LIKE ?", (batch_id, "rejected%")).fetchone()[0]
        total = sum(rows.values())
        return Counts(total, rows.get("pending", 0),
                      rows.get("in_progress", 0) + rows.get("torn", 0),
                      rows.get("done", 0), rows.get("failed", 0), int(had), int(rejected))

    def holders(self, batch_id: int) -> list[tuple]:
        """One row per holder of the batch: row_no, ssn, card_no, card_id, status, step,
        attempts, reader, detail, note, issue_no."""
        return self.db.execute(
            "SELECT e.row_no, h.ssn, h.card_no, h.card_id, h.status, h.step, h.attempts, "
            "h.reader, h.detail, e.note, h.issue_no FROM entry e JOIN holder h ON "
            "h.id = e.holder_id WHERE e.batch_id = ? ORDER BY e.row_no", (batch_id,)).fetchall()

    @staticmethod
    def _event(db: _Db, batch_id: int, row_no: int | None, card_id: str | None,
               reader: str | None, what: str, detail: str | None) -> None:
        db.execute("INSERT INTO event (at, batch_id, row_no, card_id, reader, what, detail) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?)",
                   (_now(), batch_id, row_no, card_id, reader, what, detail))
