"""iDoDebit, iDoDebit_HSM_Step1/2, iReadDebitRecord (medical purse, DF04 offline mode).

The strings are those of the reader-interface restatement [S9] (gdgly/SI_3rdCard
docs/3-四川省…读写机具规范.pdf) §8.1.2: pPayInfo = 总金额|个人账户+统筹金额|YYYYMMDDHHMMSS|, amounts
with two decimals below 42949672.95; §8.3.2: Step2's pKey = 终端交易序号|交易时间|MAC1|.
sbcard checks them and answers −13 with the reason (docs/national-interface.md).
"""

from __future__ import annotations

import pytest

from sbcard.national import codes
from sbcard.national.config import DriverConfig
from sbcard.national.debit import parse_debit_key, parse_pay_info
from sbcard.national.driver import SSCardDriver

PAY = "120.50|100.00|20261202120000|"
CARD_INFO = "519900D15600000500BF7C7A48FB4966|A00000011|"


def test_pay_info_of_the_national_format():
    info = parse_pay_info(PAY)
    assert (info.total_fen, info.account_and_pool_fen) == (12050, 10000)
    assert info.time.isoformat() == "2026-12-02T12:00:00"
    assert parse_pay_info("0.00|0.00|20261202120000").total_fen == 0      # no final | is fine


@pytest.mark.parametrize("bad", [
    "120.5|100.00|20261202120000|",          # one decimal
    "120|100.00|20261202120000|",            # no decimals
    "100.00|120.50|20261202120000|",         # the part is more than the total
    "42949672.95|0.00|20261202120000|",      # 2^32 fen does not fit 4 bytes
    "120.50|100.00|20261332120000|",         # month 13
    "120.50|100.00|",                        # two fields
    "-1.00|0.00|20261202120000|",
])
def test_malformed_pay_info_is_23(bad):
    code, text = SSCardDriver(DriverConfig(sim="v3")).iDoDebit(1, CARD_INFO, bad)
    assert code == codes.BAD_DATA and text.startswith(codes.message(codes.BAD_DATA))


def test_debit_functions_answer_13_with_the_reason():
    d = SSCardDriver(DriverConfig(sim="v3"))
    for code, text in (d.iDoDebit(1, CARD_INFO, PAY), d.iDoDebit_HSM_Step1(1, CARD_INFO, PAY),
                       d.iDoDebit_HSM_Step2("0000002A|20261202120000|11223344|")):
        assert code == codes.UNSUPPORTED
        assert "医疗消费未实现" in text and "DPK/DTK" in text
    code, text = d.iReadDebitRecord(1)
    assert code == codes.UNSUPPORTED and "DF04" in text
    assert d.iDoDebit(9, CARD_INFO, PAY)[0] == codes.CARD_TYPE
    assert d.iReadDebitRecord(0)[0] == codes.CARD_TYPE


def test_step2_key_format():
    seq, when, mac1 = parse_debit_key("0000002A|20261202120000|11223344|")
    assert (seq, mac1) == (bytes.fromhex("0000002A"), bytes.fromhex("11223344"))
    assert when.year == 2026
    d = SSCardDriver(DriverConfig(sim="v3"))
    for bad in ("2A|20261202120000|11223344|", "0000002A|2026|11223344|", "0000002A|"):
        assert d.iDoDebit_HSM_Step2(bad)[0] == codes.BAD_DATA
