"""The reader's PIN pad: PC/SC part 10 FEATURE_VERIFY_PIN_DIRECT and FEATURE_MODIFY_PIN_DIRECT.

The PIN never reaches the host. The reader lists its features in answer to
CM_IOCTL_GET_FEATURE_REQUEST (control code ``SCARD_CTL_CODE(3400)``): TLV items
``tag ‖ 04 ‖ control code (big-endian)``; tag 06 is FEATURE_VERIFY_PIN_DIRECT, tag 07
FEATURE_MODIFY_PIN_DIRECT (pcsc-lite ``PCSC/reader.h``). sbcard then sends

- for iVerifyPIN a PIN_VERIFY_STRUCTURE (PC/SC part 10 §2.5.2; CCID PC_to_RDR_Secure
  bPINOperation 00) holding the card's VERIFY APDU (spec part 5 §6.14, table 46:
  ``00 20 00 00 Lc PIN``, PIN in cn, BCD padded with F);
- for iChangePIN a PIN_MODIFY_STRUCTURE (PC/SC part 10 §2.5.3; CCID PC_to_RDR_Secure
  bPINOperation 01) holding the card's CHANGE PIN APDU (spec part 5 §6.3, table 10:
  ``80 5E 01 00 Lc 当前PIN ‖ FF ‖ 新的PIN``, both cn, plaintext). The old PIN goes at
  bInsertionOffsetOld 0 and the new one at bInsertionOffsetNew = its block + 1, after the
  ``FF`` separator (offsets count from the first data byte, as OpenSC's reader-pcsc.c and
  vsmartcard's ccid.c use them); bConfirmPIN 03 makes the reader ask for the current PIN
  and the new PIN twice, three prompts (bNumberMessage 03, bMsgIndex 00/01/02) in zh-CN
  (wLangId 0804).

The reader answers the card's status word, or 6400 timeout / 6401 cancel (libccid maps the
CCID bError F0/EF to these), 6402 the two new PINs differ, 6403 a PIN of the wrong length.

Why only 6 digits. A cn PIN block has no length field and the reader cannot change Lc (it
sends the template's length as it is), so the template fixes the PIN's length: 6 digits
(Lc 03 for VERIFY, 07 for CHANGE PIN), the length of the PINs cards are issued with.
bmPINLengthFormat / the high nibble of bmPINBlockString would let the reader write the
*digit count* somewhere in the data field, but cn has no place for one and Lc lies before
the data field, where no offset reaches. A longer fixed block padded with ``FF`` bytes (e.g.
Lc 08 for 4–16 digits, wPINMaxExtraDigit 0410) would make Lc say 16 digits for a 4-digit
PIN: part 5 §6.3.1 allows padding only in the low nibble of the last byte, a card comparing
what Lc delivers would count a right PIN as wrong (a try spent), and in CHANGE PIN the
padding ``FF`` bytes of the old PIN would read as the ``FF`` separator. So the pad takes
6-digit PINs (wPINMaxExtraDigit 0606); the console and pinentry sources take 4–16 digits.

PIN reload (iReloadPIN, ``84 24 00 01``) is not done on the pad: the new PIN goes to the card
enciphered with the STK session key and MACed (part 5 §6.8, spec §5.7) by the PSAM or HSM, and
a part 10 reader only inserts the typed digits in clear into an APDU.
"""

from __future__ import annotations

import struct
from typing import Any

from sbcard.national import codes
from sbcard.national.codes import NationalError

FEATURE_VERIFY_PIN_DIRECT = 0x06
FEATURE_MODIFY_PIN_DIRECT = 0x07
PIN_DIGITS = 6
TIMEOUT_S = 30
LANG_ZH_CN = 0x0804

#: bmFormatString: system units bytes (bit 7), PIN position 0 (bits 6-3), left-justified
#: (bit 2 clear), BCD (bits 1-0 = 01). CCID §6.1.11.4 / PC/SC part 10 §2.5.2.
FORMAT_BYTES_BCD_LEFT = 0x81
#: bEntryValidationCondition: the validation key is pressed.
VALIDATE_ON_KEY = 0x02
#: bConfirmPIN: bit 0 the new PIN is entered twice, bit 1 the current PIN is entered too.
CONFIRM_NEW = 0x01
INSERT_OLD = 0x02


#: iReloadPIN / iReloadPIN_HSM_Step1 with the PIN pad as PIN source (−13).
RELOAD_REFUSED = (f"{codes.message(codes.UNSUPPORTED)}（重置密码的新密码须由PSAM或加密机"
                  "加密并计算MAC后送卡，读卡器密码键盘只能把明文密码填入指令，请改用其他密码来源）")


def ctl_code(code: int) -> int:
    """SCARD_CTL_CODE as pcsc-lite defines it (Linux)."""
    return 0x42000000 + code


CM_IOCTL_GET_FEATURE_REQUEST = ctl_code(3400)


def parse_features(data: bytes) -> dict[int, int]:
    """Feature tag → control code, from the reader's TLV list (malformed tail ignored)."""
    out: dict[int, int] = {}
    i = 0
    while i + 2 <= len(data):
        tag, length = data[i], data[i + 1]
        value = data[i + 2:i + 2 + length]
        if length == 4 and len(value) == 4:
            out[tag] = int.from_bytes(value, "big")
        i += 2 + length
    return out


def _block(digits: int) -> int:
    return (digits + 1) // 2


def verify_apdu(digits: int = PIN_DIGITS) -> bytes:
    """The VERIFY template: ``00 20 00 00 Lc`` and Lc bytes of F the reader overwrites."""
    block = _block(digits)
    return bytes((0x00, 0x20, 0x00, 0x00, block)) + b"\xff" * block


def change_apdu(digits: int = PIN_DIGITS) -> bytes:
    """The CHANGE PIN template: ``80 5E 01 00 Lc FF… ‖ FF ‖ FF…`` (old block, the
    separator part 5 table 10 puts between the PINs, new block); the reader fills the
    blocks, the separator stays."""
    block = _block(digits)
    return bytes((0x80, 0x5E, 0x01, 0x00, 2 * block + 1)) + b"\xff" * (2 * block + 1)


def verify_structure(digits: int = PIN_DIGITS, timeout: int = TIMEOUT_S) -> bytes:
    """PIN_VERIFY_STRUCTURE for ``00 20 00 00 Lc`` with a BCD PIN left-justified in Lc bytes."""
    apdu = verify_apdu(digits)
    return struct.pack(
        "<BBBBBHBBHB3sI",
        timeout,            # bTimerOut
        timeout,            # bTimerOut2
        FORMAT_BYTES_BCD_LEFT,   # bmFormatString
        _block(digits),     # bmPINBlockString: no length field, block of Lc bytes
        0x00,               # bmPINLengthFormat: no length in the APDU
        (digits << 8) | digits,   # wPINMaxExtraDigit: min digits (high), max (low)
        VALIDATE_ON_KEY,    # bEntryValidationCondition
        0x01,               # bNumberMessage
        LANG_ZH_CN,         # wLangId
        0x00,               # bMsgIndex
        b"\x00\x00\x00",    # bTeoPrologue
        len(apdu),          # ulDataLength
    ) + apdu


def modify_structure(digits: int = PIN_DIGITS, timeout: int = TIMEOUT_S) -> bytes:
    """PIN_MODIFY_STRUCTURE (pcsc-lite ``reader.h``, 24 bytes then the APDU) for
    ``80 5E 01 00 Lc old ‖ FF ‖ new``: both PINs BCD, left-justified, in blocks of
    ``(digits + 1) // 2`` bytes; the old one at data offset 0, the new one after the FF."""
    block = _block(digits)
    apdu = change_apdu(digits)
    return struct.pack(
        "<BBBBBBBHBBBHBBB3sI",
        timeout,            # bTimerOut
        timeout,            # bTimerOut2
        FORMAT_BYTES_BCD_LEFT,   # bmFormatString
        block,              # bmPINBlockString: no length field, block of `block` bytes
        0x00,               # bmPINLengthFormat: no length in the APDU
        0,                  # bInsertionOffsetOld: the current PIN opens the data field
        block + 1,          # bInsertionOffsetNew: after the current PIN and the FF
        (digits << 8) | digits,   # wPINMaxExtraDigit: min digits (high), max (low)
        INSERT_OLD | CONFIRM_NEW,  # bConfirmPIN: current PIN, new PIN, new PIN again
        VALIDATE_ON_KEY,    # bEntryValidationCondition
        0x03,               # bNumberMessage: three prompts
        LANG_ZH_CN,         # wLangId: the reader's prompts in Chinese (PRC)
        0x00,               # bMsgIndex1: enter the current PIN
        0x01,               # bMsgIndex2: enter the new PIN
        0x02,               # bMsgIndex3: confirm the new PIN
        b"\x00\x00\x00",    # bTeoPrologue
        len(apdu),          # ulDataLength
    ) + apdu


def feature_code(link: Any, feature: int) -> int | None:
    """The reader's control code for a part 10 feature, or None without one."""
    control = getattr(link, "control", None)
    if control is None:
        return None
    try:
        features = parse_features(control(CM_IOCTL_GET_FEATURE_REQUEST, b""))
    except Exception:          # a reader or driver that does not answer the request
        return None
    return features.get(feature)


def pin_pad_code(link: Any) -> int | None:
    """The reader's FEATURE_VERIFY_PIN_DIRECT control code, or None without one."""
    return feature_code(link, FEATURE_VERIFY_PIN_DIRECT)


def _check_answer(answer: bytes) -> None:
    """None for 9000; the national error (codes.for_pin_pad) for any other answer."""
    if len(answer) < 2:
        raise NationalError(codes.NO_ANSWER)
    sw = int.from_bytes(answer[-2:], "big")
    if sw != 0x9000:
        raise NationalError(*codes.for_pin_pad(sw))


def _pad_feature(link: Any, feature: int, missing: str) -> int:
    """The reader's control code for ``feature``; −13 naming what is missing without one."""
    code = feature_code(link, feature)
    if code is None:
        raise NationalError(codes.UNSUPPORTED, f"{codes.message(codes.UNSUPPORTED)}（{missing}）")
    return code


def verify_on_pin_pad(link: Any) -> None:
    """VERIFY with the PIN typed on the reader; a NationalError unless the card said 9000."""
    code = _pad_feature(link, FEATURE_VERIFY_PIN_DIRECT,
                        "读卡器没有密码键盘：PC/SC FEATURE_VERIFY_PIN_DIRECT")
    _check_answer(link.control(code, verify_structure()))


def change_on_pin_pad(link: Any) -> None:
    """CHANGE PIN with the current PIN and the new PIN (twice) typed on the reader."""
    code = _pad_feature(link, FEATURE_MODIFY_PIN_DIRECT,
                        "读卡器密码键盘不支持修改密码：PC/SC FEATURE_MODIFY_PIN_DIRECT")
    _check_answer(link.control(code, modify_structure()))
