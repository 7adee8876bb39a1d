"""The simulated DF04 medical purse against part 5 §7 and part 7 §12.

Rules checked (社会保障(个人)卡规范, gdgly/SI_3rdCard docs/社保卡指令文档资料_银海提供/): table 49
(6901 outside the allowed state, idle after a failure), table 58 (GET BALANCE Le 04/06, PIN
first), §12.2 (9403 key index, 9401 balance), §12.5 (9302 wrong MAC1), §12.6 (balance,
yearly totals, number + 1, detail record, MAC2 and TAC), table 61–63 (transaction proof).
MAC1 is computed here from the parts the spec lists (part 7 §12.3) with the persona's DPK —
the key derivation is the simulator's documented assumption.
"""

from __future__ import annotations

import pytest

from sbcard.apdu import commands as cmds
from sbcard.apdu.command import CommandApdu
from sbcard.apdu.sw import SW
from sbcard.card import purse
from sbcard.card.filesystem import RID_MOHRSS, Access, DfSpec, EfSpec, Structure
from sbcard.crypto import card_algos
from sbcard.sim.card_os import SimDF
from tests.fakes import recorded_sim_card

DF04_AID = RID_MOHRSS + b"\x03"          # 社会保险应用 2, part 6 §5.1
TERMINAL = bytes.fromhex("519900000001")
TIME = bytes.fromhex("20261202120000")
TERMINAL_SEQ = bytes.fromhex("0000002A")


def _card():
    card, ch, sent = recorded_sim_card("medical")
    if not any(df.spec.fid == 0xDF04 for df in card.apps.values()):
        # DF04 itself belongs to the card model of 人社信息函〔2012〕37号; a minimal one here
        ef08 = EfSpec("EF08", 0xEF08, 0x08, Structure.CYCLIC, "医疗交易明细文件",
                      "medical transactions", read=Access.parse("pin"), write=Access(never=True))
        spec = DfSpec("DF04", 0xDF04, DF04_AID, "社会保险2", "social insurance 2", (ef08,))
        card.apps[DF04_AID] = SimDF.build(spec, None, b"\x6F\x00")
    ch.check(cmds.select_by_name(DF04_AID))
    return card, ch, sent


def _send(ch, cmd: CommandApdu):
    return ch.send(cmd)


def _verify_pin(ch) -> None:
    ch.check(CommandApdu(0x00, 0x20, 0x00, 0x00, bytes.fromhex("123456")))


def _purchase(card, ch, amounts, *, when=TIME, terminal_seq=TERMINAL_SEQ, mac1=None):
    r = ch.check(purse.initialize_for_purchase(0x01, amounts, TERMINAL))
    init = purse.PurchaseInit.parse(r.data)
    st = card.purse
    session = card_algos.session_key(st.algorithm, st.dpk,
                                     purse.sespk_input(init.random, init.seq, terminal_seq))
    good = card_algos.mac(st.algorithm, session,
                          purse.mac1_data(amounts, 0x06, TERMINAL, when))
    return init, session, ch.send(purse.debit_for_purchase(terminal_seq, when, mac1 or good))


def test_balance_needs_the_pin_and_answers_table_59():
    _, ch, _ = _card()
    assert _send(ch, purse.get_balance(purse.Balance.CIA)).sw == SW.SECURITY_NOT_SATISFIED
    _verify_pin(ch)
    assert ch.check(purse.get_balance(purse.Balance.CIA)).data == (50000).to_bytes(4, "big")
    assert ch.check(purse.get_balance(purse.Balance.SPIP)).data == bytes(4) + b"\x20\x26"
    assert ch.check(purse.get_starting_day()).data == b"\x01\x01"


def test_state_rules_of_table_49():
    _, ch, _ = _card()
    _verify_pin(ch)
    debit = purse.debit_for_purchase(bytes(4), TIME, bytes(4))
    assert _send(ch, debit).sw == 0x6901                    # no INITIALIZE FOR PURCHASE
    amounts = purse.Amounts(100, 0, 0)
    assert _send(ch, purse.initialize_for_purchase(0x02, amounts, TERMINAL)).sw == 0x9403
    assert _send(ch, purse.initialize_for_purchase(
        0x01, purse.Amounts(50001, 0, 0), TERMINAL)).sw == 0x9401
    ch.check(purse.initialize_for_purchase(0x01, amounts, TERMINAL))
    assert _send(ch, debit).sw == 0x9302                    # wrong MAC1
    assert _send(ch, debit).sw == 0x6901                    # the failure left the card idle


def test_purchase_debits_records_and_proves():
    card, ch, _ = _card()
    _verify_pin(ch)
    amounts = purse.Amounts(account=1234, self_paid=500, pool_paid=10000)
    init, session, r = _purchase(card, ch, amounts)
    assert r.ok and len(r.data) == 8 and init.seq == 0 and init.cia_balance == 50000
    tac, mac2 = r.data[:4], r.data[4:]
    st = card.purse
    assert mac2 == card_algos.mac(st.algorithm, session, amounts.to_bytes())
    tac_key = bytes(a ^ b for a, b in zip(st.dtk[:8], st.dtk[8:], strict=True))   # DES card
    assert tac == card_algos.mac(st.algorithm, tac_key, purse.tac_data(
        amounts, 0x06, TERMINAL, TERMINAL_SEQ, TIME))
    assert ch.check(purse.get_balance(purse.Balance.CIA)).data == (50000 - 1234).to_bytes(4, "big")
    assert ch.check(purse.get_balance(purse.Balance.SPFP)).data == \
        (10000).to_bytes(4, "big") + b"\x20\x26"
    record = ch.check(cmds.read_record(1, sfi=8, le=28)).data
    assert record == (b"\x00\x00" + b"\x06" + TERMINAL + TIME + amounts.to_bytes())
    assert ch.check(purse.get_transaction_proof(0x06, 0)).data == mac2 + tac
    assert _send(ch, purse.get_transaction_proof(0x06, 1)).sw == 0x9406
    init2, _, r2 = _purchase(card, ch, purse.Amounts(1, 0, 0))
    assert r2.ok and init2.seq == 1


def test_a_new_year_restarts_the_yearly_totals():
    card, ch, _ = _card()
    _verify_pin(ch)
    _purchase(card, ch, purse.Amounts(0, 500, 700))
    _, _, r = _purchase(card, ch, purse.Amounts(0, 100, 200),
                        when=bytes.fromhex("20270105080000"))
    assert r.ok
    assert (card.purse.pay_year, card.purse.spip, card.purse.spfp) == (2027, 100, 200)


def test_purse_commands_outside_df04_keep_their_previous_meaning():
    _, ch, _ = _card()
    ch.check(cmds.select_by_name(bytes.fromhex("7378312E73682EC9E7BBE1B1A3D5CF")))
    assert _send(ch, purse.get_balance(purse.Balance.CIA)).sw != SW.OK


@pytest.mark.parametrize("persona", ["demo", "v3"])
def test_personas_without_purse_data_have_no_purse(persona):
    card, _, _ = recorded_sim_card(persona)
    assert card.purse is None


def test_debit_records_read_back_with_record_read(capsys, tmp_path):
    """Two purchases on the card, then `sbcard record read DF04EF08` (医疗交易明细, cyclic,
    read PIN, notice table 7) gives them newest first, items as part 7 §12.6 wrote them."""
    import json

    from sbcard.sim import state as sim_state
    from tests.cli_runner import run_cli

    card, ch, _ = _card()
    _verify_pin(ch)
    _purchase(card, ch, purse.Amounts(account=1234, self_paid=500, pool_paid=10000))
    _purchase(card, ch, purse.Amounts(account=1, self_paid=2, pool_paid=3),
              when=bytes.fromhex("20261203093015"), terminal_seq=bytes.fromhex("0000002B"))
    path = tmp_path / "card.json"
    sim_state.save(path, sim_state.capture(card, "medical"))
    code, out, err = run_cli(capsys, "--sim", "medical", "--sim-state", str(path), "record",
                             "read", "DF04EF08", "--pin-stdin", "--json", stdin="123456\n")
    assert code == 0, err
    texts = [i["text"] for i in json.loads(out)["items"]]
    # 交易序号 (b) ^ 交易类型 (an: the purchase type byte 06, not a printable character)
    # ^ 终端机编号 ^ 交易时间 ^ 个人账户 ^ 个人自付 ^ 统筹 (b, fen as hex)
    assert [t.split("^")[0] for t in texts] == ["0001", "0000"]
    assert texts[0].split("^")[1] == "\x06"        # see docs/spec-uncertainties.md
    assert texts[0].split("^")[2:7] == ["519900000001", "20261203093015", "00000001",
                                        "00000002", "00000003"]
    assert texts[1].split("^")[2:7] == ["519900000001", "20261202120000", "000004D2",
                                        "000001F4", "00002710"]
    code, out, err = run_cli(capsys, "--sim", "medical", "--sim-state", str(path), "record",
                             "read", "DF04EF08", "1", "--pin-stdin", "--json", stdin="123456\n")
    assert code == 0, err
    assert json.loads(out)["items"][0]["text"] == texts[0]
