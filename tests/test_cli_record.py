"""``sbcard record files|read|write`` on the simulated card (DF01–DF07, 人社信息函〔2012〕37号)."""

from __future__ import annotations

import json

import pytest

from tests.cli_runner import run_cli


@pytest.fixture(autouse=True)
def _no_env_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SBCARD_KEYS", raising=False)


def test_files_lists_access_and_items_without_a_card(capsys) -> None:
    code, out, _ = run_cli(capsys, "record", "files", "DF03", "--json")
    assert code == 0
    files = {f["file"]: f for f in json.loads(out)["files"]}
    assert files["DF03EF05"]["read"] == "PIN 或 RK2DF03 (85)"
    assert files["DF03EF19"]["structure"] == "fixed-length records"
    code, out, _ = run_cli(capsys, "record", "files", "DF04")
    assert "PIN & RK1DF04 (84)" in out and "不允许 never" in out


def test_write_then_read_with_a_state_file(capsys, tmp_path) -> None:
    state = str(tmp_path / "card.json")
    base = ("--sim", "demo", "--sim-state", state, "--keys", "test", "record")
    code, _, err = run_cli(capsys, *base, "write", "DF01EF15", "2A=7",
                           "40:2=400^080901^测试大学^")
    assert code == 0, err
    code, _, err = run_cli(capsys, *base, "write", "DF02EF07",
                           "2010101^20200101^20221231^测试公司^", "--mac")
    assert code == 0, err
    code, out, err = run_cli(capsys, *base, "read", "DF01EF15", "2A", "40:2", "--json",
                             "--pin-stdin", stdin="123456\n")
    assert code == 0, err
    items = json.loads(out)["items"]
    assert [(i["item"], i["text"]) for i in items] == [("2A", "7"),
                                                        ("40:2", "400^080901^测试大学^")]
    code, out, err = run_cli(capsys, *base, "read", "DF02EF07", "--auth", "key")
    assert code == 0, err
    assert "2010101^20200101^20221231^测试公司^" in out and "就业记录信息文件" in out


def test_read_asks_no_pin_for_the_key_method_and_needs_keys(capsys) -> None:
    code, _, err = run_cli(capsys, "--sim", "demo", "record", "read", "DF01EF0A", "--auth",
                           "key")
    assert code == 2 and "key source" in err


def test_wrong_pin_is_exit_6_and_last_try_is_kept(capsys) -> None:
    code, _, err = run_cli(capsys, "--sim", "demo", "record", "read", "DF01EF0A", "37",
                           "--pin-stdin", stdin="999999\n")
    assert code == 6, err
    code, _, err = run_cli(capsys, "--sim", "lasttry", "record", "read", "DF01EF0A", "37",
                           "--pin-stdin", stdin="123456\n")
    assert code == 8 and "Traceback" not in err


def test_medical_transactions_cannot_be_written(capsys) -> None:
    code, _, err = run_cli(capsys, "--sim", "demo", "--keys", "test", "record", "write",
                           "DF04EF08", "0001^1^000001^20240101120000^^^^")
    assert code == 8 and "不允许改写" in err


def test_bad_file_name_is_one_line(capsys) -> None:
    code, _, err = run_cli(capsys, "--sim", "demo", "record", "read", "DF09EF05")
    lines = err.strip().splitlines()          # the profile choice is said first (regions.toml)
    assert code != 0 and len(lines) == 2 and lines[0].startswith("card profile mohrss-2.0:")


def test_transparent_file_content_that_is_not_hex_is_one_line(capsys) -> None:
    code, _, err = run_cli(capsys, "--sim", "demo", "--keys", "test", "record", "write",
                           "DF01EF16", "zz")
    assert code == 3 and "DF01EF16 content: 'z' at position 1 is not a hex digit" in err
    assert "Traceback" not in err
