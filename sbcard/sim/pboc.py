"""A minimal PBOC debit application on the simulated card, enough for ``sbcard read --bank``.

SELECT the debit AID → FCI (with the PDOL ``9F38`` when the persona gives one); GET
PROCESSING OPTIONS → format 1 (AIP, AFL pointing at the record); READ RECORD → template 70
with 57 (track 2), 5A (PAN), 5F24 (expiry YYMMDD). It exists only when the persona has a
``[bank]`` section; all numbers in the built-in personas are synthetic.

What a persona can ask for, each as real UnionPay cards behave (JR/T 0025, EMV Book 3):

* ``pdol = "9F7A019F02065F2A02"``: the FCI carries it and GPO refuses (6700, wrong length)
  data whose length is not the PDOL's — EMV Book 3 §6.5.8; the PDOL is the one public
  issuance code answers with ``80A800000B8309…`` (leithergit/Z390Kylin
  Evolis_Z390_printer.cpp);
* ``gpo_sw = "6985"``: GPO always refused (conditions of use not satisfied);
* ``record_sfi = 2``: the record lives in SFI 2 (public code reads ``00B2011400``);
* ``aid = "…"``: another AID than the fixed debit one, found only through a directory;
* ``pse = true`` / ``ppse = true``: a contact PSE ``1PAY.SYS.DDF01`` (FCI ``88`` → directory
  records of ``61 {4F, 50, 87}``) / a PPSE ``2PAY.SYS.DDF01`` (FCI ``BF0C`` entries), the
  directories JR/T 0025 defines (part 5 §6.11 leaves them to it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sbcard.apdu.command import CommandApdu
from sbcard.apdu.sw import SW
from sbcard.card.filesystem import (
    PBOC_DDF_NAME,
    PBOC_DEBIT,
    PBOC_PPSE_NAME,
    Access,
    DfSpec,
    EfSpec,
    Structure,
)
from sbcard.sim.card_os import Reply, SimCard, SimDF

if TYPE_CHECKING:
    from sbcard.sim.persona import Persona

AIP = bytes.fromhex("7C00")
LABEL = b"PBOC DEBIT"


def _tlv(tag: int, value: bytes) -> bytes:
    t = tag.to_bytes(2, "big") if tag > 0xFF else bytes((tag,))
    return t + bytes((len(value),)) + value


def _bcd_f(digits: str) -> bytes:
    text = digits + ("F" if len(digits) % 2 else "")
    return bytes.fromhex(text)


def _records_ef(sfi: int) -> EfSpec:
    return EfSpec(f"EF{sfi:02X}", 0xEF00 | sfi, sfi, Structure.FIXED_RECORDS,
                  "金融应用记录文件", "PBOC application records", read=Access(),
                  write=Access(never=True))


def _directory_df(name: bytes, label: str) -> DfSpec:
    return DfSpec(label, None, name, label, label, children=(_records_ef(1),))


def install(card: SimCard, persona: Persona) -> None:
    bank = persona.bank                      # [bank], typed by sim/extras.py
    if bank is None:
        return
    pan, expiry, aid, pdol = bank.pan, bank.expiry, bank.aid, bank.pdol
    pdol_length, gpo_sw, record_sfi = bank.pdol_length, bank.gpo_sw, bank.record_sfi

    prop = _tlv(0x50, LABEL) + _tlv(0x87, b"\x01") + (_tlv(0x9F38, pdol) if pdol else b"")
    fci = _tlv(0x6F, _tlv(0x84, aid) + _tlv(0xA5, prop))
    spec = DfSpec(PBOC_DEBIT.name, None, aid, PBOC_DEBIT.zh, PBOC_DEBIT.en,
                  children=(_records_ef(record_sfi),))
    df = SimDF.build(spec, None, fci)
    track2 = bytes.fromhex(pan + "D" + expiry[:4] + "201" + "F" * ((len(pan) + 8) % 2))
    record = _tlv(0x57, track2) + _tlv(0x5A, _bcd_f(pan)) + _tlv(0x5F24, bytes.fromhex(expiry))
    df.by_sfi[record_sfi].records = [bytearray(_tlv(0x70, record))]
    card.apps[aid] = df
    afl = bytes((record_sfi << 3, 1, 1, 0))   # SFI, records 1..1, none for offline auth

    entry = _tlv(0x61, _tlv(0x4F, aid) + _tlv(0x50, LABEL) + _tlv(0x87, b"\x01"))
    if bank.pse:
        pse = SimDF.build(_directory_df(PBOC_DDF_NAME, "PSE"), None,
                          _tlv(0x6F, _tlv(0x84, PBOC_DDF_NAME) + _tlv(0xA5, _tlv(0x88, b"\x01"))))
        pse.by_sfi[1].records = [bytearray(_tlv(0x70, entry))]
        card.apps[PBOC_DDF_NAME] = pse
    if bank.ppse:
        ppse_fci = _tlv(0x6F, _tlv(0x84, PBOC_PPSE_NAME) + _tlv(0xA5, _tlv(0xBF0C, entry)))
        card.apps[PBOC_PPSE_NAME] = SimDF.build(_directory_df(PBOC_PPSE_NAME, "PPSE"), None,
                                                ppse_fci)
    previous = card.handlers.get(0xA8)

    def gpo(c: SimCard, cmd: CommandApdu) -> Reply:
        if c.current_df is not df:
            return previous(c, cmd) if previous else (b"", SW.CONDITIONS_NOT_SATISFIED)
        if cmd.cla != 0x80 or cmd.p1 != 0x00 or cmd.p2 != 0x00:
            return b"", SW.WRONG_P1P2
        if len(cmd.data) < 2 or cmd.data[0] != 0x83 or cmd.data[1] != len(cmd.data) - 2:
            return b"", SW.WRONG_DATA
        if cmd.data[1] != pdol_length:               # data that does not match the PDOL
            return b"", SW.WRONG_LENGTH
        if gpo_sw != SW.OK:
            return b"", gpo_sw
        return _tlv(0x80, AIP + afl), SW.OK

    card.handlers[0xA8] = gpo
