"""Codecs for the data formats of the card's tables (spec §0.2): cn, an, date and b.

Every codec has the same two methods, so the card model can treat all elements alike:

* ``encode(value, length) -> bytes`` turns what a user typed into the exact field bytes and
  raises :class:`BadInputError` with a one-line reason when it cannot (a character that is not
  in GBK, a value too long for the field, a digit that is not a digit).
* ``decode(raw) -> Decoded`` never raises for odd content: cards in the field carry test
  numbers, FFFFFFFF auth codes and impossible dates, and a technician must still see them. Odd
  content comes back as the best value available plus warnings. Content that cannot be read in
  the codec's format at all (a non-BCD nibble, bytes that are not GB18030) comes back as the
  raw ``bytes``, so the value's type tells text from undecodable; JSON shows bytes as hex.

Each codec carries its own vectors next to its code (``vectors``: value, field length, field hex
that must round-trip without warnings; ``decode_vectors``: field hex as read, value, a word the
warnings must contain, or "" for none; ``bad_inputs``: value, length, a word of the error).
The tests sweep every :class:`Codec` subclass, so a codec without vectors fails.

The name helpers at the end split a long 姓名 over the two fields 09 and 4E and join it back.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar

from sbcard.errors import BadInputError
from sbcard.hexutil import parse_hex, to_hex

DIGITS = "0123456789"

Vector = tuple[Any, int, str]
DecodeVector = tuple[str, Any, str]
BadInput = tuple[Any, int, str]

# Look-alikes of the middle dot that people paste into minority and foreign names. Only U+00B7
# is in GBK (A1A4), so the error message points the user at it.
_DOT_LOOKALIKES = frozenset("\u2022\u2027\u22c5\u30fb\uff65\u2219\u0387")


@dataclass(frozen=True)
class Decoded:
    """A value read from the card and what was odd about it (empty when nothing was)."""

    value: Any
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.warnings

    def json_value(self) -> Any:
        """The value in a JSON-friendly form: bytes as upper-case hex, dates as ISO text."""
        return json_value(self.value)


def json_value(value: Any) -> Any:
    """JSON-friendly form of a decoded value; objects may provide ``to_json()``."""
    if isinstance(value, bytes | bytearray):
        return to_hex(bytes(value))
    if isinstance(value, dt.date):
        return value.isoformat()
    if hasattr(value, "to_json"):
        return value.to_json()
    if isinstance(value, tuple | list):
        return [json_value(v) for v in value]
    return value


def _label(what: str | None, codec: str) -> str:
    return what or f"{codec} value"


def _check_length(length: int, label: str) -> None:
    if length < 1:
        raise BadInputError(f"{label}: field length must be at least 1 byte, got {length}")


def encode_gbk(text: str, what: str = "text") -> bytes:
    """GBK bytes of ``text``; refuses the first character GBK lacks, naming it and its place.

    GBK rather than GB18030 because readers and issuers in the field decode GBK (spec §0.2): a
    rare character written as a GB18030 four-byte sequence would print as garbage elsewhere.
    NUL is refused as well, since an fields use 00 as padding and it would cut the text short.
    """
    out = bytearray()
    total = len(text)
    for pos, ch in enumerate(text, start=1):
        if ch == "\x00":
            raise BadInputError(
                f"{what}: character {pos} of {total} is NUL (U+0000), which an fields use "
                f"as padding"
            )
        try:
            out += ch.encode("gbk")
        except UnicodeEncodeError:
            hint = ""
            if ch in _DOT_LOOKALIKES:
                hint = " (write the middle dot of a name as U+00B7 '·')"
            raise BadInputError(
                f"{what}: character {pos} of {total}, {ch!r} (U+{ord(ch):04X}), is not in GBK"
                f"{hint}"
            ) from None
    return bytes(out)


def _non_gbk(text: str) -> list[str]:
    found: list[str] = []
    for ch in text:
        try:
            ch.encode("gbk")
        except UnicodeEncodeError:
            found.append(f"{ch!r} (U+{ord(ch):04X})")
    return found


class Codec(ABC):
    """One data format: ``encode(value, length)`` for writing, ``decode(raw)`` for reading."""

    name: ClassVar[str]
    vectors: ClassVar[tuple[Vector, ...]] = ()
    decode_vectors: ClassVar[tuple[DecodeVector, ...]] = ()
    bad_inputs: ClassVar[tuple[BadInput, ...]] = ()

    @abstractmethod
    def encode(self, value: Any, length: int, *, what: str | None = None) -> bytes:
        """Field bytes of exactly ``length``; ``what`` names the element in error messages."""

    @abstractmethod
    def decode(self, raw: bytes) -> Decoded:
        """Value plus warnings; never raises for odd content."""

    def __repr__(self) -> str:
        return f"<codec {self.name}>"


class Cn(Codec):
    """cn, compressed numeric: BCD digits, left-aligned, right-padded with nibble F.

    Values are digit strings, not integers, because leading zeros carry meaning (ethnicity 01,
    region codes). All-F is an empty field and decodes to None.
    """

    name = "cn"
    vectors = (
        ("01", 1, "01"),
        ("510100", 3, "510100"),
        ("123", 3, "123FFF"),
        (None, 3, "FFFFFF"),
        ("20140601", 4, "20140601"),
    )
    decode_vectors = (
        ("FF", None, ""),
        ("", None, ""),
        ("12A4FF", bytes.fromhex("12A4FF"), "nibble A at position 3"),
        ("12F4FF", bytes.fromhex("12F4FF"), "nibble F at position 3"),
    )
    bad_inputs = (
        ("12a", 3, "character 3 of 3, 'a', is not a decimal digit"),
        ("１２", 2, "character 1 of 2"),
        ("12345", 2, "5 digits do not fit the 2-byte cn field"),
    )

    def encode(self, value: str | int | None, length: int, *, what: str | None = None) -> bytes:
        label = _label(what, self.name)
        _check_length(length, label)
        if value is None:
            return b"\xff" * length
        digits = str(value) if isinstance(value, int) else value
        for pos, ch in enumerate(digits, start=1):
            if ch not in DIGITS:
                raise BadInputError(
                    f"{label}: character {pos} of {len(digits)}, {ch!r}, is not a decimal digit "
                    f"(cn fields are BCD)"
                )
        if len(digits) > 2 * length:
            raise BadInputError(
                f"{label}: {len(digits)} digits do not fit the {length}-byte cn field "
                f"(at most {2 * length})"
            )
        return bytes.fromhex(digits.ljust(2 * length, "F"))

    def decode(self, raw: bytes) -> Decoded:
        text = to_hex(raw)
        digits = text.rstrip("F")
        if not digits:
            return Decoded(None)
        bad = [(pos, ch) for pos, ch in enumerate(digits, start=1) if ch not in DIGITS]
        if not bad:
            return Decoded(digits)
        shown = ", ".join(f"nibble {ch} at position {pos}" for pos, ch in bad[:3])
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        return Decoded(
            bytes(raw), (f"cn {text}: {shown}{more} not BCD (before the F padding); kept as hex",)
        )


class An(Codec):
    """an, alphanumeric: bytes left-aligned, right-padded with 00; text in GBK.

    Written as GBK (what every reader decodes), read as GB18030, the superset, so that a card
    written by a GB18030-aware issuer still shows its rare characters. All-00 and all-FF are
    empty fields (never written / erased).
    """

    name = "an"
    vectors = (
        ("3", 1, "33"),
        ("2.00", 4, "322E3030"),
        ("2.0", 4, "322E3000"),
        ("测试", 6, "B2E2CAD4" + "0000"),
        ("买买提·测试", 12, "C2F2C2F2CCE1A1A4B2E2CAD4"),
        ("TEST ZHANG", 12, "54455354205A48414E47" + "0000"),
        (None, 3, "000000"),
    )
    decode_vectors = (
        ("FFFFFF", None, ""),
        ("00000000", None, ""),
        ("322E3000", "2.0", ""),
        ("B2E2FE9F0000", "测䶮", "outside GBK"),
        ("B2E29532823600", "测𠀀", "outside GBK"),
        ("B2E2CAD4FFFF", "测试", "padded with FF"),
        ("B2E2CA000000", bytes.fromhex("B2E2CA000000"), "not GB18030 text"),
        ("41004200", "A\x00B", "control character"),
    )
    bad_inputs = (
        ("测𠀀", 8, "character 2 of 2, '𠀀' (U+20000), is not in GBK"),
        ("买买提•测试", 12, "write the middle dot of a name as U+00B7"),
        ("测试测试", 7, "takes 8 bytes in GBK, more than the 7-byte field"),
        ("A\x00B", 4, "NUL"),
    )

    def encode(
        self, value: str | bytes | None, length: int, *, what: str | None = None
    ) -> bytes:
        label = _label(what, self.name)
        _check_length(length, label)
        if value is None:
            return bytes(length)
        is_text = isinstance(value, str)
        data = encode_gbk(value, label) if isinstance(value, str) else bytes(value)
        if len(data) > length:
            how = " in GBK" if is_text else ""
            raise BadInputError(
                f"{label}: {value!r} takes {len(data)} bytes{how}, more than the "
                f"{length}-byte field"
            )
        return data.ljust(length, b"\x00")

    def decode(self, raw: bytes) -> Decoded:
        raw = bytes(raw)
        if not raw.strip(b"\x00") or not raw.strip(b"\xff"):
            return Decoded(None)
        warnings: list[str] = []
        body = raw.rstrip(b"\x00")
        if body.endswith(b"\xff"):
            stripped = body.rstrip(b"\xff")
            warnings.append(f"an: padded with FF instead of 00 ({len(body) - len(stripped)} bytes)")
            body = stripped
            if not body:
                return Decoded(None, tuple(warnings))
        try:
            text = body.decode("gb18030")
        except UnicodeDecodeError as err:
            warnings.append(
                f"an: bytes {to_hex(body[err.start:err.end])} at offset {err.start} are not "
                f"GB18030 text; kept as hex"
            )
            return Decoded(raw, tuple(warnings))
        controls = [
            f"U+{ord(ch):04X} at character {pos}"
            for pos, ch in enumerate(text, start=1)
            if ord(ch) < 0x20 or ord(ch) == 0x7F
        ]
        if controls:
            warnings.append("an: control character " + ", ".join(controls[:3]))
        outside = _non_gbk(text)
        if outside:
            warnings.append(
                "an: characters outside GBK (GB18030 only): " + ", ".join(outside[:3])
                + "; GBK readers will not show them"
            )
        return Decoded(text, tuple(warnings))


class Date(Codec):
    """Date: cn 4 bytes YYYYMMDD (GB/T 7408 basic format) ↔ ``datetime.date``.

    All-F and all-0 are empty (both are seen on cards). A date that cannot exist decodes to its
    digit string with a warning rather than being dropped, so the technician sees what is there.
    """

    name = "date"
    LENGTH: ClassVar[int] = 4
    vectors = (
        (dt.date(2014, 6, 1), 4, "20140601"),
        (dt.date(2000, 2, 29), 4, "20000229"),
        (None, 4, "FFFFFFFF"),
    )
    decode_vectors = (
        ("00000000", None, ""),
        ("20230230", "20230230", "not a calendar date"),
        ("2014FFFF", "2014", "expected 8 digits"),
        ("2014A601", bytes.fromhex("2014A601"), "not BCD"),
    )
    bad_inputs = (
        ("2023-02-30", 4, "no such date"),
        ("20230230", 4, "no such date"),
        ("2023/02/03", 4, "YYYYMMDD or YYYY-MM-DD"),
        (dt.date(2014, 6, 1), 3, "4-byte"),
    )

    def encode(
        self, value: dt.date | str | None, length: int, *, what: str | None = None
    ) -> bytes:
        label = _label(what, self.name)
        if length != self.LENGTH:
            raise BadInputError(f"{label}: dates are 4-byte cn YYYYMMDD, not {length} bytes")
        if value is None:
            return b"\xff" * length
        day = parse_date(value, label) if isinstance(value, str) else value
        if isinstance(day, dt.datetime):
            day = day.date()
        return CN.encode(f"{day.year:04d}{day.month:02d}{day.day:02d}", length, what=label)

    def decode(self, raw: bytes) -> Decoded:
        if raw and not bytes(raw).strip(b"\x00"):
            return Decoded(None)
        cn = CN.decode(raw)
        if cn.value is None or cn.warnings:
            return cn
        digits: str = cn.value
        warnings: list[str] = []
        if len(raw) != self.LENGTH:
            warnings.append(f"date: field is {len(raw)} bytes, expected {self.LENGTH}")
        if len(digits) != 8:
            warnings.append(f"date: {digits!r} is not a date; expected 8 digits YYYYMMDD")
            return Decoded(digits, tuple(warnings))
        try:
            day = dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
        except ValueError as err:
            warnings.append(f"date: {digits} is not a calendar date ({err})")
            return Decoded(digits, tuple(warnings))
        return Decoded(day, tuple(warnings))


def parse_date(text: str, what: str = "date") -> dt.date:
    """A date typed as YYYYMMDD or YYYY-MM-DD, with a message naming what is wrong."""
    s = text.strip()
    digits = s.replace("-", "") if len(s) == 10 and s[4] == s[7] == "-" else s
    if len(digits) != 8 or any(ch not in DIGITS for ch in digits):
        raise BadInputError(f"{what}: {text!r} is not a date; write YYYYMMDD or YYYY-MM-DD")
    try:
        return dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError as err:
        raise BadInputError(f"{what}: no such date {text!r} ({err})") from None


class Binary(Codec):
    """b, binary: bytes as they are. Input may be bytes or hex text; JSON shows hex.

    Binary fields have no padding convention, so the value must fill the field exactly: a
    silently padded key or photo would be wrong in a way nobody notices.
    """

    name = "b"
    vectors = (
        (bytes.fromhex("D156000005"), 5, "D156000005"),
        (bytes.fromhex("00FF"), 2, "00FF"),
    )
    decode_vectors = (("", b"", ""),)
    bad_inputs = (
        ("00 G1", 2, "'G' at position 4 is not a hex digit"),
        (b"\x01\x02\x03", 4, "3 bytes; the 4-byte b field takes exactly 4"),
    )

    def encode(
        self, value: bytes | str | None, length: int, *, what: str | None = None
    ) -> bytes:
        label = _label(what, self.name)
        _check_length(length, label)
        if value is None:
            return bytes(length)
        data = parse_hex(value, label) if isinstance(value, str) else bytes(value)
        if len(data) != length:
            raise BadInputError(
                f"{label}: value is {len(data)} bytes; the {length}-byte b field takes exactly "
                f"{length}"
            )
        return data

    def decode(self, raw: bytes) -> Decoded:
        return Decoded(bytes(raw))


CN = Cn()
AN = An()
DATE = Date()
B = Binary()

# The spec's format names (as in the element tables) → codec.
CODECS: Mapping[str, Codec] = MappingProxyType({c.name: c for c in (CN, AN, DATE, B)})


# --- 姓名 (EF06 tag 09) and 姓名扩展 (tag 4E) -------------------------------------------------

NAME_FIELD_LEN = 0x1E       # 姓名, an
NAME_EXT_FIELD_LEN = 0x14   # 姓名扩展, an (V2.0): continuation when a name exceeds 30 bytes
NAME_MAX_LEN = NAME_FIELD_LEN + NAME_EXT_FIELD_LEN

# (name, 姓名 field hex, 姓名扩展 field hex): encode_name() must give these, join_name() undo them.
NAME_VECTORS: tuple[tuple[str, str, str], ...] = (
    ("测试", "B2E2CAD4" + "00" * 26, "00" * 20),
    ("买买提·测试", "C2F2C2F2CCE1A1A4B2E2CAD4" + "00" * 18, "00" * 20),
    (
        "阿依古丽·测试买买提·艾合买提江测",
        "B0A2D2C0B9C5C0F6A1A4B2E2CAD4C2F2C2F2CCE1A1A4B0ACBACFC2F2CCE1",
        "BDADB2E2" + "00" * 16,
    ),
    (
        "Z测试测试测试测试测试测试测试·测试",
        "5AB2E2CAD4B2E2CAD4B2E2CAD4B2E2CAD4B2E2CAD4B2E2CAD4B2E2CAD400",
        "A1A4B2E2CAD4" + "00" * 14,
    ),
)


def split_name(name: str) -> tuple[str, str]:
    """Split a name into the text for 姓名 (≤ 30 GBK bytes) and for 姓名扩展 (the rest).

    The cut falls between characters, never inside a two-byte GBK character, because a reader
    that decodes each field alone would otherwise print garbage at the seam. Raises when the
    name has a character outside GBK or needs more than the 50 bytes the two fields hold.
    """
    data = encode_gbk(name, "姓名")
    if len(data) > NAME_MAX_LEN:
        raise BadInputError(
            f"姓名: {name!r} takes {len(data)} bytes in GBK; 姓名 and 姓名扩展 together hold "
            f"at most {NAME_MAX_LEN} ({NAME_FIELD_LEN} + {NAME_EXT_FIELD_LEN})"
        )
    used = 0
    for pos, ch in enumerate(name):
        size = len(ch.encode("gbk"))
        if used + size > NAME_FIELD_LEN:
            return name[:pos], name[pos:]
        used += size
    return name, ""


def encode_name(name: str) -> tuple[bytes, bytes]:
    """The 姓名 and 姓名扩展 field bytes (00-padded; 姓名扩展 all 00 for short names)."""
    head, tail = split_name(name)
    return (
        AN.encode(head, NAME_FIELD_LEN, what="姓名"),
        AN.encode(tail, NAME_EXT_FIELD_LEN, what="姓名扩展"),
    )


def join_name(name_field: bytes | None, ext_field: bytes | None = None) -> Decoded:
    """The full name from 姓名 ‖ 姓名扩展, as readers do (reader interface §10.2).

    Joined at byte level, so a name that another writer cut inside a character still reads
    correctly (with a warning). ``ext_field`` is None on 1.0-layout cards, which lack tag 4E.
    """
    head = bytes(name_field or b"")
    tail = bytes(ext_field or b"")
    if not tail.strip(b"\x00") or not tail.strip(b"\xff"):
        return AN.decode(head)
    warnings: list[str] = []
    head_text = head.rstrip(b"\x00")
    if not head_text.strip(b"\xff"):
        warnings.append("姓名 is empty but 姓名扩展 holds text")
        head_text = b""
    elif len(head) - len(head_text) >= _first_char_size(tail):
        warnings.append("姓名扩展 holds text although 姓名 had room for more")
    joined = head_text + tail
    if head_text and not _decodes(head_text) and _decodes(joined.rstrip(b"\x00")):
        warnings.append("a character is split across 姓名 and 姓名扩展")
    decoded = AN.decode(joined)
    return Decoded(decoded.value, (*warnings, *decoded.warnings))


def _first_char_size(data: bytes) -> int:
    """Bytes of the first GB18030 character: ASCII 1, four-byte form 4, otherwise 2."""
    if data[0] < 0x80:
        return 1
    return 4 if len(data) > 1 and 0x30 <= data[1] <= 0x39 else 2


def _decodes(data: bytes) -> bool:
    try:
        data.decode("gb18030")
    except UnicodeDecodeError:
        return False
    return True
