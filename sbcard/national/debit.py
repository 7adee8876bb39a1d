"""The national medical-purse functions' strings: iDoDebit's pPayInfo and Step2's pKey.

Formats from the reader-interface restatement [S9] (四川省社会保障卡读写机具规范, gdgly/SI_3rdCard
``docs/3-四川省…读写机具规范.pdf``) §8.1.2 and §8.3.2:

* pPayInfo = ``本次消费总金额|个人账户交易金额和统筹基金支付金额相加的总金额|YYYYMMDDHHMMSS|``,
  amounts as decimals with two places below 42949672.95;
* Step2's pKey = ``终端交易序号|交易时间|MAC1|``.

sbcard checks these strings but does not run the transaction (``DEBIT_UNSUPPORTED`` says
why): the evidence does not define how the two amounts become the card's three
(个人帐户/个人自付/统筹基金, part 5 table 70), the transaction type code, nor how a card's
DPK/DTK are derived — docs/national-interface.md.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sbcard.card.purse import MAX_AMOUNT_FEN
from sbcard.hexutil import is_ascii_digits
from sbcard.national import codes
from sbcard.national.codes import NationalError
from sbcard.national.lines import split_fields

#: The reason every medical-purse function gives with −13.
DEBIT_UNSUPPORTED = ("（医疗消费未实现：公开规范未给出 pPayInfo 两个金额与卡片三个金额"
                     "〔个人帐户/个人自付/统筹基金〕的对应关系、交易类型取值及 DPK/DTK 的分散方式，"
                     "见 docs/national-interface.md）")

#: … and iReadDebitRecord's.
DEBIT_RECORD_UNSUPPORTED = ("（读消费交易记录未实现：DF04 医疗交易明细文件"
                            "尚不在 sbcard 的卡片模型中，"
                            "且“本次消费总金额”由记录中哪些金额组成无公开规范依据，"
                            "见 docs/national-interface.md）")

_AMOUNT = re.compile(r"^(0|[1-9][0-9]{0,7})\.[0-9]{2}$")


@dataclass(frozen=True)
class PayInfo:
    total_fen: int              # 本次消费总金额
    account_and_pool_fen: int   # 个人账户交易金额 + 统筹基金支付金额
    time: dt.datetime


def _bad(why: str) -> NationalError:
    return NationalError(codes.BAD_DATA, f"{codes.message(codes.BAD_DATA)}（{why}）")


def _fen(text: str, what: str) -> int:
    if not _AMOUNT.match(text):
        raise _bad(f"{what}应为保留两位小数的金额")
    fen = int(text.replace(".", ""))
    if fen >= MAX_AMOUNT_FEN:
        raise _bad(f"{what}应小于42949672.95")
    return fen


def _time(text: str, what: str) -> dt.datetime:
    try:
        if len(text) != 14 or not is_ascii_digits(text):   # strptime takes １２ too
            raise ValueError
        return dt.datetime.strptime(text, "%Y%m%d%H%M%S")
    except ValueError:
        raise _bad(f"{what}应为YYYYMMDDHHMMSS") from None


def parse_pay_info(text: str) -> PayInfo:
    """pPayInfo, [S9] §8.1.2(3); −23 with the reason when it is malformed."""
    fields = split_fields(text)
    if len(fields) != 3:
        raise _bad("pPayInfo应为 总金额|个人账户与统筹金额|交易时间| 三项，以|结尾")
    total = _fen(fields[0], "本次消费总金额")
    part = _fen(fields[1], "个人账户与统筹基金金额")
    if part > total:
        raise _bad("个人账户与统筹基金金额大于本次消费总金额")
    return PayInfo(total, part, _time(fields[2], "交易时间"))


def parse_debit_key(text: str) -> tuple[bytes, dt.datetime, bytes]:
    """Step2's pKey, [S9] §8.3.2(1): terminal transaction number (8 hex), time, MAC1 (8 hex)."""
    fields = split_fields(text)
    if len(fields) != 3:
        raise _bad("pKey应为 终端交易序号|交易时间|MAC1| 三项，以|结尾")
    try:
        seq, mac1 = bytes.fromhex(fields[0]), bytes.fromhex(fields[2])
    except ValueError:
        seq = mac1 = b""
    if len(seq) != 4 or len(mac1) != 4:
        raise _bad("终端交易序号与MAC1应各为8位十六进制")
    return seq, _time(fields[1], "交易时间"), mac1
