"""The offline medical purse (医疗保险脱网) of DF04, as part 5 §7 and part 7 §12 describe it.

Installed on personas with an ``[extra.purse]`` table; the commands (CLA ``B0``) are answered
while a DF with FID ``DF04`` is the current application (社会保险应用 2; the DF itself comes from
the card model of 人社信息函〔2012〕37号), elsewhere the INS keeps its previous handler:

* the state machine of part 5 table 49 (``sbcard.card.purse.NEXT_STATE``): a command not
  allowed in the current state answers 6901 and leaves the card idle, as does any failed
  command; selecting an application makes it idle;
* GET BALANCE (PIN when the holder set one, table 58), GET STARTING DAY, INITIALIZE FOR
  PURCHASE (9403 unknown key index, 9401 balance too low, 9402 counter at its maximum),
  DEBIT FOR PURCHASE (MAC1 checked → 9302; the yearly totals per part 7 §12.6; the purchase
  number + 1; a record into EF08 when the DF has one; TAC ‖ MAC2), GET TRANSACTION PROOF
  (MAC2 ‖ TAC of a purchase by its number, 9406 otherwise).

ASSUMPTIONS (no public source; written in docs/spec-uncertainties.md): the card's DPK and DTK
are ``[extra.purse] dpk`` / ``dtk`` (16 bytes hex; default: derived from the persona), SESPK =
``session_key(DPK, SESPK input)`` as every other session key (part 4 §8.4, the 8-byte input
padded like a challenge), MAC1/MAC2/TAC with the card's MAC algorithm and a zero IV (part 4
§8.2; part 7 §15: DTK left ⊕ right for DES), the purchase's transaction type ``06`` (the
PBOC electronic-purse purchase code the medical purse mirrors; ``purchase_type``), and the
transaction proof's P2 = that type. Amounts are in fen.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from sbcard.apdu.command import CommandApdu
from sbcard.apdu.sw import SW
from sbcard.card import purse as model
from sbcard.crypto import card_algos
from sbcard.crypto.symmetric import Algorithm, sm3
from sbcard.sim.card_os import Reply, SimCard, le_reply

if TYPE_CHECKING:
    from sbcard.sim.persona import Persona

DF04_FID = 0xDF04
EF08_FID = 0xEF08

@dataclass
class PurseState:
    """What the purse holds; tests read and change it directly."""

    algorithm: Algorithm
    cia: int                    # CIA 余额, fen
    spip: int                   # 年度个人自付累计金额
    spfp: int                   # 年度统筹基金支付累计金额
    pay_year: int
    starting_day: bytes         # mmdd, 2 bytes BCD
    seq: int                    # 医疗消费交易序号 of the next purchase
    key_index: int
    key_version: int
    dpk: bytes
    dtk: bytes
    purchase_type: int
    state: model.PurseState = model.PurseState.IDLE
    pending: dict[str, Any] = field(default_factory=dict)
    proofs: dict[tuple[int, int], bytes] = field(default_factory=dict)   # (type, seq) → MAC2 ‖ TAC

    def tac_key(self) -> bytes:
        """Part 7 §15: DES — DTK's halves XORed; 16-byte algorithm — DTK itself."""
        if self.algorithm is Algorithm.DES:
            return bytes(a ^ b for a, b in zip(self.dtk[:8], self.dtk[8:], strict=True))
        return self.dtk


def _bcd_date(raw: bytes) -> date | None:
    try:
        return date(int(raw[0:2].hex()), int(raw[2:3].hex()), int(raw[3:4].hex()))
    except ValueError:
        return None


def _in_df04(card: SimCard) -> bool:
    return card.current_df.spec.fid == DF04_FID


def _fail(st: PurseState, sw: int) -> Reply:
    st.state = model.PurseState.IDLE
    st.pending.clear()
    return b"", sw


def _pin_ok(card: SimCard) -> bool:
    """"该命令需验证个人密码（PIN）（如果持卡人设置）" (part 5 §7.3, part 7 §12)."""
    return card.pin.value is None or card.pin_verified


def handle(card: SimCard, cmd: CommandApdu) -> Reply:
    st = card.purse
    assert st is not None, "installed with its state"
    p1 = cmd.p1 if cmd.ins in (model.INS_INITIALIZE, model.INS_DEBIT_FOR_PURCHASE) else 0x00
    nxt = model.NEXT_STATE.get((cmd.ins, p1, st.state))
    if cmd.ins == model.INS_STARTING_DAY:
        return _starting_day(card, st, cmd)
    if nxt is None and (cmd.ins, p1) in {(i, p) for i, p, _ in model.NEXT_STATE}:
        return _fail(st, SW.NOT_ACCEPTED)
    if cmd.ins == model.INS_GET_BALANCE:
        return _balance(card, st, cmd)
    if cmd.ins == model.INS_INITIALIZE and cmd.p1 == 0x01:
        return _init_purchase(card, st, cmd)
    if cmd.ins == model.INS_DEBIT_FOR_PURCHASE:
        return _debit(card, st, cmd)
    if cmd.ins == model.INS_GET_TRANSACTION_PROOF:
        return _proof(card, st, cmd)
    # INITIALIZE FOR LOAD / CREDIT FOR LOAD: online loads need DLK and a host; not simulated
    return _fail(st, SW.FUNCTION_NOT_SUPPORTED)


def _balance(card: SimCard, st: PurseState, cmd: CommandApdu) -> Reply:
    if cmd.p1 != 0x00 or cmd.p2 not in (0x01, 0x02, 0x03):
        return _fail(st, SW.WRONG_P1P2)
    if not _pin_ok(card):
        return _fail(st, SW.SECURITY_NOT_SATISFIED)
    which = model.Balance(cmd.p2)
    year = bytes.fromhex(f"{st.pay_year:04d}")                 # 支付年度, BCD yyyy
    value = {model.Balance.CIA: st.cia, model.Balance.SPIP: st.spip,
             model.Balance.SPFP: st.spfp}[which].to_bytes(4, "big")
    data = value if which is model.Balance.CIA else value + year
    return le_reply(card, cmd, data, le_zero_rule=False)


def _starting_day(card: SimCard, st: PurseState, cmd: CommandApdu) -> Reply:
    if cmd.p1 == 0x01 and cmd.p2 == 0x00:
        return le_reply(card, cmd, st.starting_day, le_zero_rule=False)
    if cmd.p1 == 0x00 and cmd.p2 == 0x00:
        return b"", SW.SECURITY_NOT_SATISFIED        # UPDATE needs DSK (part 5 §7.7): no DSK here
    return b"", SW.WRONG_P1P2


def _init_purchase(card: SimCard, st: PurseState, cmd: CommandApdu) -> Reply:
    if cmd.p2 != 0x01:
        return _fail(st, SW.WRONG_P1P2)
    if len(cmd.data) != 0x13:
        return _fail(st, SW.WRONG_LENGTH)
    if not _pin_ok(card):
        return _fail(st, SW.SECURITY_NOT_SATISFIED)
    if cmd.data[0] != st.key_index:
        return _fail(st, SW.KEY_INDEX_UNSUPPORTED)
    n = int.from_bytes
    amounts = model.Amounts(n(cmd.data[1:5], "big"), n(cmd.data[5:9], "big"),
                            n(cmd.data[9:13], "big"))
    if amounts.account > st.cia:
        return _fail(st, SW.INSUFFICIENT_FUNDS)
    if st.seq >= 0xFFFF:
        return _fail(st, SW.COUNTER_MAX)
    random = secrets.token_bytes(4)
    st.state = model.PurseState.PURCHASE
    st.pending = {"amounts": amounts, "terminal": bytes(cmd.data[13:19]), "random": random}
    answer = model.PurchaseInit(st.cia, st.spip, st.spfp, bytes.fromhex(f"{st.pay_year:04d}"),
                                st.seq, st.key_version, st.algorithm.algorithm_id, random)
    return le_reply(card, cmd, answer.to_bytes(), le_zero_rule=False)


def _debit(card: SimCard, st: PurseState, cmd: CommandApdu) -> Reply:
    if cmd.p2 != 0x00:
        return _fail(st, SW.WRONG_P1P2)
    if len(cmd.data) != 0x0F:
        return _fail(st, SW.WRONG_LENGTH)
    pending, st.pending = st.pending, {}
    terminal_seq, when, mac1 = bytes(cmd.data[0:4]), bytes(cmd.data[4:11]), bytes(cmd.data[11:15])
    amounts: model.Amounts = pending["amounts"]
    terminal: bytes = pending["terminal"]
    session = card_algos.session_key(st.algorithm, st.dpk,
                                     model.sespk_input(pending["random"], st.seq, terminal_seq))
    expected = card_algos.mac(st.algorithm, session,
                              model.mac1_data(amounts, st.purchase_type, terminal, when))
    if mac1 != expected:
        return _fail(st, SW.MAC_INVALID)
    day = _bcd_date(when)
    if day is None:
        return _fail(st, SW.WRONG_DATA)
    # part 7 §12.6: n = 交易日期 − (支付年度 × 10000 + 年度起始日期)
    n = int(day.strftime("%Y%m%d")) - (st.pay_year * 10000 + int(st.starting_day.hex()))
    if n < 10000:
        st.spip += amounts.self_paid
        st.spfp += amounts.pool_paid
    else:
        st.pay_year = day.year if day.strftime("%m%d") >= st.starting_day.hex() \
            else day.year - 1
        st.spip, st.spfp = amounts.self_paid, amounts.pool_paid
    st.cia -= amounts.account
    seq = st.seq
    st.seq += 1
    _record(card, seq, st.purchase_type, terminal, when, amounts)
    mac2 = card_algos.mac(st.algorithm, session, model.mac2_data(amounts))
    tac = card_algos.mac(st.algorithm, st.tac_key(),
                         model.tac_data(amounts, st.purchase_type, terminal, terminal_seq, when))
    st.proofs[(st.purchase_type, seq)] = mac2 + tac
    st.state = model.PurseState.IDLE
    return le_reply(card, cmd, tac + mac2, le_zero_rule=False)


def _record(card: SimCard, seq: int, kind: int, terminal: bytes, when: bytes,
            amounts: model.Amounts) -> None:
    """Part 7 §12.6: the detail record, newest first in the cyclic EF08 (when the DF has it)."""
    ef = card.current_df.efs.get(EF08_FID)
    if ef is None:
        return
    record = (seq.to_bytes(2, "big") + bytes((kind,)) + terminal + when + amounts.to_bytes())
    ef.records.insert(0, bytearray(record))
    limit = getattr(ef.spec, "record_count", None)
    if isinstance(limit, int) and limit > 0:
        del ef.records[limit:]


def _proof(card: SimCard, st: PurseState, cmd: CommandApdu) -> Reply:
    if cmd.p1 != 0x00:
        return _fail(st, SW.WRONG_P1P2)
    if len(cmd.data) != 2:
        return _fail(st, SW.WRONG_LENGTH)
    proof = st.proofs.get((cmd.p2, int.from_bytes(cmd.data, "big")))
    if proof is None:
        return b"", SW.MAC_UNAVAILABLE
    return le_reply(card, cmd, proof, le_zero_rule=False)


# --------------------------------------------------------------------------- installation

def state_for(persona: Persona) -> PurseState | None:
    """The purse of a persona's ``[extra.purse]`` (typed by ``sim/extras.py``), or None."""
    conf = persona.purse
    if conf is None:
        return None
    seed = f"{persona.atr.hex()}|{persona.card.get('card_no', '')}".encode()
    return PurseState(
        algorithm=Algorithm[persona.algorithm], cia=conf.cia, spip=conf.self_paid_total,
        spfp=conf.pool_paid_total, pay_year=conf.pay_year, starting_day=conf.starting_day,
        seq=conf.seq, key_index=conf.key_index, key_version=conf.key_version,
        dpk=conf.dpk if conf.dpk is not None else sm3(b"sbcard TEST DPK|" + seed)[:16],
        dtk=conf.dtk if conf.dtk is not None else sm3(b"sbcard TEST DTK|" + seed)[:16],
        purchase_type=conf.purchase_type)


def install(card: SimCard, persona: Persona) -> None:
    st = state_for(persona)
    if st is None:
        return
    card.purse = st
    for ins in (model.INS_INITIALIZE, model.INS_CREDIT_FOR_LOAD, model.INS_DEBIT_FOR_PURCHASE,
                model.INS_GET_BALANCE, model.INS_GET_TRANSACTION_PROOF, model.INS_STARTING_DAY):
        card.handlers[ins] = _df04_only(card.handlers.get(ins))
    select = card.handlers[0xA4]

    def selecting(c: SimCard, cmd: CommandApdu) -> Reply:
        st.state = model.PurseState.IDLE          # "应用选择完成后，卡片首先进入空闲状态"
        st.pending.clear()
        return select(c, cmd)

    card.handlers[0xA4] = selecting


def _df04_only(previous):
    def handler(c: SimCard, cmd: CommandApdu) -> Reply:
        if c.purse is not None and _in_df04(c) and cmd.cla == model.CLA:
            return handle(c, cmd)
        if previous is not None:
            return previous(c, cmd)
        return b"", SW.INS_NOT_SUPPORTED
    return handler
