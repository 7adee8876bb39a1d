"""Everything that can be checked without a card is checked before one (issue 10 §2)."""

from __future__ import annotations

import pytest

from sbcard.ops.holders import CsvInvalid, load_holders
from tests.cli_runner import run_cli
from tests.holders_factory import holder_rows, write_csv


def test_missing_key_source_is_found_before_the_first_card(capsys, tmp_path):
    csv = write_csv(tmp_path / "h.csv", holder_rows(3))
    code, out, err = run_cli(capsys, "--sim", "blank", "personalise", str(csv),
                             "--no-progress")
    assert code == 3
    assert "the 2.0 recipe needs a key source" in err and "--keys" in err
    assert "no card was touched" in err
    assert not (tmp_path / "h.journal.sqlite").exists()          # no batch was recorded
    code, out, err = run_cli(capsys, "--sim", "blank", "personalise", str(csv), "--dry-run")
    assert code == 3 and "holders valid" not in out


def test_dry_run_shows_the_recipe_of_the_cards_in_use(capsys, tmp_path):
    csv = write_csv(tmp_path / "h.csv", holder_rows(2))
    code, out, err = run_cli(capsys, "--sim", "blank3", "--keys", "test", "personalise",
                             str(csv), "--ca", "test", "--dry-run")
    assert code == 0, err
    assert "# the 3.0 recipe" in out and "# the 2.0 recipe" not in out
    assert "sm2-issue" in out
    # readers: the generation is unknown until a card is in: both recipes, and a 3.0 card
    # without --ca would be refused, not spoiled
    code, out, err = run_cli(capsys, "--keys", "test", "personalise", str(csv), "--dry-run")
    assert code == 0, err
    assert "# the 2.0 recipe" in out and "the 3.0 recipe needs a certificate authority" in out


@pytest.mark.parametrize(("field", "value", "says"), [
    ("pin", "１２３４５６", "must be 4 to 16 digits 0-9"),
    ("name", "测试\n一", "line break"),
    ("name", "测试\x07", "control character"),
    ("name", "=HYPERLINK(\"x\")", "formula"),
    ("name", "+测试", "formula"),
    ("name", "@测试", "formula"),
    ("name", "测试\u3000", "space"),
    ("name", "\u3000测试", "space"),
    ("ssn", "５１９９００１９９００１０１００１５", "is not a digit"),
    ("card_no", "Ａ00001010", "is not an upper-case letter"),
])
def test_holder_fields_are_checked_as_they_will_be_encoded(tmp_path, field, value, says):
    rows = holder_rows(2)
    rows[1][field] = value
    with pytest.raises(CsvInvalid) as err:
        load_holders(write_csv(tmp_path / "h.csv", rows))
    problem = next(p for p in err.value.problems if p.startswith(f"row 3: {field}:"))
    assert says in problem and "\n" not in problem


def test_ascii_spaces_are_removed_and_said(tmp_path):
    rows = holder_rows(2)
    rows[0]["name"] = " 测试1号 "
    notices: list[str] = []
    holders = load_holders(write_csv(tmp_path / "h.csv", rows), notices=notices)
    assert holders[0].values["name"] == "测试1号"
    assert len(notices) == 1 and "row 2: name" in notices[0]


def test_duplicate_header_column_is_refused(tmp_path):
    p = tmp_path / "h.csv"
    rows = holder_rows(1)
    header = ",".join(rows[0]) + ",name"
    p.write_text(header + "\n" + ",".join(rows[0].values()) + ",测试二\n", encoding="utf-8")
    with pytest.raises(Exception, match="column name appears twice"):
        load_holders(p)


def test_a_huge_bad_field_gives_a_one_line_message(capsys, tmp_path):
    rows = holder_rows(2)
    rows[0]["name"] = "测" * 5000
    rows[1]["birthplace"] = "9" * 6000
    csv = write_csv(tmp_path / "h.csv", rows)
    code, _, err = run_cli(capsys, "--sim", "blank", "--keys", "test", "personalise", str(csv))
    assert code == 3
    problems = [line for line in err.splitlines() if line.strip().startswith("row ")]
    assert len(problems) == 2 and all(len(line) <= 170 for line in problems)


def test_personalise_refuses_trace_and_dump_with_sim_rather_than_ignoring(capsys, tmp_path):
    csv = write_csv(tmp_path / "h.csv", holder_rows(1))
    for extra in (("--trace",), ("--dump", str(tmp_path / "d.dump"))):
        code, _, err = run_cli(capsys, "--sim", "blank", "--keys", "test", *extra,
                               "personalise", str(csv), "--no-progress")
        assert code == 2 and "not recorded for simulated batches" in err
    assert not (tmp_path / "h.journal.sqlite").exists()


def test_an_interrupted_batch_says_how_to_resume(capsys, tmp_path, monkeypatch):
    from sbcard.ops import personalise as ops_personalise

    def interrupted(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(ops_personalise, "run_batch", interrupted)
    csv = write_csv(tmp_path / "h.csv", holder_rows(2))
    code, _, err = run_cli(capsys, "--sim", "blank", "--keys", "test", "personalise",
                           str(csv), "--no-progress")
    assert code != 0 and "run the same command with --resume" in err
