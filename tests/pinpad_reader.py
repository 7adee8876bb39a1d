"""A scripted PIN-pad reader (PC/SC part 10) in front of the simulated card.

vpcd has no PIN pad, so the tests put this reader between the driver and its bare link. It
announces FEATURE_VERIFY_PIN_DIRECT (06) and, unless told otherwise, FEATURE_MODIFY_PIN_DIRECT
(07) in answer to CM_IOCTL_GET_FEATURE_REQUEST and, asked to verify or modify, does what a
CCID reader does with PC_to_RDR_Secure (CCID rev 1.1 §6.1.11; the firmware side of
vsmartcard's ``ccid/src/ccid.c`` ``perform_PC_to_RDR_Secure``):

- parses the PIN_VERIFY_STRUCTURE (19 bytes) or PIN_MODIFY_STRUCTURE (24 bytes, pcsc-lite
  ``PCSC/reader.h``) in front of the APDU template, and checks ``ulDataLength``;
- takes one keypad entry per prompt from its script: the current PIN (modify with
  bConfirmPIN bit 1), the new PIN, its confirmation (bConfirmPIN bit 0);
- answers 6400 (timeout) / 6401 (cancel) / 6402 (new PIN and confirmation differ) / 6403
  (length outside wPINMaxExtraDigit) itself, sending nothing to the card, as libccid passes
  them up (bError F0/EF → 6400/6401);
- otherwise writes each PIN into the template, BCD or ASCII, left- or right-justified, in a
  block of ``bmPINBlockString & 0x0F`` bytes at the data offset bmFormatString gives (verify,
  in system units) or bInsertionOffsetOld/New (modify, in bytes), template bytes not covered by
  digits kept (the F padding of cn), and sends the APDU unchanged in length to the card.

So the simulated card sees a real VERIFY or CHANGE PIN; the host never sees a PIN. Keypad
script entries are digit strings, ``CANCEL`` or ``TIMEOUT``.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable
from typing import Any

from sbcard.national.pinpad import (
    CM_IOCTL_GET_FEATURE_REQUEST,
    FEATURE_MODIFY_PIN_DIRECT,
    FEATURE_VERIFY_PIN_DIRECT,
    ctl_code,
)

CANCEL = "CANCEL"
TIMEOUT = "TIMEOUT"
VERIFY_CODE = ctl_code(0x3306)      # any codes will do: the driver must use the announced ones
MODIFY_CODE = ctl_code(0x3307)
VERIFY_HEADER = "<BBBBBHBBHB3sI"    # PIN_VERIFY_STRUCTURE, 19 bytes
MODIFY_HEADER = "<BBBBBBBHBBBHBBB3sI"   # PIN_MODIFY_STRUCTURE, 24 bytes


class ReaderAnswer(Exception):
    """The reader answers by itself (64xx, 6B80): nothing goes to the card."""

    def __init__(self, sw: int) -> None:
        super().__init__(f"{sw:04X}")
        self.answer = sw.to_bytes(2, "big")


class ScriptedPinPad:
    """The reader: ``attach`` a bare link (the simulated card) and use it as that link."""

    def __init__(self, keys: Iterable[str] = (), *, modify: bool = True) -> None:
        self.inner: Any = None
        self.keys = list(keys)
        self.features = {FEATURE_VERIFY_PIN_DIRECT: VERIFY_CODE}
        if modify:
            self.features[FEATURE_MODIFY_PIN_DIRECT] = MODIFY_CODE
        self.structures: list[bytes] = []   # what the host sent (templates: no PIN)
        self.to_card: list[bytes] = []      # the APDUs the reader built (hold PINs: tests only)
        self.prompts = 0

    def attach(self, link: Any) -> ScriptedPinPad:
        self.inner = link
        return self

    def __getattr__(self, name: str) -> Any:
        if self.inner is None:
            raise AttributeError(name)
        return getattr(self.inner, name)

    # -- PC/SC SCardControl -------------------------------------------------------------
    def control(self, code: int, data: bytes = b"") -> bytes:
        if code == CM_IOCTL_GET_FEATURE_REQUEST:
            return b"".join(bytes((tag, 4)) + value.to_bytes(4, "big")
                            for tag, value in self.features.items())
        self.structures.append(bytes(data))
        try:
            if code == self.features.get(FEATURE_VERIFY_PIN_DIRECT):
                apdu = self._verify(data)
            elif code == self.features.get(FEATURE_MODIFY_PIN_DIRECT):
                apdu = self._modify(data)
            else:          # pcsc-lite: SCARD_E_UNSUPPORTED_FEATURE for an unknown code
                raise OSError(f"control code {code:08X} not supported by this reader")
        except ReaderAnswer as answer:
            return answer.answer
        self.to_card.append(apdu)
        return bytes(self.inner.transmit(apdu))

    # -- the keypad ---------------------------------------------------------------------
    def _entry(self, lo: int, hi: int) -> str:
        self.prompts += 1
        key = self.keys.pop(0) if self.keys else TIMEOUT
        if key == TIMEOUT:
            raise ReaderAnswer(0x6400)
        if key == CANCEL:
            raise ReaderAnswer(0x6401)
        if not lo <= len(key) <= hi:
            raise ReaderAnswer(0x6403)
        return key

    # -- PC_to_RDR_Secure ----------------------------------------------------------------
    @staticmethod
    def _template(data: bytes, header: str) -> tuple[tuple[Any, ...], bytearray]:
        size = struct.calcsize(header)
        fields = struct.unpack(header, data[:size])
        apdu = bytearray(data[size:])
        if fields[-1] != len(apdu) or len(apdu) < 5 or apdu[4] != len(apdu) - 5:
            raise ReaderAnswer(0x6B80)         # ulDataLength or Lc does not fit the APDU
        return fields, apdu

    @staticmethod
    def _insert(apdu: bytearray, pin: str, offset: int, fmt: int, block_string: int) -> None:
        """Write ``pin`` into its block at data offset ``offset`` (bytes)."""
        encoding, right = fmt & 0x03, bool(fmt & 0x04)
        block = block_string & 0x0F
        if block_string >> 4:                  # a length field: cn PIN blocks have none
            raise ReaderAnswer(0x6B80)
        start = 5 + offset
        if start + block > len(apdu):
            raise ReaderAnswer(0x6B80)
        if encoding == 0x01:                   # BCD: a nibble per digit
            if len(pin) > 2 * block:
                raise ReaderAnswer(0x6403)
            nibbles = list(apdu[start:start + block].hex())
            first = 2 * block - len(pin) if right else 0
            nibbles[first:first + len(pin)] = list(pin)
            apdu[start:start + block] = bytes.fromhex("".join(nibbles))
        elif encoding == 0x02:                 # ASCII: a byte per digit
            if len(pin) > block:
                raise ReaderAnswer(0x6403)
            first = start + (block - len(pin) if right else 0)
            apdu[first:first + len(pin)] = pin.encode("ascii")
        else:
            raise ReaderAnswer(0x6B80)

    def _verify(self, data: bytes) -> bytes:
        fields, apdu = self._template(data, VERIFY_HEADER)
        fmt, block_string, _length_format, extra = fields[2], fields[3], fields[4], fields[5]
        if not fmt & 0x80:                     # system units bits: not used for cn
            raise ReaderAnswer(0x6B80)
        pin = self._entry(extra >> 8, extra & 0xFF)
        self._insert(apdu, pin, (fmt >> 3) & 0x0F, fmt, block_string)
        return bytes(apdu)

    def _modify(self, data: bytes) -> bytes:
        fields, apdu = self._template(data, MODIFY_HEADER)
        fmt, block_string = fields[2], fields[3]
        offset_old, offset_new, extra, confirm = fields[5], fields[6], fields[7], fields[8]
        lo, hi = extra >> 8, extra & 0xFF
        old = self._entry(lo, hi) if confirm & 0x02 else None
        new = self._entry(lo, hi)
        if confirm & 0x01 and self._entry(lo, hi) != new:
            raise ReaderAnswer(0x6402)
        if old is not None:
            self._insert(apdu, old, offset_old, fmt, block_string)
        self._insert(apdu, new, offset_new, fmt, block_string)
        return bytes(apdu)


def install(keys: Iterable[str], *, modify: bool = True) -> ScriptedPinPad:
    """Put one scripted PIN pad in front of every card link of every SSCardDriver of this
    process (the C library's tests: sitecustomize calls this from SBCARD_TEST_PINPAD)."""
    from sbcard.national.driver import SSCardDriver

    pad = ScriptedPinPad(keys, modify=modify)
    bare = SSCardDriver._link

    def link_with_pad(self: SSCardDriver, reader: str | None) -> Any:
        return pad.attach(bare(self, reader))

    SSCardDriver._link = link_with_pad          # type: ignore[method-assign]
    return pad


def install_from_environment() -> None:
    """``SBCARD_TEST_PINPAD`` = keypad entries, comma-separated (``modify=no,``… drops 07)."""
    script = os.environ.get("SBCARD_TEST_PINPAD")
    if script is None:
        return
    keys = [k for k in script.split(",") if k]
    modify = "modify=no" not in keys
    install([k for k in keys if k != "modify=no"], modify=modify)


SITECUSTOMIZE = "from tests.pinpad_reader import install_from_environment\n" \
                "install_from_environment()\n"
