"""activate never leaves a card half-activated without a record (issue 10 §3)."""

from __future__ import annotations

import sqlite3
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from sbcard.errors import BadInputError
from sbcard.ops.hook import check_hook
from tests.cli_runner import run_cli
from tests.test_pin_activate import activate_args, audit_rows

PINS = "123456\n739164\n739164\n"


def no_audit_rows(db) -> bool:
    if not db.exists():
        return True
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT COUNT(*) FROM activation").fetchone()[0] == 0
    finally:
        con.close()


@pytest.mark.parametrize(("hook", "says"), [
    ("./h.sh 'unclosed", "No closing quotation"),
    ("http://[::1", "not a valid URL"),
    ("http://host:99999/x", "not a valid URL"),
    ("no-such-program-sbcard-xyz --flag", "not found"),
])
def test_bad_hook_is_refused_before_the_card(capsys, tmp_path, hook, says):
    db = tmp_path / "a.sqlite"
    rc, _out, err = run_cli(capsys, "--sim", *activate_args(db, "--hook", hook), stdin=PINS)
    assert rc == 3, err
    assert says in err and len(err.strip().splitlines()) == 1
    assert no_audit_rows(db)                         # the card was never touched


def test_non_executable_hook_is_refused_before_the_card(capsys, tmp_path):
    script = tmp_path / "h.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o644)
    db = tmp_path / "a.sqlite"
    rc, _, err = run_cli(capsys, "--sim", *activate_args(db, "--hook", str(script)), stdin=PINS)
    assert rc == 3 and "not executable" in err
    assert no_audit_rows(db)


def test_hook_failing_after_the_pin_change_is_exit_1_and_recorded(capsys, tmp_path):
    script = tmp_path / "h.sh"
    script.write_text("#!/bin/sh\necho 'back office down' >&2\nexit 2\n")
    script.chmod(0o755)
    db = tmp_path / "a.sqlite"
    rc, _, err = run_cli(capsys, "--sim", *activate_args(db, "--hook", str(script)), stdin=PINS)
    assert rc == 1
    assert "card activated, back office NOT told" in err and "back office down" in err
    step, outcome, _detail, _no, _ssn, hook = audit_rows(db)[-1]
    assert (step, outcome) == ("done", "activated") and hook.startswith("failed")


def test_http_hook_redirect_is_refused_never_turned_into_get(capsys, tmp_path):
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            seen.append("POST " + self.path)
            self.send_response(302)
            self.send_header("Location", "/moved")
            self.end_headers()

        def do_GET(self):
            seen.append("GET " + self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/enable"
        db = tmp_path / "a.sqlite"
        rc, _, err = run_cli(capsys, "--sim", *activate_args(db, "--hook", url), stdin=PINS)
    finally:
        server.shutdown()
        server.server_close()
    assert rc == 1 and "redirect" in err and "NOT told" in err
    assert seen == ["POST /enable"]                  # the GET to /moved never happened


def test_hook_url_password_never_shown_or_stored(capsys, tmp_path):
    db = tmp_path / "a.sqlite"
    url = "http://backoffice:Pw9Secret1@127.0.0.1:1/enable"
    rc, out, err = run_cli(capsys, "--sim", *activate_args(db, "--hook", url), stdin=PINS)
    assert rc == 1
    assert "Pw9Secret1" not in out + err and "backoffice:***@127.0.0.1:1" in err
    assert b"Pw9Secret1" not in db.read_bytes()


def test_plain_http_to_another_host_warns():
    assert check_hook("http://10.1.2.3/x").warnings
    assert not check_hook("http://127.0.0.1:8/x").warnings
    assert not check_hook("https://bo.example/x").warnings
    with pytest.raises(BadInputError):
        check_hook("https://")


def test_audit_db_is_private(capsys, tmp_path):
    import os
    import stat

    db = tmp_path / "a.sqlite"
    old = os.umask(0o022)
    try:
        run_cli(capsys, "--sim", *activate_args(db), stdin=PINS)
    finally:
        os.umask(old)
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
