"""A holder never gets a second card by accident (issue 10 §1), on both journal backends.

The journal knows holders (ID numbers), not files: an edited or re-saved CSV, another CSV
naming the same people, or two stations loading overlapping CSVs never make a second card;
re-issuing is an explicit, journaled act.
"""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from sbcard.compose import SimSlot
from sbcard.ops.journal import Journal
from sbcard.ops.personalise import run_batch
from tests.cli_runner import run_cli
from tests.holders_factory import holder_rows, write_csv
from tests.test_journal_pg import pg_schema_url
from tests.test_personalise import ListSlot, blank_card, card_id_hex, holder_on_card, make_plan


@pytest.fixture(params=["sqlite", "postgresql"])
def journal_at(request, tmp_path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "bureau.journal.sqlite")
    return pg_schema_url("_holders")


def cards_per_holder(location: str) -> dict[str, int]:
    """How many finished cards each ID number has in the journal."""
    with Journal(location) as j:
        got = j.db.execute("SELECT ssn, COUNT(*) FROM holder WHERE status = 'done' "
                           "GROUP BY ssn").fetchall()
    return {ssn: int(n) for ssn, n in got}


def personalise(capsys, csv: Path, journal: str, *extra: str) -> tuple[int, str, str]:
    return run_cli(capsys, "--sim", "blank", "--keys", "test", "personalise", str(csv),
                   "--journal", journal, "--no-progress", *extra)


def test_resaved_csv_resumes_the_same_batch_without_second_cards(capsys, tmp_path, journal_at):
    rows = holder_rows(4)
    csv = write_csv(tmp_path / "h.csv", rows)
    code, _out, err = personalise(capsys, csv, journal_at)
    assert code == 0, err
    # Excel re-saves it: CRLF line ends and a trailing blank line; the batch is the same
    csv.write_bytes(csv.read_bytes().replace(b"\n", b"\r\n") + b"\r\n")
    code, _, err = personalise(capsys, csv, journal_at)
    assert code == 8 and "--resume" in err                 # not silently a new batch
    code, _out, err = personalise(capsys, csv, journal_at, "--resume")
    assert code == 0, err
    assert set(cards_per_holder(journal_at).values()) == {1}
    assert len(cards_per_holder(journal_at)) == 4


def test_another_csv_naming_done_holders_makes_no_second_card(capsys, tmp_path, journal_at):
    first = write_csv(tmp_path / "monday.csv", holder_rows(3))
    assert personalise(capsys, first, journal_at)[0] == 0
    # Tuesday's CSV repeats two of Monday's holders (one with a corrected name) + one new
    rows = holder_rows(3, start=2)
    rows[0]["name"] = "测试二改"
    tuesday = write_csv(tmp_path / "tuesday.csv", rows)
    code, out, err = personalise(capsys, tuesday, journal_at)
    assert code == 0, err
    counts = cards_per_holder(journal_at)
    assert sorted(counts.values()) == [1, 1, 1, 1] and len(counts) == 4
    # spreadsheet rows (header = row 1), as the CSV's validation names them
    assert "row 3 (ID" in err and "already has a card" in err
    assert "row 2 (ID" in err and "data changed since their card" in err and "--reissue" in err
    assert "already had a card 已有卡 2" in out and "done 完成 1/3" in out
    assert holder_rows(3)[1]["ssn"] not in err                # ID numbers masked
    code, out, _ = run_cli(capsys, "personalise", str(tuesday), "--journal", journal_at,
                           "--status")
    assert code == 0 and out.count("had a card") >= 2


def test_edited_csv_takes_new_data_for_undone_rows_only(tmp_path, journal_at):
    rows = holder_rows(3)
    csv = write_csv(tmp_path / "h.csv", rows)
    outcomes: list = []
    plan = make_plan(journal_at, csv, outcomes)
    c1 = blank_card(1)
    run_batch([ListSlot([c1])], journal_at, plan)              # row 1 done, then stop
    assert [o.outcome for o in outcomes] == ["done"]
    rows[0]["name"] = "测试一改"                                 # done row changed: reported
    rows[1]["name"] = "测试二改"                                 # undone row changed: taken
    write_csv(csv, rows)
    from sbcard.ops.holders import load_holders

    with Journal(journal_at) as j:
        opened = j.open_batch(csv, load_holders(csv), "test", resume=True)
    assert len(opened.notices) == 1 and opened.notices[0].startswith("row 2 ")
    plan = make_plan(journal_at, csv, outcomes, resume=True)
    c2, c3 = blank_card(2), blank_card(3)
    run_batch([ListSlot([c1, c2, c3])], journal_at, plan)
    assert [o.outcome for o in outcomes[1:]] == ["skipped", "done", "done"]
    assert has_name(c2, "测试二改") and has_name(c1, "测试1号")
    assert not has_name(c1, "测试一改")
    assert set(cards_per_holder(journal_at).values()) == {1}


def has_name(card, name: str) -> bool:
    from sbcard.card.codecs import encode_gbk
    from sbcard.card.filesystem import SSSE_NAME

    ef06 = card.apps[SSSE_NAME].by_sfi[6]
    return encode_gbk(name) in b"".join(bytes(r) for r in ef06.records)


def test_reissue_is_explicit_and_happens_once(capsys, tmp_path, journal_at):
    rows = holder_rows(2)
    csv = write_csv(tmp_path / "h.csv", rows)
    assert personalise(capsys, csv, journal_at)[0] == 0
    lost = rows[1]["ssn"]
    code, _out, err = personalise(capsys, csv, journal_at, "--resume", "--reissue", lost)
    assert code == 0, err
    assert cards_per_holder(journal_at) == {rows[0]["ssn"]: 1, lost: 2}
    # the same command again (a re-run, a script loop) does not make a third card
    code, _out, err = personalise(capsys, csv, journal_at, "--resume", "--reissue", lost)
    assert code == 0, err
    assert cards_per_holder(journal_at) == {rows[0]["ssn"]: 1, lost: 2}
    with Journal(journal_at) as j:
        events = [r[0] for r in j.db.execute("SELECT what FROM event").fetchall()]
    assert events.count("re-issue") == 1


def test_card_of_another_batch_is_refused_in_operator_terms(tmp_path, journal_at):
    a = write_csv(tmp_path / "a.csv", holder_rows(2))
    b = write_csv(tmp_path / "b.csv", holder_rows(2, start=50))
    card = blank_card(1)
    with Journal(journal_at) as j:
        from sbcard.ops.holders import load_holders

        batch_a = j.open_batch(a, load_holders(a), "t", resume=False).batch_id
        claim = j.claim(batch_a, card_id_hex(card), "station 1")    # torn at station 1
        j.finish(batch_a, claim.holder_id, "torn", "pulled out")
    outcomes: list = []
    plan = make_plan(journal_at, b, outcomes)
    plan.max_consecutive_failures = 1
    run_batch([ListSlot([card])], journal_at, plan)
    (o,) = outcomes
    assert o.outcome == "refused" and o.card_id == card_id_hex(card)
    assert "not in this CSV" in o.detail and "a.csv" in o.detail
    assert "keys" not in (plan.stop_reason or "")
    assert holder_on_card(card)[0] is None                       # nothing written


def test_overlapping_csvs_on_two_stations_give_each_holder_one_card(tmp_path, journal_at):
    """Two stations (threads with their own connections) load CSVs that share 20 holders
    and run at the same time: every holder gets exactly one card."""
    east = write_csv(tmp_path / "east.csv", holder_rows(40, start=1))
    west = write_csv(tmp_path / "west.csv", holder_rows(40, start=21))
    out_e: list = []
    out_w: list = []
    plan_e = make_plan(journal_at, east, out_e)
    plan_w = make_plan(journal_at, west, out_w)
    threads = [threading.Thread(target=run_batch, args=(
                   [SimSlot("blank", 60, "E1", 1), SimSlot("blank", 60, "E2", 2001)],
                   journal_at, plan_e)),
               threading.Thread(target=run_batch, args=(
                   [SimSlot("blank", 60, "W1", 4001)], journal_at, plan_w))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    counts = cards_per_holder(journal_at)
    assert len(counts) == 60 and set(counts.values()) == {1}
    made = [o for o in out_e + out_w if o.outcome == "done"]
    assert len(made) == 60
    assert len({o.card_id for o in made}) == 60


def test_journal_and_report_are_private_files(capsys, tmp_path):
    old = os.umask(0o022)
    try:
        csv = write_csv(tmp_path / "h.csv", holder_rows(2))
        code, _, err = run_cli(capsys, "--sim", "blank", "--keys", "test", "personalise",
                               str(csv), "--no-progress", "--report", str(tmp_path / "r.csv"))
    finally:
        os.umask(old)
    assert code == 0, err
    for f in (tmp_path / "h.journal.sqlite", tmp_path / "r.csv"):
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f


def test_report_cells_never_start_a_formula(tmp_path):
    from sbcard.ops.batch_report import ReportWriter
    from sbcard.ops.personalise import CardOutcome

    with ReportWriter(tmp_path / "r.csv") as w:
        w.write(CardOutcome("=cmd|' /C calc'!A0", "+1", 1, "@SUM(1)", "failed", 0.1,
                            "-2+3"))
    text = (tmp_path / "r.csv").read_text()
    body = text.splitlines()[1]
    assert all(not cell.startswith(("=", "+", "-", "@")) for cell in body.split(","))


def test_summary_counts_rejected_cards_as_failures(capsys, tmp_path):
    csv = write_csv(tmp_path / "h.csv", holder_rows(2))
    outcomes: list = []
    journal = str(tmp_path / "j.sqlite")
    plan = make_plan(journal, csv, outcomes)
    bad = blank_card(1)
    bad.command_hooks.append(lambda card, cmd: (b"", 0x6581) if cmd.ins == 0xDC else None)
    run_batch([ListSlot([bad, blank_card(2), blank_card(3)])], journal, plan)
    from sbcard.ops.batch_report import summary

    with Journal(journal) as j:
        line = summary(j.counts(plan.batch_id))
    assert "failed 失败 1" in line and "rejected cards 废卡 1" in line


def test_old_journal_is_refused_not_mixed(tmp_path):
    import sqlite3

    path = tmp_path / "old.sqlite"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE holder (batch_id INTEGER, row_no INTEGER, ssn TEXT)")
    con.close()
    from sbcard.errors import BadInputError

    with pytest.raises(BadInputError, match="older sbcard"):
        Journal(path)


def _older_journal(execute) -> None:
    execute("CREATE TABLE holder (batch_id INTEGER, row_no INTEGER, ssn TEXT)")


def _view_in_place_of_a_table(execute) -> None:
    execute("CREATE VIEW entry AS SELECT 1 AS batch_id")     # the tables' step fails on it


def open_files_on(path: Path) -> list[str]:
    """This process's open file descriptors on ``path`` and its -wal/-shm files."""
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc/self/fd")
    found = []
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith(str(path)):
            found.append(target)
    return found


@pytest.mark.parametrize(("prepare", "message"), [
    (_older_journal, "older sbcard"),
    (_view_in_place_of_a_table, r"journal .*: "),
    ("garbage", "file is not a database"),
])
def test_a_journal_that_fails_setup_leaves_no_file_open(tmp_path, prepare, message):
    """Every failure after the connection opened closes it before the error leaves: the
    error (kept by a caller, here by pytest.raises) holds no open journal file."""
    import sqlite3

    from sbcard.errors import BadInputError

    path = tmp_path / "bad.sqlite"
    if prepare == "garbage":
        path.write_bytes(b"not a journal, not a database. " * 200)
    else:
        con = sqlite3.connect(path)
        prepare(con.execute)
        con.close()
    assert open_files_on(path) == []
    with pytest.raises(BadInputError, match=message) as caught:
        Journal(path)
    assert open_files_on(path) == []
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("prepare", [_older_journal, _view_in_place_of_a_table])
def test_a_postgres_journal_that_fails_setup_closes_its_session(prepare):
    """A URL that connects but whose setup fails (an older journal's schema; a view where a
    table goes, failing inside the table-creating transaction) leaves no server session."""
    import time

    import psycopg

    from sbcard.errors import BadInputError

    app = f"sbcard_setup_test_{os.getpid()}"
    url = f"{pg_schema_url('_setup')}&application_name={app}"
    with psycopg.connect(url, autocommit=True) as conn:
        prepare(conn.execute)

    def sessions() -> int:
        with psycopg.connect(url, autocommit=True) as probe:
            row = probe.execute("SELECT count(*) FROM pg_stat_activity WHERE "
                                "application_name = %s AND pid <> pg_backend_pid()",
                                (app,)).fetchone()
            return int(row[0]) if row else 0

    with pytest.raises(BadInputError, match=r"older sbcard|journal .*: ") as caught:
        Journal(url)
    deadline = time.monotonic() + 10        # a closed session's backend ends just after
    while sessions() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sessions() == 0
    assert "\n" not in str(caught.value)


def test_postgres_password_never_in_messages(tmp_path, capsys):
    csv = write_csv(tmp_path / "h.csv", holder_rows(1))
    code, out, err = run_cli(capsys, "--sim", "blank", "--keys", "test", "personalise",
                             str(csv), "--journal",
                             "postgresql://bureau:S3cretPw77@127.0.0.1:1/none?connect_timeout=2",
                             "--no-progress")
    assert code == 3
    assert "S3cretPw77" not in out + err and "bureau:***@127.0.0.1:1" in err


def test_resume_does_not_recheck_rows_the_journal_holds(tmp_path, monkeypatch):
    """Resuming a big batch re-validates only rows whose data changed (issue 10 §8)."""
    from sbcard.ops import holders as holders_mod

    rows = holder_rows(5)
    csv = write_csv(tmp_path / "h.csv", rows)
    journal = str(tmp_path / "j.sqlite")
    with Journal(journal) as j:
        j.open_batch(csv, holders_mod.load_holders(csv), "t", resume=False)
    checked: list[str] = []
    real = holders_mod._check_row
    monkeypatch.setattr(holders_mod, "_check_row",
                        lambda values: checked.append(values["ssn"]) or real(values))
    rows[2]["name"] = "测试三改"
    write_csv(csv, rows)
    with Journal(journal) as j:
        holders_mod.load_holders(csv, validated=j.known_holders())
    assert checked == [rows[2]["ssn"]]


def test_holder_hash_is_computed_once_and_matches_journals_written_before(tmp_path):
    """The hash carried on each Holder (issue 10 §8) is the journal's data_sha256 format:
    sorted keys, PIN and reissue left out; so journals written before still match."""
    import hashlib

    from sbcard.ops import holders as holders_mod

    rows = holder_rows(3)
    for r in rows:
        r["pin"] = "123456"
    csv = write_csv(tmp_path / "h.csv", rows)
    loaded = holders_mod.load_holders(csv)
    for h, row in zip(loaded, rows, strict=True):
        data = {k: v for k, v in row.items() if k not in ("pin", "reissue")}
        text = "\x1e".join(k + "\x1f" + data[k] for k in sorted(data))
        assert h.data_sha256 == hashlib.sha256(text.encode()).hexdigest()
        assert h.data_sha256 == holders_mod.Holder(h.row, h.values).data_sha256
    changed = dict(rows[0], pin="654321")
    assert holders_mod.data_sha256(changed) == loaded[0].data_sha256       # PIN: not data
    changed["name"] = "测试改名"
    assert holders_mod.data_sha256(changed) != loaded[0].data_sha256


def test_csv_reader_keeps_blank_line_short_row_and_space_rules(tmp_path):
    from sbcard.errors import BadInputError
    from sbcard.ops.holders import read_csv_rows

    path = tmp_path / "r.csv"
    path.write_text("a, b ,c\n1, 2 ,3\n\n4,5\n", encoding="utf-8")
    stripped: list[str] = []
    assert read_csv_rows(path, stripped) == [{"a": "1", "b": "2", "c": "3"},
                                             {"a": "4", "b": "5", "c": ""}]
    assert stripped == ["row 2: b"]
    path.write_text("a,b\n1,2,3\n", encoding="utf-8")
    with pytest.raises(BadInputError, match="row 2 has more fields"):
        read_csv_rows(path)


def entries(location: str, batch_id: int) -> list[tuple]:
    with Journal(location) as j:
        return [tuple(r) for r in j.db.execute(
            "SELECT e.row_no, e.holder_id, e.open, e.note, e.data_sha256, h.data_sha256, "
            "h.status FROM entry e JOIN holder h ON h.id = e.holder_id WHERE e.batch_id = ? "
            "ORDER BY e.row_no", (batch_id,)).fetchall()]


def resume_load(location: str, csv: Path):
    """What ``personalise --resume`` does before the first card."""
    from sbcard.ops.holders import load_holders

    with Journal(location) as j:
        hs = load_holders(csv, validated=j.known_holders(), unchanged=j.loaded_before(csv))
        return hs, j.open_batch(csv, hs, "t", resume=True)


def test_same_file_resume_still_sees_what_other_batches_changed(tmp_path, journal_at):
    """Resuming the very file loaded last time skips re-checking and re-matching settled rows
    (issue 10 §8), but whatever another batch did to its holders since is still found: a card
    finished there, holder data that CSV changed, a re-issue — as a full match finds it."""
    from sbcard.ops.holders import load_holders

    rows = holder_rows(6)
    a = write_csv(tmp_path / "a.csv", rows)
    b = write_csv(tmp_path / "b.csv", rows[:3])
    with Journal(journal_at) as j:
        batch_b = j.open_batch(b, load_holders(b), "t", resume=False).batch_id
        batch_a = j.open_batch(a, load_holders(a), "t", resume=False).batch_id
        claim = j.claim(batch_b, "CARD-B1", "r")          # row 1 is finished by batch b
        j.finish(batch_b, claim.holder_id, "done")
        claim = j.claim(batch_a, "CARD-A2", "r")          # row 2 finished in a, then
        j.finish(batch_a, claim.holder_id, "done")        # re-issued by batch b (lost card)
    assert claim.ssn == rows[1]["ssn"]
    write_csv(b, [rows[0], rows[1], dict(rows[2], name="测试三改")])   # b changes row 3
    with Journal(journal_at) as j:
        j.open_batch(b, load_holders(b), "t", resume=True, reissue=[rows[1]["ssn"]])
    hs, opened = resume_load(journal_at, a)              # a: the same bytes as before
    assert hs.file_sha256 and [h.data_sha256 for h in hs] == [
        h.data_sha256 for h in load_holders(a)]
    said = "\n".join(opened.notices)
    assert "row 2 " in said and "already has a card (CARD-B1" in said
    fast = entries(journal_at, batch_a)
    assert fast[2][4] == fast[2][5]                       # row 3: a's data is used again
    with Journal(journal_at) as j:
        assert j.counts(batch_a).had_card == 1
        assert j.db.execute("SELECT COUNT(*) FROM event WHERE batch_id = ? AND what = "
                            "'data updated'", (batch_a,)).fetchone()[0] == 1
        latest = j.db.execute("SELECT id FROM holder WHERE ssn = ? AND issue_no = 2",
                              (rows[1]["ssn"],)).fetchone()[0]
    assert fast[1][1] == latest                          # row 2: the re-issue made in b
    # a full match (holders not known to be this file's) finds nothing more to change
    with Journal(journal_at) as j:
        again = j.open_batch(a, list(load_holders(a)), "t", resume=True)
    assert entries(journal_at, batch_a) == fast and again.notices == opened.notices


def test_same_file_resume_checks_and_hashes_no_row(tmp_path, monkeypatch):
    """The same bytes resume without a check or a hash per row; one changed byte and the
    file is read as new (only the changed row checked: test above this one)."""
    from sbcard.ops import holders as holders_mod

    rows = holder_rows(5)
    csv = write_csv(tmp_path / "h.csv", rows)
    journal = str(tmp_path / "j.sqlite")
    with Journal(journal) as j:
        first = holders_mod.load_holders(csv)
        j.open_batch(csv, first, "t", resume=False)
    work: list[str] = []
    real_check, real_hasher = holders_mod._check_row, holders_mod._row_hasher
    monkeypatch.setattr(holders_mod, "_check_row",
                        lambda values: work.append("check") or real_check(values))
    monkeypatch.setattr(holders_mod, "_row_hasher",
                        lambda *a: work.append("hash") or real_hasher(*a))
    again, opened = resume_load(journal, csv)
    assert work == [] and not opened.notices
    assert [(h.row, h.values, h.data_sha256) for h in again] == [
        (h.row, h.values, h.data_sha256) for h in first]
    csv.write_bytes(csv.read_bytes() + b"\n")            # a blank line: not the same bytes
    again, _ = resume_load(journal, csv)
    assert work == ["hash"] and [h.data_sha256 for h in again] == [
        h.data_sha256 for h in first]
