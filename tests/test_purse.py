"""The DF04 medical purse as card-model data, checked against the spec's tables.

Expected lengths and orders: 社会保障(个人)卡规范 part 5 §7 (tables 49, 54–58, 61, 69–71, 76)
and part 7 §12 (gdgly/SI_3rdCard docs/社保卡指令文档资料_银海提供/).
"""

from __future__ import annotations

import pytest

from sbcard.card import purse
from sbcard.errors import BadInputError

TERMINAL = bytes.fromhex("519900000001")
TIME = bytes.fromhex("20261202190000")
AMOUNTS = purse.Amounts(account=1234, self_paid=500, pool_paid=10000)


def test_initialize_for_purchase_is_table_69():
    cmd = purse.initialize_for_purchase(0x01, AMOUNTS, TERMINAL)
    assert cmd.to_bytes().hex().upper() == (
        "B0280101" "13" "01" "000004D2" "000001F4" "00002710" "519900000001" "16")


def test_purchase_init_answer_is_table_71():
    raw = bytes.fromhex("00001388" "00000064" "000003E8" "2026" "0007" "01" "03" "A1B2C3D4")
    init = purse.PurchaseInit.parse(raw)
    assert (init.cia_balance, init.spip_total, init.spfp_total) == (5000, 100, 1000)
    assert (init.pay_year, init.seq, init.key_version, init.algorithm) == \
        (bytes.fromhex("2026"), 7, 1, 3)
    assert init.to_bytes() == raw
    with pytest.raises(BadInputError, match="table 71"):
        purse.PurchaseInit.parse(raw[:-1])


def test_debit_for_purchase_is_table_54():
    cmd = purse.debit_for_purchase(bytes.fromhex("0000002A"), TIME, bytes.fromhex("11223344"))
    assert cmd.to_bytes().hex().upper() == "B02C01000F0000002A2026120219000011223344" "08"


def test_get_balance_le_follows_p2():
    assert purse.get_balance(purse.Balance.CIA).to_bytes().hex().upper() == "B026000104"
    assert purse.get_balance(purse.Balance.SPIP).to_bytes().hex().upper() == "B026000206"
    assert purse.get_balance(purse.Balance.SPFP).to_bytes().hex().upper() == "B026000306"
    assert purse.get_starting_day().to_bytes().hex().upper() == "B056010002"
    assert purse.get_transaction_proof(0x06, 7).to_bytes().hex().upper() == "B02E0006020007" "08"


def test_state_table_49():
    S = purse.PurseState
    nxt = purse.NEXT_STATE
    assert nxt[(purse.INS_INITIALIZE, 0x01, S.LOAD)] is S.PURCHASE
    assert nxt[(purse.INS_DEBIT_FOR_PURCHASE, 0x01, S.PURCHASE)] is S.IDLE
    assert (purse.INS_DEBIT_FOR_PURCHASE, 0x01, S.IDLE) not in nxt        # → 6901
    assert (purse.INS_CREDIT_FOR_LOAD, 0x00, S.PURCHASE) not in nxt
    assert nxt[(purse.INS_GET_BALANCE, 0x00, S.PURCHASE)] is S.PURCHASE


def test_what_the_keys_are_applied_to():
    assert purse.sespk_input(bytes.fromhex("A1B2C3D4"), 7, bytes.fromhex("0000002A")) == \
        bytes.fromhex("A1B2C3D40007002A")
    assert purse.mac1_data(AMOUNTS, 0x06, TERMINAL, TIME) == (
        AMOUNTS.to_bytes() + b"\x06" + TERMINAL + TIME)
    assert len(purse.mac1_data(AMOUNTS, 0x06, TERMINAL, TIME)) == 26
    assert purse.mac2_data(AMOUNTS) == AMOUNTS.to_bytes()
    assert len(purse.tac_data(AMOUNTS, 0x06, TERMINAL, bytes(4), TIME)) == 30


def test_amounts_fit_four_bytes():
    with pytest.raises(BadInputError, match="fen"):
        purse.Amounts(2 ** 32, 0, 0).to_bytes()
    with pytest.raises(BadInputError, match="终端机编号"):
        purse.initialize_for_purchase(1, AMOUNTS, b"\x00" * 5)
