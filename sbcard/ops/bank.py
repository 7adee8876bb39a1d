"""The PBOC debit application beside the SSSE: bank card number (PAN) and expiry.

Flow (JR/T 0025, EMV Book 1 §12 and Book 3 §10; the social security spec leaves PSE/PPSE to
JR/T 0025, part 5 §6.11):

1. find the application: SELECT each AID of ``DEBIT_AIDS``; when none answers, read the PSE
   directory (``1PAY.SYS.DDF01``, contact) and then the PPSE (``2PAY.SYS.DDF01``,
   contactless FCI ``BF0C``) for a UnionPay debit AID;
2. GET PROCESSING OPTIONS with the data the card's PDOL (``9F38`` in the FCI) asks for,
   filled from ``TERMINAL_DATA`` (a card with a PDOL answers 6700/6985 to an empty ``83 00``);
3. READ RECORD every record the AFL lists; when GPO is refused, READ RECORD SFI 1 and SFI 2
   record 1, the shortcut public issuance code uses (``00B2010C00``, ``00B2011400``);
4. ``5A`` (PAN) or the PAN part of ``57`` (track 2), ``5F24`` expiry.

The PAN is masked unless the caller asks for it in full; traces always mask it.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from sbcard.apdu import commands as cmds
from sbcard.apdu import tlv
from sbcard.apdu.channel import ApduChannel
from sbcard.apdu.commands import RecordMode
from sbcard.apdu.redact import mask_pan_digits
from sbcard.apdu.sw import SW, CardError
from sbcard.card.filesystem import PBOC_DDF_NAME, PBOC_DEBIT_AID, PBOC_PPSE_NAME

#: AIDs tried by SELECT before any directory: UnionPay debit (JR/T 0025.5; public code
#: ``00A4040008A000000333010101``, leithergit/Z390Kylin Evolis_Z390_printer.cpp).
DEBIT_AIDS = (PBOC_DEBIT_AID,)
#: A directory entry is taken when its AID starts with this (UnionPay RID ‖ 01 01 01 debit).
_UNIONPAY_DEBIT = bytes.fromhex("A000000333010101")
_UNIONPAY_RID = bytes.fromhex("A000000333")
#: Records read when GPO is refused: (SFI, record), as public code reads them.
FALLBACK_RECORDS = ((1, 1), (2, 1))


def _today(fmt: str) -> Callable[[], bytes]:
    return lambda: bytes.fromhex(dt.datetime.now().strftime(fmt))


#: What this terminal answers for each PDOL tag (EMV Book 3 §5.4: tags the terminal does not
#: know are zero-filled). An inquiry terminal: no amount, no electronic cash, China.
#: ``numeric`` tags (format n) are padded/truncated on the left, others on the right.
TERMINAL_DATA: dict[int, bytes | Callable[[], bytes]] = {
    0x9F7A: b"\x00",                    # 电子现金终端支持指示器: EC not supported [Z390: 00]
    0x9F02: bytes(6),                   # 授权金额 amount authorised: 0 [Z390: 000000000000]
    0x9F03: bytes(6),                   # 其它金额 amount other: 0
    0x5F2A: b"\x01\x56",                # 交易货币代码: CNY, ISO 4217 0156 [Z390: 0156]
    0x9F1A: b"\x01\x56",                # 终端国家代码: China, ISO 3166 0156
    0x95: bytes(5),                     # 终端验证结果 TVR: nothing checked yet
    0x9A: _today("%y%m%d"),             # 交易日期 YYMMDD
    0x9F21: _today("%H%M%S"),           # 交易时间 HHMMSS
    0x9C: b"\x31",                      # 交易类型: 31 inquiry (ISO 8583 processing code)
    0x9F37: lambda: secrets.token_bytes(4),   # 不可预知数 unpredictable number, fresh
    # 终端交易属性 TTQ (qPBOC, JR/T 0025.12 table A.6): byte 1 = 0x26: contact PBOC
    # (full) supported, qPBOC not, online PIN no, signature yes; nothing else.
    0x9F66: bytes.fromhex("26000000"),
}
_NUMERIC = frozenset({0x9F02, 0x9F03, 0x5F2A, 0x9F1A, 0x9A, 0x9F21, 0x9C})


def pdol_data(pdol: bytes) -> bytes:
    """The terminal's answer to a PDOL: each requested tag's value at the requested length."""
    out = bytearray()
    for tag, length in tlv.parse_dol(pdol):
        known = TERMINAL_DATA.get(tag)
        value = known() if callable(known) else (known or bytes(length))
        if len(value) != length:
            if tag in _NUMERIC:
                value = (bytes(length) + value)[-length:] if length else b""
            else:
                value = (value + bytes(length))[:length]
        out += value
    return bytes(out)


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


def _directory_aids(entries: list[tlv.Tlv]) -> list[tuple[int, bytes]]:
    """(priority, AID) of each directory entry (template 61 with 4F, 87)."""
    found = []
    for entry in entries:
        if entry.tag != 0x61:
            continue
        aid = entry.find(0x4F)
        if aid is None:
            continue
        prio = entry.find(0x87)
        found.append((prio.value[0] & 0x0F if prio and prio.value else 15, aid.value))
    return found


def _pick(aids: list[tuple[int, bytes]]) -> bytes | None:
    for prefix in (_UNIONPAY_DEBIT, _UNIONPAY_RID):
        chosen = sorted((p, a) for p, a in aids if a.startswith(prefix))
        if chosen:
            return chosen[0][1]
    return None


def _pse_aids(channel: ApduChannel) -> list[tuple[int, bytes]]:
    """Entries of the contact PSE: its FCI names the directory SFI (88); records until 6A83."""
    r = channel.send(cmds.select_by_name(PBOC_DDF_NAME))
    if not r.ok:
        return []
    try:
        sfi_obj = tlv.find(tlv.parse(r.data), 0x88)
    except tlv.TlvError:
        return []
    if sfi_obj is None or len(sfi_obj.value) != 1:
        return []
    sfi = sfi_obj.value[0]
    found: list[tuple[int, bytes]] = []
    for number in range(1, 17):
        rec = channel.send(cmds.read_record(number, sfi=sfi, mode=RecordMode.NUMBER))
        if not rec.ok:
            break
        try:
            objects = tlv.parse(rec.data)
        except tlv.TlvError:
            break
        template = tlv.find(objects, 0x70)
        found += _directory_aids(list(template.children) if template else objects)
    return found


def _ppse_aids(channel: ApduChannel) -> list[tuple[int, bytes]]:
    """Entries of the PPSE: the FCI's issuer discretionary data (BF0C) lists them."""
    r = channel.send(cmds.select_by_name(PBOC_PPSE_NAME))
    if not r.ok:
        return []
    try:
        bf0c = tlv.find(tlv.parse(r.data), 0xBF0C)
    except tlv.TlvError:
        return []
    return _directory_aids(list(bf0c.children)) if bf0c else []


def select_debit_application(channel: ApduChannel) -> tuple[bytes, bytes] | None:
    """(AID, FCI) of the debit application: fixed AIDs first, then PSE, then PPSE."""
    for aid in DEBIT_AIDS:
        r = channel.send(cmds.select_by_name(aid))
        if r.ok:
            return aid, r.data
        if r.sw not in (SW.FILE_NOT_FOUND, SW.FUNCTION_NOT_SUPPORTED, SW.FILE_INVALIDATED,
                        SW.APPLICATION_BLOCKED):
            raise CardError.for_sw(r.sw, "SELECT PBOC debit application")
    for directory in (_pse_aids, _ppse_aids):
        listed = _pick(directory(channel))
        if listed is not None:
            r = channel.send(cmds.select_by_name(listed))
            if r.ok:
                return listed, r.data
    return None


def card_pdol(fci: bytes) -> bytes:
    """The PDOL (9F38) from the application's FCI, empty when the card asks for nothing."""
    try:
        found = tlv.find(tlv.parse(fci), 0x9F38)
    except tlv.TlvError:
        return b""
    return found.value if found else b""


def read_bank(channel: ApduChannel) -> BankInfo:
    warnings: list[str] = []
    pan = expiry = None

    def take(objects: list[tlv.Tlv]) -> None:
        nonlocal pan, expiry
        pan_obj = tlv.find(objects, 0x5A)
        if pan is None and pan_obj is not None:
            pan = pan_obj.value.hex().upper().rstrip("F")
        t2 = tlv.find(objects, 0x57)
        if pan is None and t2 is not None:
            pan = t2.value.hex().upper().split("D")[0]
        exp = tlv.find(objects, 0x5F24)
        if expiry is None and exp is not None and len(exp.value) == 3:
            yymmdd = exp.value.hex()
            expiry = f"20{yymmdd[:2]}-{yymmdd[2:4]}"

    with channel.exclusive():
        selected = select_debit_application(channel)
        if selected is None:
            return BankInfo(PBOC_DEBIT_AID.hex().upper(), None, None,
                            ("no PBOC debit application on this card (fixed AID, PSE, PPSE)",))
        aid, fci = selected
        gpo = channel.send(cmds.get_processing_options(pdol_data(card_pdol(fci))))
        records: list[tuple[int, int]] = []
        if gpo.ok:
            try:
                objects = tlv.parse(gpo.data)
            except tlv.TlvError as exc:
                objects = []
                warnings.append(f"GET PROCESSING OPTIONS answer is not BER-TLV ({exc})")
            if objects and objects[0].tag == 0x80:          # format 1: AIP(2) ‖ AFL
                afl = objects[0].value[2:]
            else:                                           # format 2: template 77
                found = tlv.find(objects, 0x94)
                afl = found.value if found else b""
                take(objects)                               # qPBOC may answer 57 here
            records = [(sfi, rec) for sfi, first, last in _afl_entries(afl)
                       for rec in range(first, last + 1)]
        else:
            warnings.append(f"GET PROCESSING OPTIONS refused (SW {gpo.sw:04X}): read SFI 1 "
                            "and 2 record 1 instead")
            records = list(FALLBACK_RECORDS)
        for sfi, rec in records:
            r = channel.send(cmds.read_record(rec, sfi=sfi, mode=RecordMode.NUMBER))
            if not r.ok:
                if gpo.ok:
                    warnings.append(f"READ RECORD SFI {sfi} record {rec}: SW {r.sw:04X}")
                continue
            try:
                take(tlv.parse(r.data))
            except tlv.TlvError as exc:
                warnings.append(f"record SFI {sfi}/{rec} is not BER-TLV ({exc})")
    if pan is None:
        warnings.append("no PAN (5A or 57) in the records read")
    return BankInfo(aid.hex().upper(), pan, expiry, tuple(warnings))
