"""A minimal PBOC debit application on the simulated card, enough for ``sbcard read --bank``.

SELECT A000000333010101 → FCI; GET PROCESSING OPTIONS → format 1 (AIP, AFL pointing at SFI 1
record 1); READ RECORD SFI 1 record 1 → template 70 with 57 (track 2), 5A (PAN), 5F24
(expiry YYMMDD). It exists only when the persona has a ``[bank]`` section; all numbers in the
built-in personas are synthetic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sbcard.apdu.command import CommandApdu
from sbcard.apdu.sw import SW
from sbcard.card.filesystem import PBOC_DEBIT
from sbcard.errors import BadInputError
from sbcard.sim.card_os import Reply, SimCard, SimDF

if TYPE_CHECKING:
    from sbcard.sim.persona import Persona

AIP = bytes.fromhex("7C00")
AFL = bytes.fromhex("08010100")        # SFI 1, records 1..1, none for offline auth


def _tlv(tag: int, value: bytes) -> bytes:
    t = tag.to_bytes(2, "big") if tag > 0xFF else bytes((tag,))
    return t + bytes((len(value),)) + value


def _bcd_f(digits: str) -> bytes:
    text = digits + ("F" if len(digits) % 2 else "")
    return bytes.fromhex(text)


def install(card: SimCard, persona: Persona) -> None:
    bank = persona.extra.get("bank")
    if not bank:
        return
    pan = str(bank.get("pan", ""))
    expiry = str(bank.get("expiry", ""))     # YYMMDD
    if not (pan.isdigit() and 12 <= len(pan) <= 19 and expiry.isdigit() and len(expiry) == 6):
        raise BadInputError(f"persona {persona.name}: [bank] needs pan (12-19 digits) and "
                            "expiry (YYMMDD)")
    fci_body = _tlv(0x84, PBOC_DEBIT.df_name) + _tlv(0xA5, _tlv(0x50, b"PBOC DEBIT") +
                                                     _tlv(0x87, b"\x01"))
    df = SimDF.build(PBOC_DEBIT, None, _tlv(0x6F, fci_body))
    track2 = bytes.fromhex(pan + "D" + expiry[:4] + "201" + "F" * ((len(pan) + 8) % 2))
    record = _tlv(0x57, track2) + _tlv(0x5A, _bcd_f(pan)) + _tlv(0x5F24, bytes.fromhex(expiry))
    df.by_sfi[1].records = [bytearray(_tlv(0x70, record))]
    card.apps[PBOC_DEBIT.df_name] = df
    previous = card.handlers.get(0xA8)

    def gpo(c: SimCard, cmd: CommandApdu) -> Reply:
        if c.current_df is not df:
            return previous(c, cmd) if previous else (b"", SW.CONDITIONS_NOT_SATISFIED)
        if cmd.cla != 0x80 or not cmd.data or cmd.data[0] != 0x83:
            return b"", SW.WRONG_DATA
        return _tlv(0x80, AIP + AFL), SW.OK

    card.handlers[0xA8] = gpo
