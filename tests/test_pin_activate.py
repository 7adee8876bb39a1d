"""PIN commands and activation over the in-process simulator: every path, every exit code."""

from __future__ import annotations

import io
import json
import sqlite3
import sys

import pytest

from sbcard.apdu.trace import TraceRecord
from sbcard.cli.main import main
from sbcard.errors import BadInputError, RefusedError
from sbcard.ops.pin import Pin, check_new_pin
from tests.cli_runner import run_cli

ID = "519900199001010015"




def test_pin_object_never_shows_digits():
    p = Pin("123456")
    assert "123456" not in repr(p) and "123456" not in str(p) and "123456" not in f"{p}"
    assert p.block() == bytes.fromhex("123456")
    assert Pin("12345").block() == bytes.fromhex("12345F")
    with pytest.raises(BadInputError, match="4 to 16 digits"):
        Pin("123")
    assert Pin("1234567890123456").block() == bytes.fromhex("1234567890123456")  # Lc 08
    with pytest.raises(BadInputError, match="4 to 16 digits"):
        Pin("12345678901234567")
    with pytest.raises(BadInputError, match="digits only"):
        Pin("12a456")


@pytest.mark.parametrize("digits", ["123456", "000000", "234567", "987654", "5555", "888888"])
def test_trivial_pins_refused(digits):
    with pytest.raises(RefusedError, match="too easy"):
        check_new_pin(Pin(digits))


def test_good_pin_accepted_and_same_as_old_refused():
    check_new_pin(Pin("739164"))
    with pytest.raises(RefusedError, match="same as the old"):
        check_new_pin(Pin("739164"), old=Pin("739164"))


def test_verify_pin_paths(capsys, monkeypatch):
    assert run_cli(capsys, "--sim", "verify", "pin", "--pin-stdin",
               stdin="123456\n")[0] == 0
    code, _, err = run_cli(capsys, "--sim", "verify", "pin", "--pin-stdin",
                       stdin="999999\n")
    assert code == 6 and "2 tries left" in err
    code, _, err = run_cli(capsys, "--sim", "lasttry", "verify", "pin", "--pin-stdin",
                       stdin="123456\n")
    assert code == 8 and "only 1 PIN try left" in err
    code, _, _ = run_cli(capsys, "--sim", "lasttry", "verify", "pin", "--pin-stdin",
                     "--force", stdin="123456\n")
    assert code == 0
    code, _, err = run_cli(capsys, "--sim", "pinblocked", "verify", "pin",
                       "--pin-stdin", stdin="123456\n")
    assert code == 7 and "unblock" in err


def test_verify_pin_json(capsys, monkeypatch):
    code, out, _ = run_cli(capsys, "--sim", "verify", "pin", "--pin-stdin", "--json",
                       stdin="111111\n")
    # the error object every --json command prints on failure (sbcard.cli.failure)
    error = json.loads(out)
    assert code == 6 and error["ok"] is False and error["exit_code"] == 6
    assert error["sw"] == "63C2" and error["tries_left"] == 2 and "error_zh" in error


def test_refusal_happens_before_any_verify(capsys, monkeypatch):
    records: list[TraceRecord] = []
    from sbcard.cli import common

    real = common.CliState.session

    def traced(self, *, raw=False):
        from sbcard.compose import SessionOptions, open_session

        return open_session(SessionOptions(sim=self.sim, on_record=records.append))

    monkeypatch.setattr(common.CliState, "session", traced)
    run_cli(capsys, "--sim", "lasttry", "verify", "pin", "--pin-stdin",
        stdin="123456\n")
    monkeypatch.setattr(common.CliState, "session", real)
    sent = [r.command for r in records]
    assert sent[-1] == "00200000"                            # only the tries query
    assert not any(c.startswith("0020000003") for c in sent)


def test_pin_status(capsys, monkeypatch):
    code, out, _ = run_cli(capsys, "--sim", "pin", "status", "--json")
    assert code == 0
    assert json.loads(out) == {"tries_left": 3, "blocked": False, "pin_set": True}
    _, out, _ = run_cli(capsys, "--sim", "pinblocked", "pin", "status", "--json")
    assert json.loads(out)["blocked"] is True


def test_pin_change(capsys, monkeypatch):
    code, out, _ = run_cli(capsys, "--sim", "pin", "change", "--pin-stdin",
                       stdin="123456\n739164\n739164\n")
    assert code == 0 and "changed" in out
    code, _, err = run_cli(capsys, "--sim", "pin", "change", "--pin-stdin",
                       stdin="123456\n739164\n739165\n")
    assert code == 3 and "differ" in err
    code, _, _ = run_cli(capsys, "--sim", "pin", "change", "--pin-stdin",
                     stdin="111111\n739164\n739164\n")
    assert code == 6
    code, _, err = run_cli(capsys, "--sim", "pin", "change", "--pin-stdin",
                       stdin="123456\n888888\n888888\n")
    assert code == 8 and "too easy" in err


def test_pin_reload_and_unblock_need_keys(capsys, monkeypatch):
    code, _, err = run_cli(capsys, "--sim", "pinblocked", "pin", "unblock")
    assert code == 2 and "needs a key source" in err
    code, out, _ = run_cli(capsys, "--sim", "pinblocked", "--keys", "test", "pin",
                       "unblock")
    assert code == 0 and "unblocked" in out
    code, out, _ = run_cli(capsys, "--sim", "v3", "--keys", "test", "pin", "reload",
                       "--pin-stdin", stdin="739164\n739164\n")
    assert code == 0 and "reloaded" in out


def test_reload_then_new_pin_works_in_one_session():
    from sbcard.compose import SessionOptions, open_session
    from sbcard.keys.builtin import builtin_key_file
    from sbcard.ops.pin import reload_pin, verify_pin
    from sbcard.ops.read import read_context

    for persona in ("demo", "v3", "pinblocked"):
        with open_session(SessionOptions(sim=persona)) as ch:
            reload_pin(ch, builtin_key_file(), read_context(ch), Pin("739164"))
            verify_pin(ch, Pin("739164"))


def test_unblock_with_wrong_keys_spends_no_puk_try():
    from sbcard.apdu.channel import ApduChannel
    from sbcard.card.filesystem import KEY_PUK
    from sbcard.compose import SessionOptions, open_session
    from sbcard.errors import MismatchError
    from sbcard.keys.keyfile import KeyFile
    from sbcard.ops.pin import unblock_pin
    from sbcard.ops.read import read_context
    from sbcard.sim.persona import load_persona
    from sbcard.transport.simulated import SimulatedTransport

    wrong = KeyFile.from_mapping({"key": [
        {"card_key_id": k, "algorithm": "DES", "value": "00112233445566778899AABBCCDDEEFF"}
        for k in ("00", "02", "06")]})
    card = load_persona("pinblocked").build_card()
    t = SimulatedTransport(card)
    t.connect()
    ch = ApduChannel(t)
    with pytest.raises(MismatchError):
        unblock_pin(ch, wrong, read_context(ch))
    assert card.auth.keys[KEY_PUK].tries == 15
    _ = (SessionOptions, open_session)


def activate_args(db, *extra):
    return ("activate", "--id", ID, "--operator", "op1", "--pin-stdin", "--audit-db", str(db),
            *extra)


def audit_rows(db):
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT step, outcome, detail, card_no, ssn_masked, hook FROM "
                           "activation ORDER BY id").fetchall()
    finally:
        con.close()


def test_activation_success_and_audit(capsys, monkeypatch, tmp_path):
    db = tmp_path / "a.sqlite"
    code, out, err = run_cli(capsys, "--sim", *activate_args(db, "--name", "测试一"),
                         stdin="123456\n739164\n739164\n")
    assert code == 0, err
    assert "activated" in out and "3 tries left" in err
    rows = audit_rows(db)
    assert rows[-1][:2] == ("done", "activated")
    assert rows[-1][4] == "5199**********0015"
    text = db.read_bytes()
    assert b"123456" not in text and b"739164" not in text


@pytest.mark.parametrize(
    ("persona", "extra", "code", "outcome", "step"),
    [
        ("activated", (), 6, "initial PIN rejected", "verify-initial-pin"),
        ("expired", (), 8, "refused", "validate"),
        ("appblocked", (), 7, "blocked", "read"),
        ("lasttry", (), 8, "refused", "pin-status"),
        ("pinblocked", (), 7, "blocked", "pin-status"),
        ("demo", ("--name", "测试二"), 9, "identity mismatch", "identity"),
    ],
)
def test_activation_failure_paths(capsys, monkeypatch, tmp_path, persona, extra, code, outcome,
                                  step):
    db = tmp_path / "a.sqlite"
    rc, _, err = run_cli(capsys, "--sim", persona, *activate_args(db, *extra),
                     stdin="123456\n739164\n739164\n")
    assert rc == code, err
    assert audit_rows(db)[-1][:2] == (step, outcome)


def test_activation_identity_mismatch_spends_no_pin_try(capsys, monkeypatch, tmp_path):
    db = tmp_path / "a.sqlite"
    records: list[TraceRecord] = []
    from sbcard.cli import common
    from sbcard.compose import SessionOptions, open_session

    monkeypatch.setattr(common.CliState, "session",
                        lambda self, raw=False: open_session(
                            SessionOptions(sim=self.sim, on_record=records.append)))
    monkeypatch.setattr(sys, "stdin", io.StringIO("123456\n739164\n739164\n"))
    with pytest.raises(SystemExit):
        main(["--sim", "activate", "--id", "519900199001010023", "--operator", "x",
              "--pin-stdin", "--audit-db", str(db)])
    assert not any(r.command.startswith("0020") for r in records)


def test_activation_already_activated_makes_one_try_only(capsys, monkeypatch, tmp_path):
    records: list[TraceRecord] = []
    from sbcard.cli import common
    from sbcard.compose import SessionOptions, open_session

    monkeypatch.setattr(common.CliState, "session",
                        lambda self, raw=False: open_session(
                            SessionOptions(sim=self.sim, on_record=records.append)))
    run_cli(capsys, "--sim", "activated", *activate_args(tmp_path / "a.sqlite"),
        stdin="123456\n739164\n739164\n")
    verifies = [r for r in records if r.command.startswith("0020000003")]
    assert len(verifies) == 1


def test_activation_v3_needs_keys(capsys, monkeypatch, tmp_path):
    db = tmp_path / "a.sqlite"
    v3 = ("activate", "--id", "51990020010228001X", "--operator", "op", "--pin-stdin",
          "--audit-db", str(db))
    rc, _, err = run_cli(capsys, "--sim", "v3", *v3, stdin="123456\n739164\n739164\n")
    assert rc == 8 and "RKSSSE" in err
    rc, _, err = run_cli(capsys, "--sim", "v3", "--keys", "test", *v3,
                     stdin="123456\n739164\n739164\n")
    assert rc == 0, err


def test_activation_hook_command_and_failure(capsys, monkeypatch, tmp_path):
    db = tmp_path / "a.sqlite"
    sink = tmp_path / "hook.json"
    hook = f"{sys.executable} -c \"import sys; open(r'{sink}', 'w').write(sys.stdin.read())\""
    rc, out, err = run_cli(capsys, "--sim", *activate_args(db, "--hook", hook),
                       stdin="123456\n739164\n739164\n")
    assert rc == 0, err
    assert "hook ok (exit 0)" in out
    payload = json.loads(sink.read_text())
    assert payload["card_no"] == "A00000011" and payload["outcome"] == "activated"
    assert "739164" not in sink.read_text()
    rc, _, err = run_cli(capsys, "--sim", *activate_args(db, "--hook", "false"),
                     stdin="123456\n739164\n739164\n")
    assert rc == 1 and "card activated, back office NOT told" in err
    assert audit_rows(db)[-1][5].startswith("failed")


def test_activation_http_hook(capsys, monkeypatch, tmp_path):
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    got: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            got.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.handle_request, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}/enable"
    rc, out, err = run_cli(capsys, "--sim",
                       *activate_args(tmp_path / "a.sqlite", "--hook", url),
                       stdin="123456\n739164\n739164\n")
    thread.join(5)
    server.server_close()
    assert rc == 0, err
    assert json.loads(got[0])["card_id"] == "519900D15600000500000001FFFFFFFF"
    assert "HTTP 200" in out


def test_audit_listing(capsys, monkeypatch, tmp_path):
    db = tmp_path / "a.sqlite"
    run_cli(capsys, "--sim", "expired", *activate_args(db),
        stdin="123456\n739164\n739164\n")
    code, out, _ = run_cli(capsys, "audit", "--audit-db", str(db), "--json")
    assert code == 0 and json.loads(out)[0]["outcome"] == "refused"
    # the operator's lines speak their language (--lang / SBCARD_LANG / the locale)
    code, out, _ = run_cli(capsys, "audit", "--audit-db", str(db), "--lang", "zh")
    assert "操作员 op1" in out and "已拒绝" in out and "refused" not in out.split("—")[0]
    code, out, _ = run_cli(capsys, "audit", "--audit-db", str(db), "--lang", "en")
    assert "operator op1" in out and "step validate: refused" in out
    code, out, _ = run_cli(capsys, "audit", "--audit-db", str(db))
    assert "已拒绝 refused" in out
    code, _, err = run_cli(capsys, "audit", "--audit-db", str(tmp_path / "none.db"))
    assert code == 3 and "no audit log" in err


def test_sixteen_digit_pin_change_verify_and_reload():
    """Part 5 §6.14: VERIFY Lc 02-08, so a PIN has up to 16 digits; the card takes them."""
    from sbcard.compose import SessionOptions, open_session
    from sbcard.keys.builtin import builtin_key_file
    from sbcard.ops.pin import change_pin, reload_pin, verify_pin
    from sbcard.ops.read import read_context

    long_pin = Pin("7391648205317264")
    with open_session(SessionOptions(sim="demo")) as ch:
        change_pin(ch, Pin("123456"), long_pin)
        verify_pin(ch, long_pin)
        reload_pin(ch, builtin_key_file(), read_context(ch), Pin("2846105937261840"))
        verify_pin(ch, Pin("2846105937261840"))


def test_block_card_library_call_then_every_command_6a81():
    """CARD BLOCK 84 16 00 00 ‖ MAC beside APPLICATION BLOCK (issue 11 item 8)."""
    from sbcard.apdu import commands as cmds
    from sbcard.apdu.channel import ApduChannel
    from sbcard.card.filesystem import SSSE_NAME
    from sbcard.ops.pin import block_card
    from sbcard.ops.read import read_context
    from sbcard.sim.auth import builtin_key_file
    from sbcard.sim.persona import load_persona
    from sbcard.transport.simulated import SimulatedTransport

    card = load_persona("demo").build_card()
    sent: list[str] = []
    card.command_hooks.append(lambda _c, cmd: sent.append(cmd.to_bytes().hex().upper()))
    t = SimulatedTransport(card)
    t.connect()
    ch = ApduChannel(t)
    block_card(ch, builtin_key_file(), read_context(ch))
    assert card.card_blocked and any(c.startswith("8416000004") for c in sent)
    assert ch.send(cmds.select_by_name(SSSE_NAME)).sw == 0x6A81
