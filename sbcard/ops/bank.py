"""The PBOC debit application beside the SSSE: bank card number (PAN) and expiry.

EMV flow (JR/T 0025): SELECT the debit AID → GET PROCESSING OPTIONS (empty PDOL data) →
read the records the AFL lists → 5A (PAN) or, failing that, the PAN part of 57 (track 2);
5F24 expiry. The PAN is masked unless the caller asks for it in full; traces always mask it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sbcard.apdu import commands as cmds
from sbcard.apdu import tlv
from sbcard.apdu.channel import ApduChannel
from sbcard.apdu.commands import RecordMode
from sbcard.apdu.redact import mask_pan_digits
from sbcard.apdu.sw import SW, CardError
from sbcard.card.filesystem import PBOC_DEBIT_AID


@dataclass(frozen=True)
class BankInfo:
    aid: str
    pan: str | None
    expiry: str | None          # YYYY-MM
    warnings: tuple[str, ...] = ()

    def to_json(self, *, full_pan: bool = False) -> dict:
        pan = self.pan if (full_pan or self.pan is None) else mask_pan_digits(self.pan)
        return {"aid": self.aid, "pan": pan, "expiry": self.expiry,
                "warnings": list(self.warnings)}


def _afl_entries(afl: bytes) -> list[tuple[int, int, int]]:
    return [(afl[i] >> 3, afl[i + 1], afl[i + 2]) for i in range(0, len(afl) - 3, 4)]


def read_bank(channel: ApduChannel) -> BankInfo:
    warnings: list[str] = []
    with channel.exclusive():
        sel = channel.send(cmds.select_by_name(PBOC_DEBIT_AID))
        if sel.sw == SW.FILE_NOT_FOUND:
            return BankInfo(PBOC_DEBIT_AID.hex().upper(), None, None,
                            ("no PBOC debit application on this card",))
        if not sel.ok:
            raise CardError.for_sw(sel.sw, "SELECT PBOC debit application")
        gpo = channel.check(cmds.get_processing_options())
        objects = tlv.parse(gpo.data)
        afl = b""
        if objects and objects[0].tag == 0x80:          # format 1: AIP(2) ‖ AFL
            afl = objects[0].value[2:]
        else:
            found = tlv.find(objects, 0x94)
            afl = found.value if found else b""
        pan = expiry = None
        for sfi, first, last in _afl_entries(afl):
            for rec in range(first, last + 1):
                r = channel.send(cmds.read_record(rec, sfi=sfi, mode=RecordMode.NUMBER))
                if not r.ok:
                    warnings.append(f"READ RECORD SFI {sfi} record {rec}: SW {r.sw:04X}")
                    continue
                try:
                    rec_objects = tlv.parse(r.data)
                except tlv.TlvError as exc:
                    warnings.append(f"record SFI {sfi}/{rec} is not BER-TLV ({exc})")
                    continue
                pan_obj = tlv.find(rec_objects, 0x5A)
                if pan is None and pan_obj is not None:
                    pan = pan_obj.value.hex().upper().rstrip("F")
                t2 = tlv.find(rec_objects, 0x57)
                if pan is None and t2 is not None:
                    pan = t2.value.hex().upper().split("D")[0]
                exp = tlv.find(rec_objects, 0x5F24)
                if expiry is None and exp is not None and len(exp.value) == 3:
                    yymmdd = exp.value.hex()
                    expiry = f"20{yymmdd[:2]}-{yymmdd[2:4]}"
    if pan is None:
        warnings.append("no PAN (5A or 57) in the records the AFL lists")
    return BankInfo(PBOC_DEBIT_AID.hex().upper(), pan, expiry, tuple(warnings))
