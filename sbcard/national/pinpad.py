"""The reader's PIN pad: PC/SC part 10 FEATURE_VERIFY_PIN_DIRECT (the PIN never reaches us).

The reader lists its features in answer to CM_IOCTL_GET_FEATURE_REQUEST (control code
``SCARD_CTL_CODE(3400)``): TLV items ``tag ‖ 04 ‖ control code (big-endian)``; tag 06 is
FEATURE_VERIFY_PIN_DIRECT. sbcard then sends a PIN_VERIFY_STRUCTURE (PC/SC part 10 §2.5.2;
CCID PC_to_RDR_Secure) holding the VERIFY APDU of the social security card (spec part 5
§6.14: ``00 20 00 00 Lc PIN`` in cn, BCD padded with F) whose PIN bytes the reader fills
from its keypad. The reader answers the card's status word, or 6400 timeout / 6401 cancel.

A cn PIN block has no length field and the reader cannot change Lc, so the template has a
fixed length: 6 digits (Lc 03), the length of the PINs cards are issued with. Longer PINs on a
PIN pad are not supported (the console and pinentry sources take 4–16 digits).
"""

from __future__ import annotations

import struct
from typing import Any

from sbcard.national import codes
from sbcard.national.codes import NationalError

FEATURE_VERIFY_PIN_DIRECT = 0x06
PIN_DIGITS = 6
TIMEOUT_S = 30
LANG_ZH_CN = 0x0804


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


def verify_structure(digits: int = PIN_DIGITS, timeout: int = TIMEOUT_S) -> bytes:
    """PIN_VERIFY_STRUCTURE for ``00 20 00 00 Lc`` with a BCD PIN left-justified in Lc bytes."""
    block = (digits + 1) // 2
    apdu = bytes((0x00, 0x20, 0x00, 0x00, block)) + b"\xff" * block
    return struct.pack(
        "<BBBBBHBBHB3sI",
        timeout,            # bTimerOut
        timeout,            # bTimerOut2
        0x81,               # bmFormatString: units bytes, position 0, left, BCD
        block,              # bmPINBlockString: no length field, block of Lc bytes
        0x00,               # bmPINLengthFormat: no length in the APDU
        (digits << 8) | digits,   # wPINMaxExtraDigit: min digits (high), max (low)
        0x02,               # bEntryValidationCondition: validation key pressed
        0x01,               # bNumberMessage
        LANG_ZH_CN,         # wLangId
        0x00,               # bMsgIndex
        b"\x00\x00\x00",    # bTeoPrologue
        len(apdu),          # ulDataLength
    ) + apdu


def pin_pad_code(link: Any) -> int | None:
    """The reader's FEATURE_VERIFY_PIN_DIRECT control code, or None without one."""
    control = getattr(link, "control", None)
    if control is None:
        return None
    try:
        features = parse_features(control(CM_IOCTL_GET_FEATURE_REQUEST, b""))
    except Exception:          # a reader or driver that does not answer the request
        return None
    return features.get(FEATURE_VERIFY_PIN_DIRECT)


def verify_on_pin_pad(link: Any) -> None:
    """VERIFY with the PIN typed on the reader; a NationalError unless the card said 9000."""
    code = pin_pad_code(link)
    if code is None:
        raise NationalError(codes.UNSUPPORTED,
                            "读卡器没有密码键盘（PC/SC FEATURE_VERIFY_PIN_DIRECT）")
    answer = link.control(code, verify_structure())
    if len(answer) < 2:
        raise NationalError(codes.NO_ANSWER)
    sw = int.from_bytes(answer[-2:], "big")
    if sw == 0x9000:
        return
    mapped = {0x6400: codes.PIN_TIMEOUT, 0x6401: codes.PIN_CANCELLED,
              0x6402: codes.PIN_DIFFERENT, 0x6403: codes.PIN_LENGTH}.get(sw)
    if mapped is not None:
        raise NationalError(mapped)
    raise NationalError(*codes.for_sw(sw, pin=True))
