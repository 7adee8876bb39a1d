"""Batch personalisation in-process: CSV validation, journal invariants, tears, resume."""

from __future__ import annotations

import io
import json
import sqlite3
import threading
from pathlib import Path

import pytest

from sbcard.apdu.channel import ApduChannel
from sbcard.apdu.t0 import T0Layer
from sbcard.card.filesystem import SSSE_NAME
from sbcard.compose import SimSlot
from sbcard.errors import BadInputError, RefusedError
from sbcard.keys.builtin import builtin_key_file
from sbcard.ops.holders import CsvInvalid, load_holders
from sbcard.ops.journal import Journal
from sbcard.ops.personalise import BatchPlan, run_batch
from sbcard.ops.script import parse_script
from sbcard.sim.persona import build_atr, load_persona
from sbcard.transport.base import CardTornError
from sbcard.transport.simulated import SimulatedTransport
from tests.cli_runner import run_cli
from tests.holders_factory import holder_rows, write_csv

RECIPES = Path(__file__).resolve().parents[1] / "apdu_scripts"


def blank_card(serial: int, persona: str = "blank"):
    from dataclasses import replace

    p = load_persona(persona)
    data = {**p.card, "serial": f"{serial:08X}"}
    return replace(p, card=data, atr=build_atr(data, {})).build_card()


class ListSlot:
    """Presents the given card objects in order (a torn card can come back later)."""

    def __init__(self, cards, name="list"):
        self.cards = list(cards)
        self.name = name

    def next_card(self, stop):
        if stop.is_set() or not self.cards:
            return None
        card = self.cards.pop(0)
        t = T0Layer(SimulatedTransport(card))
        t.connect()
        return ApduChannel(t)

    def release(self, channel, *, finished, wait=True):
        channel.transport.disconnect()


def holder_on_card(card) -> tuple[str | None, str | None]:
    ef06 = card.apps[SSSE_NAME].by_sfi[6]
    ssn = next((bytes(r[2:]).decode() for r in ef06.records if r[0] == 0x08 and r[2] != 0),
               None)
    return ssn, card.pin.value


def make_plan(journal: Path, csv: Path, outcomes: list, *, resume=False) -> BatchPlan:
    holders = load_holders(csv)
    j = Journal(journal)
    batch = j.open_batch(csv, holders, "test", resume=resume).batch_id
    j.close()
    from sbcard.card.profiles import load_profile

    recipes = {"2.0": parse_script(RECIPES / "personalise-2.0.apdu"),
               "3.0": parse_script(RECIPES / "personalise-3.0.apdu")}
    from sbcard.ops.pki_issue import CertificateAuthority

    return BatchPlan(batch, {h.row: h for h in holders}, recipes, builtin_key_file(),
                     load_profile("mohrss-2.0"), initial_pin=None,
                     ca=CertificateAuthority.load("test"), on_outcome=outcomes.append)


def journal_rows(path: Path):
    con = sqlite3.connect(path)
    try:
        return con.execute("SELECT e.row_no, h.ssn, h.card_id, h.status FROM entry e JOIN "
                           "holder h ON h.id = e.holder_id ORDER BY e.batch_id, e.row_no"
                           ).fetchall()
    finally:
        con.close()


def test_csv_validation_reports_every_problem(tmp_path):
    rows = holder_rows(4)
    rows[0]["ssn"] = rows[0]["ssn"][:-1] + ("0" if rows[0]["ssn"][-1] != "0" else "1")
    rows[1]["name"] = "测试\U00020000"                          # not in GBK
    rows[2]["birth_date"] = "1990-02-30"
    rows[3]["card_no"] = rows[2]["card_no"]                      # duplicate
    rows[3]["expiry_date"] = "2020-01-01"
    with pytest.raises(CsvInvalid) as err:
        load_holders(write_csv(tmp_path / "h.csv", rows))
    problems = "\n".join(err.value.problems)
    # rows as the spreadsheet numbers them: the header is row 1
    assert "row 2: ssn: column A (ssn):" in problems and "check" in problems
    assert "row 3: name:" in problems and "GBK" in problems
    assert "row 4: birth_date:" in problems
    assert "row 5: card_no: column G (card_no): same as row 4" in problems
    assert "row 5: expiry_date: column J (expiry_date): not after issue_date" in problems
    assert "no card was touched" in str(err.value)


def test_csv_missing_columns_and_gbk_file(tmp_path):
    (tmp_path / "bad.csv").write_text("ssn,name\n1,2\n", encoding="utf-8")
    with pytest.raises(Exception, match="missing column"):
        load_holders(tmp_path / "bad.csv")
    rows = holder_rows(2)
    p = tmp_path / "gbk.csv"
    text = io.StringIO()
    import csv as csvmod

    w = csvmod.DictWriter(text, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    p.write_bytes(text.getvalue().encode("gb18030"))
    assert [h.values["name"] for h in load_holders(p)] == ["测试1号", "测试2号"]


def test_batch_of_twenty_in_process(tmp_path):
    csv = write_csv(tmp_path / "h.csv", holder_rows(20))
    outcomes: list = []
    plan = make_plan(tmp_path / "j.sqlite", csv, outcomes)
    slot = SimSlot("blank", 20)
    run_batch([slot], tmp_path / "j.sqlite", plan)
    assert [o.outcome for o in outcomes] == ["done"] * 20
    rows = journal_rows(tmp_path / "j.sqlite")
    assert all(r[3] == "done" for r in rows)
    assert len({r[2] for r in rows}) == 20
    by_card = {r[2]: r[1] for r in rows}
    for card in slot.cards:
        ssn, pin = holder_on_card(card)
        card_id = (card.apps[SSSE_NAME].by_sfi[5].records[0][2:]).hex().upper()
        assert by_card[card_id] == ssn and pin == "123456"


def test_two_slots_in_parallel_never_share_a_holder(tmp_path):
    csv = write_csv(tmp_path / "h.csv", holder_rows(30))
    outcomes: list = []
    plan = make_plan(tmp_path / "j.sqlite", csv, outcomes)
    slots = [SimSlot("blank", 30, name="A", first_serial=1),
             SimSlot("blank", 30, name="B", first_serial=1001)]
    run_batch(slots, tmp_path / "j.sqlite", plan)
    rows = journal_rows(tmp_path / "j.sqlite")
    assert all(r[3] == "done" for r in rows) and len({r[2] for r in rows}) == 30
    assert {o.slot for o in outcomes if o.outcome == "done"} == {"A", "B"}


def test_torn_card_resumes_with_its_own_holder(tmp_path):
    csv = write_csv(tmp_path / "h.csv", holder_rows(3))
    outcomes: list = []
    plan = make_plan(tmp_path / "j.sqlite", csv, outcomes)
    cards = [blank_card(i) for i in (1, 2, 3)]
    torn = {"left": 1}

    def tear_midway(card, cmd):
        if cmd.ins == 0xDC and cmd.p1 == 0x09 and torn["left"]:   # writing 姓名
            torn["left"] -= 1
            raise CardTornError()
        return None

    cards[0].command_hooks.append(tear_midway)
    # card 1 torn, card 2 done, card 1 comes back, card 3 done
    run_batch([ListSlot([cards[0], cards[1], cards[0], cards[2]])], tmp_path / "j.sqlite", plan)
    assert [o.outcome for o in outcomes] == ["torn", "done", "done", "done"]
    assert outcomes[0].row_no == outcomes[2].row_no == 1          # same holder on return
    rows = journal_rows(tmp_path / "j.sqlite")
    assert [r[3] for r in rows] == ["done"] * 3
    assert holder_on_card(cards[0])[0] == rows[0][1]


def test_killed_run_resumes_and_started_batch_needs_resume(tmp_path):
    csv = write_csv(tmp_path / "h.csv", holder_rows(2))
    outcomes: list = []
    plan = make_plan(tmp_path / "j.sqlite", csv, outcomes)
    card = blank_card(7)
    # a worker claimed the card and got half-way, then the process died
    j = Journal(tmp_path / "j.sqlite")
    claim = j.claim(plan.batch_id, card_id_hex(card), "gone")
    j.step(claim.holder_id, "personalise-2.0.apdu:20 write-element")
    j.close()
    with pytest.raises(RefusedError, match="add --resume"):
        make_plan(tmp_path / "j.sqlite", csv, [])
    plan2 = make_plan(tmp_path / "j.sqlite", csv, outcomes, resume=True)
    run_batch([ListSlot([card, blank_card(8)])], tmp_path / "j.sqlite", plan2)
    rows = journal_rows(tmp_path / "j.sqlite")
    assert [r[3] for r in rows] == ["done", "done"]
    assert rows[0][2] == card_id_hex(card)


def card_id_hex(card) -> str:
    return bytes(card.apps[SSSE_NAME].by_sfi[5].records[0][2:]).hex().upper()


def test_done_card_presented_again_is_skipped_and_release(tmp_path):
    csv = write_csv(tmp_path / "h.csv", holder_rows(2))
    outcomes: list = []
    plan = make_plan(tmp_path / "j.sqlite", csv, outcomes)
    c1, c2 = blank_card(1), blank_card(2)
    plan.stop = threading.Event()
    run_batch([ListSlot([c1, c1])], tmp_path / "j.sqlite", plan)
    assert [o.outcome for o in outcomes] == ["done", "skipped"]
    j = Journal(tmp_path / "j.sqlite")
    with pytest.raises(RefusedError, match="finished"):
        j.release(plan.batch_id, card_id_hex(c1), "test")
    claim = j.claim(plan.batch_id, card_id_hex(c2), "r")
    assert j.release(plan.batch_id, card_id_hex(c2), "dropped on the floor") == claim.row_no
    assert j.claim(plan.batch_id, card_id_hex(c2), "r") is None    # spoiled for good
    j.close()




def test_cli_personalise_sim_report_status(capsys, monkeypatch, tmp_path):
    csv = write_csv(tmp_path / "h.csv", holder_rows(5, pin=None))
    report = tmp_path / "r.jsonl"
    code, out, err = run_cli(capsys, "--sim", "blank", "--keys", "test", "personalise",
                         str(csv), "--initial-pin-stdin", "--report", str(report),
                         "--no-progress", stdin="135790\n")
    assert code == 0, err
    assert "done 完成 5/5" in out
    assert "135790" not in out + err
    lines = [json.loads(x) for x in report.read_text().splitlines()]
    assert [x["outcome"] for x in lines] == ["done"] * 5
    code, out, _ = run_cli(capsys, "personalise", str(csv), "--status")
    assert code == 0 and "5/5 done" in out
    code, _, err = run_cli(capsys, "--sim", "blank", "--keys", "test", "personalise",
                       str(csv), "--initial-pin-stdin", stdin="135790\n")
    assert code == 8 and "--resume" in err


def test_cli_personalise_bad_csv_and_dry_run(capsys, monkeypatch, tmp_path):
    rows = holder_rows(3)
    rows[1]["sex"] = "7"
    bad = write_csv(tmp_path / "bad.csv", rows)
    code, _, err = run_cli(capsys, "--sim", "blank", "--keys", "test", "personalise",
                       str(bad))
    assert code == 3 and "row 3: sex" in err
    good = write_csv(tmp_path / "good.csv", holder_rows(3))
    code, out, _ = run_cli(capsys, "--keys", "test", "personalise", str(good), "--dry-run")
    assert code == 0 and "3 holders valid" in out and "123456" not in out
    assert not (tmp_path / "good.journal.sqlite").exists()
    code, _, err = run_cli(capsys, "personalise",
                       str(write_csv(tmp_path / "nopin.csv", holder_rows(2, pin=None))))
    assert code == 3 and "--initial-pin-stdin" in err


def test_cli_personalise_3_0_cards(capsys, monkeypatch, tmp_path):
    csv = write_csv(tmp_path / "h.csv", holder_rows(3))
    code, out, err = run_cli(capsys, "--sim", "blank3", "--keys", "test",
                         "personalise", str(csv), "--no-progress", "--journal",
                         str(tmp_path / "a.sqlite"))
    assert code == 3 and "the 3.0 recipe needs a certificate authority" in err
    assert "no card was touched" in err and "done 完成" not in out
    code, out, err = run_cli(capsys, "--sim", "blank3", "--keys", "test",
                         "personalise", str(csv), "--no-progress", "--ca", "test")
    assert code == 0, err
    assert "done 完成 3/3" in out and "TEST root" in err


def test_3_0_card_gets_an_sm2_key_pair_and_a_certificate_that_verifies(tmp_path):
    from sbcard.card.profiles import load_profile
    from sbcard.compose import SessionOptions
    from sbcard.ops.sm2auth import load_trust_roots, sm2_authenticate

    csv = write_csv(tmp_path / "h.csv", holder_rows(2))
    outcomes: list = []
    plan = make_plan(tmp_path / "j.sqlite", csv, outcomes)
    cards = [blank_card(i, "blank3") for i in (1, 2)]
    assert cards[0].pki.certificate is None        # blank: nothing issued
    run_batch([ListSlot(cards)], tmp_path / "j.sqlite", plan)
    assert [o.outcome for o in outcomes] == ["done", "done"], outcomes
    keys = {bytes(c.pki.key.public_key.to_bytes()) for c in cards}
    assert len(keys) == 2                                          # generated per card
    t = T0Layer(SimulatedTransport(cards[0]))
    t.connect()
    result = sm2_authenticate(ApduChannel(t), load_profile("mohrss-3.0"),
                              load_trust_roots("test"), user_pin="123456")  # blank3's default
    assert holder_rows(2)[0]["card_no"] in result.subject
    _ = SessionOptions


def test_defective_card_is_rejected_and_its_holder_gets_the_next_card(tmp_path):
    csv = write_csv(tmp_path / "h.csv", holder_rows(2))
    outcomes: list = []
    plan = make_plan(tmp_path / "j.sqlite", csv, outcomes)
    bad, good1, good2 = blank_card(1), blank_card(2), blank_card(3)
    bad.command_hooks.append(lambda card, cmd: (b"", 0x6581) if cmd.ins == 0xDC else None)
    run_batch([ListSlot([bad, good1, good2])], tmp_path / "j.sqlite", plan)
    assert [(o.outcome, o.row_no) for o in outcomes] == [("failed", 1), ("done", 1),
                                                          ("done", 2)]
    rows = journal_rows(tmp_path / "j.sqlite")
    assert [r[3] for r in rows] == ["done", "done"]
    assert card_id_hex(bad) not in {r[2] for r in rows}
    j = Journal(tmp_path / "j.sqlite")
    assert j.claim(plan.batch_id, card_id_hex(bad), "r") is None      # spoiled for good
    j.close()


def test_batch_stops_after_consecutive_failures(tmp_path):
    csv = write_csv(tmp_path / "h.csv", holder_rows(5))
    outcomes: list = []
    plan = make_plan(tmp_path / "j.sqlite", csv, outcomes)
    plan.keys = None                             # every card fails at `authenticate`
    run_batch([SimSlot("blank", 10)], tmp_path / "j.sqlite", plan)
    assert [o.outcome for o in outcomes] == ["failed"] * 3
    assert "3 cards in a row were not personalised" in plan.stop_reason
    assert all(r[3] == "pending" for r in journal_rows(tmp_path / "j.sqlite"))


def test_pcsc_slot_waits_out_a_lost_pcscd_and_an_unplugged_reader(monkeypatch):
    # A bureau station runs for hours: pcscd restarts, a USB reader is re-plugged. The
    # slot waits for it, says so once when it starts and once when it ends, and goes on.
    from sbcard.errors import NoServiceError
    from sbcard.ops.personalise import PcscSlot
    from sbcard.transport import pcsc
    from sbcard.transport.pcsc import ReaderInfo

    name = "ACME Reader 00 00"
    empty = [ReaderInfo(0, name, False, b"")]
    states: list[object] = [empty, NoServiceError("pcscd is not running"),
                            NoServiceError("pcscd is not running"), [], [],
                            empty, [ReaderInfo(0, name, True, bytes.fromhex("3B00"))]]
    seen: list[object] = []

    def list_readers():
        state = states.pop(0) if len(states) > 1 else states[0]
        seen.append(state)
        if isinstance(state, Exception):
            raise state
        return state

    monkeypatch.setattr(pcsc, "list_readers", list_readers)
    said: list[str] = []
    slot = PcscSlot("ACME", lambda reader: None, say=said.append)
    assert slot.name == name
    presence = [slot._present() for _ in range(6)]
    assert presence == [False, False, False, False, False, True]
    assert said == [
        f"{name}: pcscd is not running; waiting for it 等待读卡器",
        f"{name}: the reader is gone (unplugged?); waiting for it 等待读卡器",
        f"{name}: reader back 读卡器已恢复",
    ]


ZH_HEADERS = {"ssn": "社会保障号码", "name": "姓名", "sex": "性别", "ethnicity": "民族",
              "birthplace": "出生地", "birth_date": "出生日期", "card_no": "卡号",
              "card_type": "卡的类别", "issue_date": "发卡日期", "expiry_date": "卡有效期",
              "pin": "初始密码"}


def test_csv_chinese_headers_are_the_same_columns(tmp_path):
    rows = holder_rows(2)
    english = load_holders(write_csv(tmp_path / "en.csv", rows))
    zh_rows = [{ZH_HEADERS[k]: v for k, v in r.items()} for r in rows]
    chinese = load_holders(write_csv(tmp_path / "zh.csv", zh_rows))
    assert [h.values for h in chinese] == [h.values for h in english]
    # a header written "姓名 Name" (as sbcard's own tables label it) counts as 姓名
    both = [{(f"{ZH_HEADERS[k]} {k}" if k == "name" else k): v for k, v in r.items()}
            for r in rows]
    assert load_holders(write_csv(tmp_path / "both.csv", both))[1].values["name"] == "测试2号"


def test_csv_messages_name_the_spreadsheet_cell_and_excel_artefacts(tmp_path):
    rows = [{ZH_HEADERS[k]: v for k, v in r.items()} for r in holder_rows(3)]
    rows[0]["民族"] = "1"
    rows[1]["出生日期"] = "1955/3/16"
    rows[2]["社会保障号码"] = "5.19900199E+17"
    with pytest.raises(CsvInvalid) as err:
        load_holders(write_csv(tmp_path / "zh.csv", rows))
    problems = err.value.problems
    assert any(p.startswith("row 2: ethnicity: column D (民族):") and "write 01" in p
               for p in problems), problems
    assert any(p.startswith("row 3: birth_date: column F (出生日期):") and "19550316" in p
               for p in problems), problems
    assert any(p.startswith("row 4: ssn: column A (社会保障号码):") and "scientific" in p
               for p in problems), problems
    # the same column twice, under two names, is refused
    dup = [{**r, "ssn": r["社会保障号码"]} for r in rows]
    with pytest.raises(BadInputError, match="both ssn"):
        load_holders(write_csv(tmp_path / "dup.csv", dup))


def test_every_operator_facing_row_is_the_spreadsheet_row(capsys, tmp_path):
    """Holder 3 is spreadsheet row 4 (header = row 1) in validation, status and report."""
    from sbcard.ops.batch_report import OutcomeLog, ReportWriter, describe, status_lines

    rows = holder_rows(4)
    rows[2]["sex"] = "7"
    code, _, err = run_cli(capsys, "personalise", str(write_csv(tmp_path / "bad.csv", rows)))
    assert code == 3 and "row 4: sex: column C (sex):" in err
    csv = write_csv(tmp_path / "h.csv", holder_rows(4))
    report = tmp_path / "r.csv"
    outcomes: list = []
    plan = make_plan(tmp_path / "j.sqlite", csv, outcomes)
    with ReportWriter(report) as writer:
        plan.on_outcome = OutcomeLog(writer, outcomes.append)
        bad = blank_card(3)                       # the third card presented: holder 3's
        bad.command_hooks.append(lambda card, cmd: (b"", 0x6581) if cmd.ins == 0xDC else None)
        run_batch([ListSlot([blank_card(1), blank_card(2), bad])], tmp_path / "j.sqlite", plan)
    failed = [o for o in outcomes if o.outcome == "failed"]
    assert len(failed) == 1 and failed[0].row_no == 3            # the journal's data row
    assert f"card {card_id_hex(bad)} (CSV row 4): failed" in describe(failed[0])
    import csv as csv_module

    with open(report, newline="", encoding="utf-8") as f:
        reported = list(csv_module.DictReader(f))
    assert [(r["row"], r["outcome"]) for r in reported] == [("2", "done"), ("3", "done"),
                                                             ("4", "failed")]
    with Journal(tmp_path / "j.sqlite") as j:
        lines = status_lines(j, plan.batch_id)
    assert [line.split()[:2] for line in lines[:4]] == [["row", "2"], ["row", "3"],
                                                       ["row", "4"], ["row", "5"]]
    # the rejected card's holder waits for the next card, with the failure beside it
    assert "pending" in lines[2] and "attempts 1" in lines[2] and "6581" in lines[2]
    code, out, _ = run_cli(capsys, "personalise", str(csv), "--journal",
                           str(tmp_path / "j.sqlite"), "--status", "--json")
    assert code == 0
    assert [(h["row"], h["status"]) for h in json.loads(out)["holders"]][2] == (4, "pending")


def test_holders_csv_from_stdin_and_report_to_stdout(capsys, tmp_path):
    """`personalise -` reads the CSV from stdin (needs --journal); `--report -` writes JSON
    lines to stdout and the summary to stderr."""
    text = (tmp_path / "x.csv")
    write_csv(text, holder_rows(3))
    data = text.read_text(encoding="utf-8")
    code, _, err = run_cli(capsys, "--sim", "blank", "--keys", "test", "personalise", "-",
                           stdin=data)
    assert code == 2 and "needs --journal" in err
    code, _, err = run_cli(capsys, "--sim", "blank", "--keys", "test", "personalise", "-",
                           "--journal", str(tmp_path / "j.sqlite"), "--initial-pin-stdin",
                           stdin=data)
    assert code == 2 and "cannot both come from stdin" in err
    code, out, err = run_cli(capsys, "--sim", "blank", "--keys", "test", "personalise", "-",
                             "--journal", str(tmp_path / "j.sqlite"), "--report", "-",
                             "--no-progress", stdin=data)
    assert code == 0, err
    lines = [json.loads(x) for x in out.splitlines()]           # stdout: the report only
    assert [(x["row"], x["outcome"]) for x in lines] == [(2, "done"), (3, "done"), (4, "done")]
    assert "done 完成 3/3" in err and not (tmp_path / "-").exists()
    code, out, _ = run_cli(capsys, "personalise", "-", "--journal", str(tmp_path / "j.sqlite"),
                           "--status")
    assert code == 0 and "3/3 done" in out
    rows = holder_rows(3)
    rows[2]["sex"] = "7"
    write_csv(text, rows)
    code, _, err = run_cli(capsys, "personalise", "-", "--dry-run",
                           stdin=text.read_text(encoding="utf-8"))
    assert code == 3 and "stdin: 1 problem" in err and "row 4: sex" in err
