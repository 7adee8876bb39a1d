"""APDU scripts: scriptor compatibility, expectations, variables, named ops, dry runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from sbcard.compose import SessionOptions, open_session
from sbcard.errors import BadInputError
from sbcard.keys.builtin import builtin_key_file
from sbcard.ops.script import NAMED_OPS, ScriptContext, ScriptFailed, ScriptRunner, parse_script
from sbcard.ops.script_ops import OPERATIONS
from tests.cli_runner import run_cli

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "apdu_scripts"


def write(tmp_path, text: str, name: str = "s.apdu") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def run_on(persona: str, path: Path, **variables):
    lines: list[str] = []
    with open_session(SessionOptions(sim=persona)) as ch:
        ctx = ScriptContext(keys=builtin_key_file(), variables=variables, operations=OPERATIONS)
        results = ScriptRunner(ch, ctx, echo=lines.append).run(parse_script(path))
    return results, "\n".join(lines)


def test_scriptor_syntax_comments_continuation_reset_exit(tmp_path):
    p = write(tmp_path, "# comment\nreset\n00 A4 04 00 0F 73 78 31 2E 73 68 2E \\\n"
                        "  C9 E7 BB E1 B1 A3 D5 CF 00   # trailing comment\n"
                        "00A4020002EF09\nexit\n00A40000\n")
    results, out = run_on("demo", p)
    assert [r.sw for r in results] == [0x9000, 0x6A82]     # exit stops before the last line
    assert "< ATR 3B6D" in out


def test_plain_lines_accept_any_sw_and_t0_is_off_by_default(tmp_path):
    p = write(tmp_path, "00A404000F7378312E73682EC9E7BBE1B1A3D5CF00\n00C000001E\n")
    results, _ = run_on("t0quirks", p)
    assert results[0].sw == 0x611E                         # like scriptor: no GET RESPONSE
    assert results[1].sw == 0x9000 and results[1].data_hex.startswith("6F1C")


def test_option_t0_on(tmp_path):
    p = write(tmp_path, "option t0 on\n00A404000F7378312E73682EC9E7BBE1B1A3D5CF00 "
                        "expect 9000 data ^6F1C\n")
    results, _ = run_on("t0quirks", p)
    assert results[0].sw == 0x9000


def test_expectation_failure_names_file_line_apdu_and_meaning(tmp_path):
    p = write(tmp_path, "00A404000F7378312E73682EC9E7BBE1B1A3D5CF00 expect 9000\n"
                        "00B2082C00 expect 9000\n")
    with pytest.raises(ScriptFailed) as err:
        run_on("demo", p)
    msg = str(err.value)
    assert msg.startswith(f"{p}:2: 00B2082C00 → 6A83 记录未找到 record not found")
    assert "(expected 9000)" in msg


def test_masks_and_data_patterns(tmp_path):
    p = write(tmp_path, "00A404000F7378312E73682EC9E7BBE1B1A3D5CF00 expect 9?00\n"
                        "0020000000 expect 63C?\n"
                        "00B2072C0B expect 9000 data ^0709 capture CARDNO\n"
                        "echo ${CARDNO}\n"
                        "00B2072C0B data ^FFFF\n")   # raw link: exact Le (Le=00 is 6C0B)
    with pytest.raises(ScriptFailed, match=r"does not match /\^FFFF/"):
        run_on("demo", p)


def test_variables_defaults_and_includes(tmp_path):
    write(tmp_path, "set SSSE 7378312E73682EC9E7BBE1B1A3D5CF\n", "common.apdu")
    p = write(tmp_path, "include common.apdu\n00A404000F ${SSSE} 00 expect 9000\n"
                        "echo ${who:-nobody}\n")
    _, out = run_on("demo", p)
    assert "< nobody" in out


def test_unset_variable_is_an_error(tmp_path):
    p = write(tmp_path, "00A404000F ${NOPE} 00\n")
    with pytest.raises(BadInputError, match=r"s.apdu:1: variable \$\{NOPE\} is not set"):
        run_on("demo", p)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("00A4040005AABB\n", r"s.apdu:1: Lc=05 says 5 data bytes"),
        ("00A\n", "odd number of hex digits"),
        ("00A40000 expect 90\n", "not a status word mask"),
        ("00A40000 data (\n", "bad data pattern"),
        ("authenticate\n", "authenticate takes 1 argument"),
        ("option speed fast\n", "the only option"),
        ("include missing.apdu\n", "no such file"),
        ("frobnicate 1\n", "unknown command 'frobnicate'"),
        ("00 A4 zz\n", "'z' at position 5"),
    ],
)
def test_malformed_scripts_rejected_before_any_apdu(tmp_path, text, message):
    with pytest.raises(BadInputError, match=message):
        parse_script(write(tmp_path, text))


def test_dry_run_masks_pins(tmp_path):
    p = write(tmp_path, "select-ssse\nverify-pin ${pin}\n0020000003${pin}\necho ${pin}\n")
    lines = ScriptRunner(None, ScriptContext(variables={"pin": "123456"})).dry_run(
        parse_script(p))
    text = "\n".join(lines)
    assert "123456" not in text
    assert "verify-pin ******" in text and "0020000003******" in text


def test_echo_does_not_leak_secret_variables(tmp_path):
    p = write(tmp_path, "echo ${pin}\n")
    _, out = run_on("demo", p, pin="123456")
    assert "123456" not in out


def test_recipes_parse():
    for f in sorted(RECIPES.glob("*")):
        assert parse_script(f).statements, f


def test_personalise_recipe_on_blank_card():
    from tests.holders_factory import holder_rows

    row = holder_rows(1)[0]
    _, out = run_on("blank", RECIPES / "personalise-2.0.apdu", **row)
    assert "personalised card " + row["card_no"] in out
    assert "123456" not in out


def test_personalise_recipe_readback_catches_a_bad_write(tmp_path):
    from tests.holders_factory import holder_rows

    row = holder_rows(1)[0]
    recipe = (RECIPES / "personalise-2.0.apdu").read_text("utf-8").replace(
        "read-element ssn         expect ${ssn}", "read-element ssn         expect 000")
    p = write(tmp_path, recipe)
    with pytest.raises(ScriptFailed, match="社会保障号码 Social security number on the card"):
        run_on("blank", p, **row)


def test_named_op_without_key_source(tmp_path):
    p = write(tmp_path, "select-ssse\nauthenticate 04\n")
    with open_session(SessionOptions(sim="blank")) as ch, \
            pytest.raises(BadInputError, match="needs a key source"):
        ScriptRunner(ch, ScriptContext(operations=OPERATIONS)).run(parse_script(p))


def test_named_op_without_implementations(tmp_path):
    p = write(tmp_path, "select-ssse\n")
    with open_session(SessionOptions(sim="blank")) as ch, \
            pytest.raises(BadInputError, match="no implementation"):
        ScriptRunner(ch, ScriptContext()).run(parse_script(p))


def test_every_named_op_has_an_implementation():
    assert set(OPERATIONS) == set(NAMED_OPS)




def test_cli_script_run_check_and_exit_codes(capsys, monkeypatch, tmp_path):
    code, out, _ = run_cli(capsys, "--sim", "script", "run",
                       str(RECIPES / "read-basic-info.apdu"))
    assert code == 0 and "姓名 Name = 测试一" in out
    code, _, err = run_cli(capsys, "--sim", "v3", "script", "run",
                       str(RECIPES / "read-basic-info.apdu"))
    assert code == 5 and "read-basic-info.apdu:11" in err and "6982" in err
    code, out, _ = run_cli(capsys, "script", "check", *map(str, RECIPES.glob("*")))
    assert code == 0 and out.count("OK") == len(list(RECIPES.glob("*")))
    code, _, err = run_cli(capsys, "script", "check", str(write(tmp_path, "00A\n")))
    assert code == 3 and "s.apdu:1" in err


def test_cli_script_vars_and_verify_pin_recipe(capsys, monkeypatch):
    code, out, _ = run_cli(capsys, "--sim", "script", "run",
                       str(RECIPES / "verify-pin.apdu"), "--var", "pin=123456")
    assert code == 0 and "PIN correct" in out and "123456" not in out
    code, _, err = run_cli(capsys, "--sim", "script", "run",
                       str(RECIPES / "verify-pin.apdu"), "--var", "pin=999999")
    assert code == 6 and "999999" not in err


def test_run_a_shipped_recipe_by_name_and_a_script_from_stdin(capsys):
    code, out, _ = run_cli(capsys, "--sim", "script", "run", "read-basic-info")
    assert code == 0 and "测试一" in out
    code, out, _ = run_cli(capsys, "--sim", "script", "run", "-",
                           stdin="00A404000F7378312E73682EC9E7BBE1B1A3D5CF00 expect 9000\n"
                                 "00B2072C00 expect 6A82\n")
    assert code == 5 and "<stdin>:2" in out + _
    code, _, err = run_cli(capsys, "script", "check", "no-such-recipe")
    assert code == 3 and "read-basic-info.apdu" in err      # lists what is shipped
    code, out, _ = run_cli(capsys, "script", "list")
    assert code == 0 and "personalise-2.0.apdu" in out


def test_apdu_dash_reads_apdus_from_stdin(capsys):
    code, out, _ = run_cli(capsys, "--sim", "apdu", "-",
                           stdin="# select SSSE\n00A404000F7378312E73682EC9E7BBE1B1A3D5CF\n\n"
                                 "00B2072C00\n")
    assert code == 0 and out.count(">>") == 2 and "0709413030303030303131 9000" in out
    code, _, err = run_cli(capsys, "--sim", "apdu", "-", stdin="\n# nothing\n")
    assert code == 3 and "no APDU on stdin" in err


def test_apdu_lines_with_variables_are_checked_before_the_first_apdu(capsys, tmp_path):
    """issue 10 §7: a bad line 3 is found before line 1 reaches the card."""
    from tests.cli_runner import run_cli

    s = tmp_path / "v.apdu"
    s.write_text("00A4040000\n0084000008\n00DC0104 05 ${rec}\n", encoding="utf-8")
    code, _out, err = run_cli(capsys, "--sim", "--trace", "script", "run", str(s),
                             "--var", "rec=0102")          # 2 bytes, Lc says 5
    sent = [line for line in err.splitlines() if line.startswith(">>")]
    assert code == 3 and "v.apdu:3" in err and "no APDU was sent" in err
    assert sent == []


def test_script_csv_dash_takes_the_variables_from_stdin(capsys):
    stdin = "pin,name\n999999,a\n123456,b\n"
    code, out, err = run_cli(capsys, "--sim", "script", "run", str(RECIPES / "verify-pin.apdu"),
                             "--csv", "-", "--row", "2", stdin=stdin)
    assert code == 0 and "PIN correct" in out and "123456" not in out + err
    code, _, err = run_cli(capsys, "--sim", "script", "run", str(RECIPES / "verify-pin.apdu"),
                           "--csv", "-", stdin=stdin)
    assert code == 6                                   # row 1's PIN, read from stdin too
    code, _, err = run_cli(capsys, "--sim", "script", "run", "-", "--csv", "-", stdin=stdin)
    assert code == 2 and "the script and --csv cannot both come from stdin" in err


def test_dump_dash_is_refused_in_one_line(capsys):
    code, out, err = run_cli(capsys, "--sim", "--dump", "-", "atr")
    assert code == 2 and "--dump needs a file, not -" in err and out == ""
    assert not Path("-").exists()
