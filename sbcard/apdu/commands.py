"""Builders for the card's commands (spec §4.1; 社会保障(个人)卡规范 part 5).

Each returns a ``CommandApdu`` with a ``name`` for error messages and traces. P2 codings of
READ RECORD live here once (``RecordMode``); nothing else builds these bytes by hand.
"""

from __future__ import annotations

from enum import IntEnum

from sbcard.apdu.command import CommandApdu
from sbcard.errors import BadInputError


class RecordMode(IntEnum):
    """Low three bits of READ/UPDATE RECORD P2 (ISO 7816-4 table 48)."""

    FIRST_ID = 0b000        # first record with identifier P1
    LAST_ID = 0b001
    NEXT_ID = 0b010
    PREVIOUS_ID = 0b011
    NUMBER = 0b100          # record number P1
    FROM_P1 = 0b101         # records P1 .. last, concatenated
    TO_P1 = 0b110           # records last .. P1


def _sfi_p2(sfi: int, mode: RecordMode) -> int:
    if not 0 <= sfi <= 30:
        raise BadInputError(f"SFI must be 0..30, got {sfi}")
    return (sfi << 3) | int(mode)


def select_by_name(name: bytes, *, fci: bool = True) -> CommandApdu:
    return CommandApdu(0x00, 0xA4, 0x04, 0x00 if fci else 0x0C, name,
                       256 if fci else None, name="SELECT by name")


def select_mf() -> CommandApdu:
    return CommandApdu(0x00, 0xA4, 0x00, 0x00, b"\x3f\x00", name="SELECT MF")


def select_ef(fid: int, *, p1: int = 0x02) -> CommandApdu:
    """SELECT EF under the current DF: P1=02 is the spec's form; 00 what many drivers send."""
    return CommandApdu(0x00, 0xA4, p1, 0x00, fid.to_bytes(2, "big"), name=f"SELECT EF {fid:04X}")


def read_record(p1: int, *, sfi: int = 0, mode: RecordMode = RecordMode.NUMBER,
                le: int = 256) -> CommandApdu:
    return CommandApdu(0x00, 0xB2, p1, _sfi_p2(sfi, mode), le=le,
                       name=f"READ RECORD {p1:02X} ({mode.name.lower()}, SFI {sfi:02X})")


def update_record(p1: int, record: bytes, *, sfi: int = 0,
                  mode: RecordMode = RecordMode.FIRST_ID) -> CommandApdu:
    return CommandApdu(0x00, 0xDC, p1, _sfi_p2(sfi, mode), record,
                       name=f"UPDATE RECORD {p1:02X} (SFI {sfi:02X})")


def read_binary(offset: int, le: int, *, sfi: int | None = None) -> CommandApdu:
    if sfi is not None:
        if offset > 0xFF:
            raise BadInputError("READ BINARY with an SFI addresses offsets 0..255 only")
        p1, p2 = 0x80 | sfi, offset
    else:
        if offset > 0x7FFF:
            raise BadInputError(f"READ BINARY offset {offset} is beyond 32767")
        p1, p2 = offset >> 8, offset & 0xFF
    return CommandApdu(0x00, 0xB0, p1, p2, le=le, name=f"READ BINARY @{offset}")


def update_binary(offset: int, data: bytes, *, sfi: int | None = None) -> CommandApdu:
    if sfi is not None:
        p1, p2 = 0x80 | sfi, offset
    else:
        p1, p2 = offset >> 8, offset & 0xFF
    return CommandApdu(0x00, 0xD6, p1, p2, data, name=f"UPDATE BINARY @{offset}")


def get_challenge(length: int = 8) -> CommandApdu:
    if length not in (4, 8, 16):
        raise BadInputError(f"GET CHALLENGE length must be 4, 8 or 16, got {length}")
    return CommandApdu(0x00, 0x84, 0x00, 0x00, le=length, name="GET CHALLENGE")


def verify_query() -> CommandApdu:
    """VERIFY without data: the card reports tries left and spends none (part 5 §6.14)."""
    return CommandApdu(0x00, 0x20, 0x00, 0x00, name="VERIFY (tries left)")


def verify(pin_block: bytes) -> CommandApdu:
    return CommandApdu(0x00, 0x20, 0x00, 0x00, pin_block, name="VERIFY")


def change_pin(old_block: bytes, new_block: bytes) -> CommandApdu:
    """80 5E 01 00: old ‖ FF ‖ new, plaintext cn (part 5, CHANGE PIN)."""
    return CommandApdu(0x80, 0x5E, 0x01, 0x00, old_block + b"\xff" + new_block,
                       name="CHANGE PIN")


def external_authenticate(key_id: int, auth_data: bytes, original: bytes,
                          key_version: int | None = None) -> CommandApdu:
    data = auth_data + original + (b"" if key_version is None else bytes((key_version,)))
    return CommandApdu(0x00, 0x82, 0x00, key_id, data,
                       name=f"EXTERNAL AUTHENTICATE key {key_id:02X}")


def internal_authenticate(r1: bytes, r2: bytes, key_id: int = 0x00,
                          key_version: int | None = None) -> CommandApdu:
    data = r1 + r2 + (b"" if key_version is None else bytes((key_version,)))
    return CommandApdu(0x00, 0x88, 0x00, key_id, data, le=256,
                       name=f"INTERNAL AUTHENTICATE key {key_id:02X}")


def get_processing_options(pdol_data: bytes = b"") -> CommandApdu:
    """EMV GPO for the PBOC debit application: command template 83 ‖ PDOL data."""
    return CommandApdu(0x80, 0xA8, 0x00, 0x00, bytes((0x83, len(pdol_data))) + pdol_data,
                       le=256, name="GET PROCESSING OPTIONS")
