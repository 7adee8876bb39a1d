"""The medical purse of DF04 in offline mode (医疗保险脱网): its commands and data, as the spec
gives them — data only, no cryptography and no card I/O.

Sources: 社会保障(个人)卡规范 part 5 §7 (专有命令: tables 49–78, CLA ``B0``), part 7 §11–§12
and §15 (the load and purchase flows: what SESLK/SESPK, MAC1, MAC2 and TAC are computed over,
the transaction detail record), part 9 §9.9/§9.10 (the PSAM's INIT SAM FOR PURCHASE ``80 70``
and CREDIT SAM FOR PURCHASE ``80 72``) — gdgly/SI_3rdCard
``docs/社保卡指令文档资料_银海提供/``. What these documents do not define (which card key
index, the transaction type code, how DPK/DTK are diversified for a card, how the national
``iDoDebit`` maps its two amounts onto the card's three) is not guessed here:
docs/spec-uncertainties.md lists it.

Amounts are unsigned 4-byte binary numbers of fen (分, 0.01 yuan), as part 5 tables 51–71
give them ("4 字节", type b); the national interface carries them as yuan with two decimals
below 42949672.95 (2³² fen).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from sbcard.apdu.command import CommandApdu
from sbcard.errors import BadInputError

CLA = 0xB0
INS_INITIALIZE = 0x28          # P1 00 load / 01 purchase (tables 65, 69)
INS_CREDIT_FOR_LOAD = 0x2A     # table 50
INS_DEBIT_FOR_PURCHASE = 0x2C  # table 54
INS_GET_BALANCE = 0x26         # table 58
INS_GET_TRANSACTION_PROOF = 0x2E   # table 61
INS_STARTING_DAY = 0x56        # P1 00 update (table 73) / 01 get (table 76)

MAX_AMOUNT_FEN = 0xFFFFFFFF    # 4 bytes: the national "小于 42949672.95" limit


class PurseState(Enum):
    """Part 5 §7: the card is in one of three states while DF04 is selected."""

    IDLE = "空闲"
    LOAD = "帐户划入"
    PURCHASE = "医疗消费"


#: Part 5 table 49: the state after a command succeeds, per current state; absent = the
#: command is not allowed in that state (the card answers 6901 and becomes idle). A command
#: that fails also leaves the card idle. GET BALANCE / GET TRANSACTION PROOF keep the state.
NEXT_STATE: dict[tuple[int, int, PurseState], PurseState] = {
    **{(INS_INITIALIZE, 0x00, s): PurseState.LOAD for s in PurseState},
    **{(INS_INITIALIZE, 0x01, s): PurseState.PURCHASE for s in PurseState},
    (INS_CREDIT_FOR_LOAD, 0x00, PurseState.LOAD): PurseState.IDLE,
    (INS_DEBIT_FOR_PURCHASE, 0x01, PurseState.PURCHASE): PurseState.IDLE,
    **{(INS_GET_BALANCE, 0x00, s): s for s in PurseState},
    **{(INS_GET_TRANSACTION_PROOF, 0x00, s): s for s in PurseState},
}


class Balance(Enum):
    """GET BALANCE P2 (table 58): which amount, and the Le of its answer."""

    CIA = 0x01      # 卡内基本医疗保险个人帐户余额
    SPIP = 0x02     # 年度个人自付累计金额 (+ 支付年度)
    SPFP = 0x03     # 年度统筹基金支付累计金额 (+ 支付年度)

    @property
    def le(self) -> int:
        return 4 if self is Balance.CIA else 6


def _amount(value: int, what: str) -> bytes:
    if not 0 <= value <= MAX_AMOUNT_FEN:
        raise BadInputError(f"{what}: {value} fen is outside 0..{MAX_AMOUNT_FEN}")
    return value.to_bytes(4, "big")


def _fixed(value: bytes, size: int, what: str) -> bytes:
    if len(value) != size:
        raise BadInputError(f"{what} must be {size} bytes, got {len(value)}")
    return value


@dataclass(frozen=True)
class Amounts:
    """The three amounts of a purchase, in fen (part 5 table 70, part 7 §12.3)."""

    account: int        # 个人帐户交易金额 (CIA debit)
    self_paid: int      # 个人自付金额 (SPIP)
    pool_paid: int      # 统筹基金支付金额 (SPFP)

    def to_bytes(self) -> bytes:
        return (_amount(self.account, "个人帐户交易金额")
                + _amount(self.self_paid, "个人自付金额")
                + _amount(self.pool_paid, "统筹基金支付金额"))


def initialize_for_purchase(key_index: int, amounts: Amounts, terminal: bytes) -> CommandApdu:
    """``B0 28 01 01 13`` key index ‖ three amounts ‖ terminal number (6) ``16`` (table 69)."""
    if not 0 <= key_index <= 0xFF:
        raise BadInputError("key index is one byte")
    data = bytes((key_index,)) + amounts.to_bytes() + _fixed(terminal, 6, "终端机编号")
    return CommandApdu(CLA, INS_INITIALIZE, 0x01, 0x01, data, 0x16,
                       name="INITIALIZE FOR PURCHASE")


@dataclass(frozen=True)
class PurchaseInit:
    """The answer to INITIALIZE FOR PURCHASE (table 71, 22 bytes)."""

    cia_balance: int
    spip_total: int
    spfp_total: int
    pay_year: bytes         # 支付年度, 2 bytes
    seq: int                # 医疗消费交易序号
    key_version: int
    algorithm: int
    random: bytes           # 伪随机数 (ICC), 4 bytes

    SIZE = 22

    @classmethod
    def parse(cls, data: bytes) -> PurchaseInit:
        if len(data) != cls.SIZE:
            raise BadInputError(f"INITIALIZE FOR PURCHASE answered {len(data)} bytes, not "
                                f"{cls.SIZE} (part 5 table 71)")
        n = int.from_bytes
        return cls(n(data[0:4], "big"), n(data[4:8], "big"), n(data[8:12], "big"),
                   data[12:14], n(data[14:16], "big"), data[16], data[17], data[18:22])

    def to_bytes(self) -> bytes:
        return (self.cia_balance.to_bytes(4, "big") + self.spip_total.to_bytes(4, "big")
                + self.spfp_total.to_bytes(4, "big") + _fixed(self.pay_year, 2, "支付年度")
                + self.seq.to_bytes(2, "big") + bytes((self.key_version, self.algorithm))
                + _fixed(self.random, 4, "伪随机数"))


def debit_for_purchase(terminal_seq: bytes, time: bytes, mac1: bytes) -> CommandApdu:
    """``B0 2C 01 00 0F`` terminal transaction number (4) ‖ time (7) ‖ MAC1 (4) ``08``
    (tables 54–55); the answer is TAC (4) ‖ MAC2 (4) (table 56)."""
    data = (_fixed(terminal_seq, 4, "终端交易序号") + _fixed(time, 7, "交易时间")
            + _fixed(mac1, 4, "MAC1"))
    return CommandApdu(CLA, INS_DEBIT_FOR_PURCHASE, 0x01, 0x00, data, 0x08,
                       name="DEBIT FOR PURCHASE")


def get_balance(which: Balance) -> CommandApdu:
    """``B0 26 00 P2`` Le 04/06 (table 58); needs the PIN when the holder set one."""
    return CommandApdu(CLA, INS_GET_BALANCE, 0x00, which.value, b"", which.le,
                       name=f"GET BALANCE ({which.name})")


def get_transaction_proof(kind: int, seq: int) -> CommandApdu:
    """``B0 2E 00 <type> 02 <seq> 08``: MAC ‖ TAC of an earlier load/purchase (tables 61–63)."""
    return CommandApdu(CLA, INS_GET_TRANSACTION_PROOF, 0x00, kind, seq.to_bytes(2, "big"), 0x08,
                       name="GET TRANSACTION PROOF")


def get_starting_day() -> CommandApdu:
    """``B0 56 01 00`` Le 02: the yearly starting day, mmdd (tables 76–77)."""
    return CommandApdu(CLA, INS_STARTING_DAY, 0x01, 0x00, b"", 0x02, name="GET STARTING DAY")


# -- what the keys are applied to (part 7 §12; the keys themselves are not defined here) ----

def sespk_input(random: bytes, seq: int, terminal_seq: bytes) -> bytes:
    """SESPK's input (part 7 §12.2): 伪随机数(ICC) ‖ 医疗消费交易序号 ‖ the rightmost two bytes
    of the terminal transaction number — 8 bytes, enciphered with DPK."""
    return (_fixed(random, 4, "伪随机数") + seq.to_bytes(2, "big")
            + _fixed(terminal_seq, 4, "终端交易序号")[2:])


def mac1_data(amounts: Amounts, kind: int, terminal: bytes, time: bytes) -> bytes:
    """What MAC1 is computed over with SESPK (part 7 §12.3, in this order)."""
    return (amounts.to_bytes() + bytes((kind,)) + _fixed(terminal, 6, "终端机编号")
            + _fixed(time, 7, "交易时间"))


def mac2_data(amounts: Amounts) -> bytes:
    """What MAC2 is computed over with SESPK (part 7 §12.6)."""
    return amounts.to_bytes()


def tac_data(amounts: Amounts, kind: int, terminal: bytes, terminal_seq: bytes,
             time: bytes) -> bytes:
    """What the TAC is computed over with DTK itself (part 7 §12.6 and §15)."""
    return (amounts.to_bytes() + bytes((kind,)) + _fixed(terminal, 6, "终端机编号")
            + _fixed(terminal_seq, 4, "终端交易序号") + _fixed(time, 7, "交易时间"))
