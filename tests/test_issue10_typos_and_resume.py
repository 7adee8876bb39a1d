"""Issue #10 §7 regressions: a mistyped ``activate --id`` never reaches the card, and a
resumed simulated batch gets new blank cards after rejected ones (``reserve_sim_serials``).

The ID numbers' check characters are worked out by hand with GB 11643-1999's weights
7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2 and the map 0→1 1→0 2→X 3→9 4→8 5→7 6→6 7→5 8→4 9→3 10→2:
51990019900101001 → Σ = 260, 260 mod 11 = 7 → '5' (so …0016 is a check-digit typo);
51990019901301001 → Σ = 285, 285 mod 11 = 10 → '2' (a good check character, month 13).
"""

from __future__ import annotations

import pytest

from tests.cli_runner import run_cli
from tests.holders_factory import holder_rows, write_csv

PINS = "123456\n739164\n739164\n"
GOOD_ID = "519900199001010015"


def activate(capsys, tmp_path, ssn: str):
    dump = tmp_path / "apdus.dump"
    code, out, err = run_cli(capsys, "--sim", "demo", "--trace", "--dump", str(dump),
                             "activate", "--id", ssn, "--operator", "op1", "--pin-stdin",
                             "--audit-db", str(tmp_path / "audit.sqlite"), stdin=PINS)
    sent = dump.read_text(encoding="utf-8").count("\n>> ") if dump.exists() else 0
    return code, out, err, sent


def test_activate_with_the_right_id_sends_apdus(capsys, tmp_path):
    """The control for the typo test: with the right number the dump records the APDUs."""
    code, _out, err, sent = activate(capsys, tmp_path, GOOD_ID)
    assert code == 0, err
    assert sent >= 5 and "\n>> 0020" in (tmp_path / "apdus.dump").read_text(encoding="utf-8")


@pytest.mark.parametrize(("ssn", "says"), [
    ("519900199001010016", "check character is '6', expected '5'"),
    ("519900199013010012", "birth date 19901301 is not a calendar date"),
])
def test_activate_id_typo_is_exit_3_and_no_apdu_is_sent(capsys, tmp_path, ssn, says):
    code, _out, err, sent = activate(capsys, tmp_path, ssn)
    assert code == 3
    assert says in err and "typo?" in err and "Nothing was sent to the card" in err
    assert sent == 0 and ">>" not in err                # neither the dump nor the trace
    assert not (tmp_path / "audit.sqlite").exists() or _no_activation(tmp_path)


def _no_activation(tmp_path) -> bool:
    import sqlite3

    con = sqlite3.connect(tmp_path / "audit.sqlite")
    try:
        return con.execute("SELECT COUNT(*) FROM activation").fetchone()[0] == 0
    finally:
        con.close()


def test_resume_after_rejected_simulated_cards_gets_new_cards(capsys, tmp_path, monkeypatch):
    """Issue #10 §7: the first run's cards with serials 1 and 2 refuse the write (6581, a
    broken card: rejected, spoiled in the journal); the resumed run must be handed fresh
    serials 6 and 7, not 1 and 2 again (then it would stop at 3/5 for ever)."""
    import sbcard.compose as compose

    refuse = {"00000001", "00000002"}
    seen: list[str] = []

    class RejectingSimSlot(compose.SimSlot):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, on_card=self.hook, **kwargs)

        @staticmethod
        def hook(card) -> None:
            serial = card.persona.card["serial"]
            seen.append(serial)
            if serial in refuse:
                card.command_hooks.append(
                    lambda _card, cmd: (b"", 0x6581) if cmd.ins in (0xDC, 0xD6) else None)

    monkeypatch.setattr(compose, "SimSlot", RejectingSimSlot)
    csv = write_csv(tmp_path / "h.csv", holder_rows(5))
    journal = tmp_path / "j.sqlite"
    args = ("--sim", "blank", "--keys", "test", "personalise", str(csv),
            "--journal", str(journal), "--no-progress")

    code, out, err = run_cli(capsys, *args)
    assert code == 1, err
    assert seen == ["00000001", "00000002", "00000003", "00000004", "00000005"]
    assert "done 完成 3" in out and "rejected cards 废卡 2" in out, out
    assert "2 holder(s) without a card yet: run the same command with --resume" in err

    seen.clear()
    code, out, err = run_cli(capsys, *args, "--resume")
    assert code == 0, err
    assert seen == ["00000006", "00000007"]              # serials continue across runs
    assert "done 完成 5" in out, out
