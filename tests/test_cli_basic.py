"""The CLI over the in-process simulator: output, JSON, exit codes, one-line errors."""

import json

import pytest

from sbcard.cli.argv import normalise_sim
from sbcard.cli.main import COMMANDS
from tests.cli_runner import run_cli

SELECT = "00A404000F7378312E73682EC9E7BBE1B1A3D5CF00"




def test_sim_flag_alone_means_demo():
    assert normalise_sim(["--sim", "atr"], COMMANDS) == ["--sim", "demo", "atr"]
    assert normalise_sim(["--sim", "v3", "atr"], COMMANDS) == ["--sim", "v3", "atr"]
    assert normalise_sim(["--sim", "--trace", "atr"], COMMANDS)[:2] == ["--sim", "demo"]


def test_atr_table_and_json(capsys):
    code, out, _ = run_cli(capsys, "--sim", "atr")
    assert code == 0 and "卡片分散因子 Card diversification factor" in out
    code, out, _ = run_cli(capsys, "--sim", "v3", "atr", "--json")
    data = json.loads(out)
    assert data["social_security"]["serial"] == "C0666779"
    assert data["social_security"]["diversification_factor"] == "86845199C0666779"


def test_apdu_prints_response_and_meaning(capsys):
    code, out, _ = run_cli(capsys, "--sim", "apdu", SELECT, "00B2072C00")
    assert code == 0
    assert "<< 0709413030303030303131 9000  成功 success" in out


def test_apdu_masks_pin_and_reports_failure_exit(capsys):
    code, out, _ = run_cli(capsys, "--sim", "apdu", SELECT, "0020000003999999")
    assert code == 5
    assert "999999" not in out and "63C2" in out


def test_apdu_expect_mask(capsys):
    code, _, _ = run_cli(capsys, "--sim", "apdu", "--expect", "63C?", SELECT[:-2], "0020000000")
    assert code == 5                      # SELECT returned 9000, not 63C?
    code, _, _ = run_cli(capsys, "--sim", "apdu", "--expect", "63C?", "0020000000")
    assert code == 0


def test_apdu_raw_shows_61xx(capsys):
    code, out, _ = run_cli(capsys, "--sim", "t0quirks", "apdu", "--raw", "--json", SELECT)
    assert code == 0 and json.loads(out)[0]["sw"] == "611E"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("--sim", "apdu", "00A"), 3, "odd number of hex digits"),
        (("--sim", "apdu", SELECT, "00A40400051122"), 3, "APDU 2: Lc=05 says 5"),
        (("--sim", "nope", "atr"), 3, "no persona 'nope'"),
        (("--sim", "apdu", "--expect", "90", SELECT), 2, "not a status word mask"),
        (("bogus",), 2, "No such command"),
    ],
)
def test_bad_input_is_one_line_and_nonzero(capsys, args, code, message):
    rc, _, err = run_cli(capsys, *args)
    assert rc == code
    assert message in err
    assert "Traceback" not in err


def test_trace_goes_to_stderr_masked(capsys):
    code, out, err = run_cli(capsys, "--sim", "--trace", "apdu", SELECT, "0020000003123456")
    assert code == 0, err
    assert ">> 0020000003******" in err and "123456" not in err + out
    assert "ms)" in err


def test_personas_listing(capsys):
    code, out, _ = run_cli(capsys, "sim", "personas", "--json")
    assert code == 0
    names = [p["name"] for p in json.loads(out)]
    assert {"demo", "v1", "v3", "t0quirks"} <= set(names)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--sim", "--keys", "test", "read", "--photo", "/nonexistent/dir/p.jpg"),
         "--photo: folder /nonexistent/dir does not exist"),
        (("--sim", "activate", "--id", "123", "--operator", "x", "--pin-stdin"),
         "is not an 18-character"),
        (("--sim", "apdu", "00A4", "0400"), "needs at least CLA INS P1 P2"),
        (("--sim", "script", "run", "/nonexistent.apdu"), "no such file"),
    ],
)
def test_more_bad_input_is_one_line(capsys, monkeypatch, args, message):
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.StringIO("\n"))
    rc, _, err = run_cli(capsys, *args)
    assert rc == 3 and message in err and "Traceback" not in err
