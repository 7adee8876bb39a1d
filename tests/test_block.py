"""CARD BLOCK (84 16 00 00 + MAC) and APPLICATION BLOCK (84 1E 00 01 + MAC) from the CLI.

Expected card behaviour from 社会保障(个人)卡规范 part 5
(gdgly/SI_3rdCard docs/社保卡指令文档资料_银海提供/第5部分 命令.pdf):
§6.2 "当"CARD BLOCK"命令成功地完成后，
所有后续的命令都将回送状态码'6A81'（功能不被支持），
且不执行任何其他操作" (table 8: CLA 84 INS 16 P1 00 P2 00 Lc 04 MAC;
table 9: 6A86 for wrong P1/P2); §6.1: after APPLICATION BLOCK, SELECT of the
application answers 9303. Part 7 §13: application maintenance needs EXTERNAL AUTHENTICATE
with the control key first (part 6 table 3: BK, "控制锁定卡片或应用操作的密钥"), then the
command MACed with STK.
"""

from __future__ import annotations

import json

import pytest

from sbcard.apdu import commands as cmds
from sbcard.apdu.command import CommandApdu
from sbcard.apdu.sw import SW
from tests.cli_runner import run_cli
from tests.fakes import recorded_sim_card

SSSE = bytes.fromhex("7378312E73682EC9E7BBE1B1A3D5CF")
DEMO_CARD_NO = "A00000011"      # sbcard/sim/personas/demo.toml


@pytest.fixture
def sim(tmp_path):
    return ("--sim", "demo", "--keys", "test", "--sim-state", str(tmp_path / "card.json"))


def test_block_card_confirmed_by_card_number_then_every_command_answers_6a81(capsys, sim):
    code, out, err = run_cli(capsys, *sim, "block", "card", "--confirm", DEMO_CARD_NO,
                             "--json")
    assert code == 0, err
    assert json.loads(out) == {"blocked": "card", "card_no": DEMO_CARD_NO}
    code, out, err = run_cli(capsys, *sim, "read", "--json")
    assert code == 7, err                         # BLOCKED: the card answers 6A81
    assert json.loads(out)["sw"] == "6A81"
    code, _, _ = run_cli(capsys, *sim, "apdu", "--expect", "6A81", "0084000008")
    assert code == 0                              # GET CHALLENGE too: nothing works any more


def test_a_different_card_number_blocks_nothing(capsys, sim):
    code, _, err = run_cli(capsys, *sim, "block", "card", "--confirm", "B00000012")
    assert code == 9 and "A00000011" in err and "nothing was blocked" in err
    code, out, err = run_cli(capsys, *sim, "read", "--json")
    assert code == 0, err
    assert json.loads(out)["card_no"] == DEMO_CARD_NO


def test_no_confirmation_off_a_terminal_is_refused(capsys, sim):
    code, out, err = run_cli(capsys, *sim, "block", "card", "--json", stdin="")
    assert code == 8 and "--confirm" in err
    assert json.loads(out)["exit_code"] == 8
    code, _, err = run_cli(capsys, *sim, "read")
    assert code == 0, err


def test_block_needs_a_key_source(capsys, tmp_path):
    code, _, err = run_cli(capsys, "--sim", "demo", "block", "card", "--confirm",
                           DEMO_CARD_NO)
    assert code == 2 and "key source" in err


def test_block_application_then_select_answers_9303(capsys, sim):
    code, out, err = run_cli(capsys, *sim, "block", "application", "--confirm",
                             DEMO_CARD_NO.lower())          # typed in lower case: same card
    assert code == 0, err
    assert "9303" in out
    code, out, _ = run_cli(capsys, *sim, "read", "--json")
    assert code == 7 and json.loads(out)["sw"] == "9303"
    code, _, _ = run_cli(capsys, *sim, "block", "card", "--confirm", DEMO_CARD_NO)
    assert code == 7                              # the SSSE cannot be selected any more


def test_simulated_card_block_follows_part_5_section_6_2():
    from sbcard.keys.base import CardContext
    from sbcard.keys.builtin import builtin_key_file
    from sbcard.ops.pin import block_card
    from sbcard.ops.read import read_context

    card, ch, sent = recorded_sim_card("demo")
    ch.check(cmds.select_by_name(SSSE))
    assert ch.send(CommandApdu(0x84, 0x16, 0x00, 0x01, bytes(4))).sw == SW.WRONG_P1P2
    ch.check(cmds.get_challenge())
    assert ch.send(CommandApdu(0x84, 0x16, 0x00, 0x00, bytes(4))).sw == \
        SW.SECURITY_NOT_SATISFIED                        # no BK external authentication
    assert not card.card_blocked
    keys = builtin_key_file()
    ctx: CardContext = read_context(ch)
    del sent[:]
    block_card(ch, keys, ctx)
    assert card.card_blocked and sent[-1].startswith("8416000004")
    ext = next(i for i, c in enumerate(sent) if c.startswith("00820005"))   # BK = key 05
    assert ext < len(sent) - 2 and sent[-2].startswith("0084")
    for apdu in ("00A40000023F00", "0084000008", "00B2010C00", "00200000023123"):
        assert ch.send(CommandApdu.parse(bytes.fromhex(apdu))).sw == SW.FUNCTION_NOT_SUPPORTED
    card.power_on()
    assert ch.send(cmds.select_by_name(SSSE)).sw == SW.FUNCTION_NOT_SUPPORTED  # permanent


def test_block_card_with_the_simulated_psam(capsys, tmp_path):
    """The PSAM holds BK as [psam_keys] "05" (usage 08, ID 11: [S9] appendix B.2 row 0091)."""
    sim = ("--sim", "demo", "--psam", "sim", "--sim-state", str(tmp_path / "c.json"))
    code, _, err = run_cli(capsys, *sim, "block", "card", "--confirm", DEMO_CARD_NO)
    assert code == 0, err
    code, _, _ = run_cli(capsys, *sim, "read")
    assert code == 7
