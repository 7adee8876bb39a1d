"""The card's identifiers and their checks: 卡号, 社会保障号码, 卡的识别码, 初始化机构编号, regions.

Checks return warnings instead of raising, because real cards carry test numbers whose check
characters do not verify (spec §3.4, §11): a technician must be told, not stopped. Functions
that *compute* something from user input (a check character, a card id to write) raise
:class:`BadInputError` when the input cannot be used.

The codecs at the end wrap these types so the card model reads and writes them like any other
element; their decode adds the checks' warnings.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import ClassVar

from sbcard.card import codes
from sbcard.card.codecs import AN, CN, DIGITS, Codec, Decoded
from sbcard.card.filesystem import RID_MOHRSS
from sbcard.errors import BadInputError
from sbcard.hexutil import parse_hex, to_hex

UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
HEX = "0123456789ABCDEF"

# --- region codes (GB/T 2260) ----------------------------------------------------------------

REGION_LEN = 6


def check_region_code(code: str, what: str = "region code") -> tuple[str, ...]:
    """Warnings for a 6-digit GB/T 2260 region code: shape, and a known province prefix.

    Only the province is checked: the full list of cities and counties changes every year,
    and cards outlive the list they were issued under.
    """
    if len(code) != REGION_LEN or any(ch not in DIGITS for ch in code):
        return (f"{what} {code!r} is not {REGION_LEN} digits",)
    if codes.province(code) is None:
        return (f"{what} {code}: {code[:2]} is not a GB/T 2260 province-level prefix",)
    return ()


# --- 卡号 card number (spec §3.4) -------------------------------------------------------------

CARD_NO_LEN = 9
CARD_NO_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)


def _card_no_value(ch: str) -> int | None:
    if ch in DIGITS:
        return int(ch)
    if ch in UPPER:
        return 10 + ord(ch) - ord("A")
    return None


def card_no_check_char(body8: str) -> str:
    """The 9th character of a 卡号 from its 8-character body (spec §3.4, S2 appendix A).

    Weighted sum with 3 7 9 10 5 8 4 2, letters counting 10 + (letter − 'A');
    C9 = 11 − (sum mod 11), written 'X' for 10 and '0' for 11.
    """
    if len(body8) != CARD_NO_LEN - 1:
        raise BadInputError(f"卡号 body {body8!r} has {len(body8)} characters; it needs 8")
    total = 0
    for pos, (ch, weight) in enumerate(zip(body8, CARD_NO_WEIGHTS, strict=True), start=1):
        value = _card_no_value(ch)
        if value is None:
            raise BadInputError(
                f"卡号 body {body8!r}: character {pos}, {ch!r}, is neither a digit nor an "
                f"upper-case letter"
            )
        total += value * weight
    check = 11 - total % 11
    return "X" if check == 10 else "0" if check == 11 else str(check)


def check_card_no(card_no: str) -> tuple[str, ...]:
    """Warnings for a 卡号: 9 characters, a district letter first, a matching check character."""
    s = card_no
    warnings: list[str] = []
    if len(s) != CARD_NO_LEN:
        warnings.append(f"卡号 {s!r} has {len(s)} characters, expected {CARD_NO_LEN}")
    if not s:
        return tuple(warnings)
    if s[0] not in UPPER:
        warnings.append(f"卡号 {s}: first character {s[0]!r} is not an upper-case letter")
    bad = [(pos, ch) for pos, ch in enumerate(s[:8], start=1) if _card_no_value(ch) is None]
    if bad:
        pos, ch = bad[0]
        warnings.append(
            f"卡号 {s}: character {pos}, {ch!r}, is neither a digit nor an upper-case letter"
        )
    elif len(s) == CARD_NO_LEN:
        expected = card_no_check_char(s[:8])
        if s[8] != expected:
            warnings.append(
                f"卡号 {s}: check character is {s[8]!r}, expected {expected!r} (test card?)"
            )
    return tuple(warnings)


# --- 社会保障号码 / citizen ID number (GB 11643-1999) -----------------------------------------

SSN_LEN = 18
# ISO 7064 MOD 11-2: weight of position i (1-based, left to right) is 2^(18 - i) mod 11.
ID_WEIGHTS = tuple(pow(2, SSN_LEN - i, 11) for i in range(1, SSN_LEN))
EARLIEST_BIRTH_YEAR = 1900


def id_check_char(body17: str) -> str:
    """The 18th character of a GB 11643 ID number from its 17 digits ('X' stands for 10)."""
    if len(body17) != SSN_LEN - 1:
        raise BadInputError(f"ID number body {body17!r} has {len(body17)} characters; it needs 17")
    for pos, ch in enumerate(body17, start=1):
        if ch not in DIGITS:
            raise BadInputError(
                f"ID number body {body17!r}: character {pos}, {ch!r}, is not a digit"
            )
    check = (12 - sum(int(ch) * w for ch, w in zip(body17, ID_WEIGHTS, strict=True)) % 11) % 11
    return "X" if check == 10 else str(check)


def ssn_birth_date(ssn: str) -> dt.date | None:
    """The birth date embedded in an 18-character ID number (characters 7–14), or None."""
    digits = ssn[6:14]
    if len(ssn) != SSN_LEN or len(digits) != 8 or any(ch not in DIGITS for ch in digits):
        return None
    try:
        return dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        return None


def ssn_sex(ssn: str) -> str | None:
    """GB/T 2261.1 sex code implied by an ID number: 17th digit odd → '1', even → '2'."""
    if len(ssn) != SSN_LEN or ssn[16] not in DIGITS:
        return None
    return "1" if int(ssn[16]) % 2 else "2"


def check_ssn(ssn: str, *, today: dt.date | None = None) -> tuple[str, ...]:
    """Warnings for a 社会保障号码 read as a GB 11643 ID number.

    Checks: 18 characters, 17 digits then a digit or 'X', the check character, a real birth
    date not in the future, a plausible region prefix. Foreigners' numbers are assigned by
    MOHRSS and may fail these checks legitimately, hence warnings, not errors.
    """
    s = ssn
    warnings: list[str] = []
    if len(s) != SSN_LEN:
        extra = " (a 15-digit first-generation ID number?)" if len(s) == 15 else ""
        return (f"社会保障号码 {s!r} has {len(s)} characters, expected {SSN_LEN}{extra}",)
    if s[17] == "x":
        warnings.append(f"社会保障号码 {s}: lower-case 'x'; GB 11643 writes 'X'")
        s = s[:17] + "X"
    bad = [(pos, ch) for pos, ch in enumerate(s[:17], start=1) if ch not in DIGITS]
    if bad:
        pos, ch = bad[0]
        warnings.append(f"社会保障号码 {s}: character {pos}, {ch!r}, is not a digit")
        return tuple(warnings)
    if s[17] not in DIGITS + "X":
        warnings.append(f"社会保障号码 {s}: last character {s[17]!r} is neither a digit nor 'X'")
    else:
        expected = id_check_char(s[:17])
        if s[17] != expected:
            warnings.append(
                f"社会保障号码 {s}: check character is {s[17]!r}, expected {expected!r}"
            )
    born = ssn_birth_date(s)
    today = today or dt.date.today()
    if born is None:
        warnings.append(f"社会保障号码 {s}: birth date {s[6:14]} is not a calendar date")
    elif born > today:
        warnings.append(f"社会保障号码 {s}: birth date {born.isoformat()} is in the future")
    elif born.year < EARLIEST_BIRTH_YEAR:
        warnings.append(f"社会保障号码 {s}: birth year {born.year} is implausible")
    prefix = s[:2]
    if codes.province(prefix) is None and codes.ID_ONLY_PREFIX.lookup(prefix) is None:
        hint = " (foreigners' permanent-residence numbers start with 9)" if s[0] == "9" else ""
        warnings.append(
            f"社会保障号码 {s}: region prefix {prefix} is not a GB/T 2260 province{hint}"
        )
    return tuple(warnings)


# --- 卡的识别码 card identification code (spec §3.3) -----------------------------------------

MOHRSS_RID = to_hex(RID_MOHRSS)           # as it reads inside 卡的识别码
AUTH_NOT_SET = "FFFFFFFF"


def _require_hex(value: str, n_digits: int, what: str) -> str:
    text = value.upper()
    if len(text) != n_digits or any(ch not in HEX for ch in text):
        raise BadInputError(f"卡的识别码 {what} {value!r} must be {n_digits} hex digits")
    return text


@dataclass(frozen=True)
class CardId:
    """卡的识别码: region (3 bytes BCD) ‖ RID D156000005 ‖ serial (4) ‖ auth code (4).

    Parts are kept as upper-case hex so that a card with odd content (a non-BCD region, a
    foreign RID) still parses and shows everything; ``warnings`` says what is odd. The auth
    code is computed by the issuer with an unpublished algorithm, so it is never verified.
    """

    region: str
    rid: str
    serial: str
    auth_code: str

    LENGTH: ClassVar[int] = 16

    def __post_init__(self) -> None:
        for name, n_digits in (("region", 6), ("rid", 10), ("serial", 8), ("auth_code", 8)):
            object.__setattr__(self, name, _require_hex(getattr(self, name), n_digits, name))

    @property
    def raw(self) -> bytes:
        return bytes.fromhex(self.hex())

    def hex(self) -> str:
        """The 32 hex digits, as the reader interface's pCardInfo carries them (spec §7.1)."""
        return self.region + self.rid + self.serial + self.auth_code

    @property
    def auth_code_set(self) -> bool:
        return self.auth_code != AUTH_NOT_SET

    @property
    def warnings(self) -> tuple[str, ...]:
        out = list(check_region_code(self.region, "卡的识别码 region"))
        if self.rid != MOHRSS_RID:
            out.append(f"卡的识别码 RID is {self.rid}, expected {MOHRSS_RID} (MOHRSS)")
        if not self.auth_code_set:
            out.append("卡的识别码 auth code FFFFFFFF: not set (test/early card)")
        return tuple(out)

    @classmethod
    def parse(cls, data: bytes | str) -> CardId:
        """From the 16 bytes of record 01 (or 32 hex digits); odd content gives warnings."""
        raw = parse_hex(data, "卡的识别码") if isinstance(data, str) else bytes(data)
        if len(raw) != cls.LENGTH:
            raise BadInputError(f"卡的识别码 is {len(raw)} bytes; it needs {cls.LENGTH}")
        text = to_hex(raw)
        return cls(text[:6], text[6:16], text[16:24], text[24:])

    @classmethod
    def build(
        cls, region: str, serial: str, auth_code: str = AUTH_NOT_SET, rid: str = MOHRSS_RID
    ) -> CardId:
        """A card id to write (simulator, personalisation): the region must be 6 digits."""
        if len(region) != REGION_LEN or any(ch not in DIGITS for ch in region):
            raise BadInputError(f"卡的识别码 region {region!r} must be 6 digits")
        return cls(region, rid, serial, auth_code)

    def to_json(self) -> dict[str, str]:
        return {
            "hex": self.hex(), "region": self.region, "rid": self.rid,
            "serial": self.serial, "auth_code": self.auth_code,
        }


# --- 初始化机构编号 initialising-organisation number (spec §3.1 tag 04) ------------------------

ISSUER_PREFIX = "9156000002"


@dataclass(frozen=True)
class InitOrgNo:
    """初始化机构编号, cn 12 bytes = 24 digits, read as four parts.

    Reading of spec §3.1 (S2 table 9): ``91 56 00 00 02`` (5 bytes, issuer-ID prefix, fixed)
    ‖ issuing-region code (3 bytes, 6 digits) ‖ initialising-organisation region code (3 bytes,
    6 digits) ‖ sequence (1 byte, 2 digits). The spec example 915600000211000011010002 thus
    reads 9156000002 | 110000 | 110100 | 02. 5 + 3 + 3 + 1 = 12 bytes matches the field length.
    """

    issuer_prefix: str
    issuing_region: str
    init_org_region: str
    sequence: str

    LENGTH: ClassVar[int] = 12
    PARTS: ClassVar[tuple[tuple[str, int], ...]] = (
        ("issuer_prefix", 10), ("issuing_region", 6), ("init_org_region", 6), ("sequence", 2),
    )

    def __post_init__(self) -> None:
        for name, n_digits in self.PARTS:
            value = getattr(self, name)
            if len(value) != n_digits or any(ch not in DIGITS for ch in value):
                raise BadInputError(f"初始化机构编号 {name} {value!r} must be {n_digits} digits")

    @property
    def digits(self) -> str:
        return self.issuer_prefix + self.issuing_region + self.init_org_region + self.sequence

    @property
    def raw(self) -> bytes:
        return bytes.fromhex(self.digits)

    @property
    def warnings(self) -> tuple[str, ...]:
        out: list[str] = []
        if self.issuer_prefix != ISSUER_PREFIX:
            out.append(f"初始化机构编号 prefix is {self.issuer_prefix}, expected {ISSUER_PREFIX}")
        out += check_region_code(self.issuing_region, "初始化机构编号 issuing region")
        out += check_region_code(self.init_org_region, "初始化机构编号 initialising-org region")
        return tuple(out)

    @classmethod
    def parse(cls, data: bytes | str) -> InitOrgNo:
        """From the 12 field bytes or the 24 digits; raises if it is not 24 BCD digits."""
        text = to_hex(bytes(data)) if isinstance(data, bytes | bytearray) else data.strip()
        if len(text) != 2 * cls.LENGTH or any(ch not in DIGITS for ch in text):
            raise BadInputError(f"初始化机构编号 {text!r} must be {2 * cls.LENGTH} digits")
        parts, start = [], 0
        for _, n_digits in cls.PARTS:
            parts.append(text[start:start + n_digits])
            start += n_digits
        return cls(*parts)

    def to_json(self) -> dict[str, str]:
        return {
            "digits": self.digits, "issuer_prefix": self.issuer_prefix,
            "issuing_region": self.issuing_region, "init_org_region": self.init_org_region,
            "sequence": self.sequence,
        }


# --- codecs for the card model -----------------------------------------------------------------

def _require_length(length: int, expected: int, label: str) -> None:
    if length != expected:
        raise BadInputError(f"{label}: the field is {expected} bytes, not {length}")


def _ascii_upper_alnum(value: str, label: str) -> None:
    for pos, ch in enumerate(value, start=1):
        if ch not in DIGITS and ch not in UPPER:
            hint = "; write upper-case" if ch.isascii() and ch.islower() else ""
            raise BadInputError(
                f"{label}: character {pos} of {len(value)}, {ch!r}, is not a digit or "
                f"upper-case letter{hint}"
            )


class CardIdCodec(Codec):
    """卡的识别码 (EF05 tag 01, 16 bytes): value is a :class:`CardId`; all-F reads as None."""

    name = "card_id"
    vectors = (
        (CardId("639900", MOHRSS_RID, "00BF7C7A", "48FB4966"), 16,
         "639900D15600000500BF7C7A48FB4966"),
    )
    decode_vectors = (
        ("510100D156000005C0666779FFFFFFFF",
         CardId("510100", MOHRSS_RID, "C0666779", AUTH_NOT_SET), "not set (test/early card)"),
        ("510100D156000006C066677912345678",
         CardId("510100", "D156000006", "C0666779", "12345678"), "expected D156000005"),
        ("FF" * 16, None, ""),
        ("510100D156000005", bytes.fromhex("510100D156000005"), "8 bytes, expected 16"),
    )
    bad_inputs = (
        ("510100D156000005C0666779", 16, "12 bytes; it needs 16"),
        (CardId("510100", MOHRSS_RID, "C0666779", AUTH_NOT_SET), 12, "16 bytes, not 12"),
    )

    def encode(self, value: CardId | bytes | str, length: int, *, what: str | None = None) -> bytes:
        _require_length(length, CardId.LENGTH, what or "卡的识别码")
        card_id = value if isinstance(value, CardId) else CardId.parse(value)
        return card_id.raw

    def decode(self, raw: bytes) -> Decoded:
        raw = bytes(raw)
        if raw and not raw.strip(b"\xff"):
            return Decoded(None)
        if len(raw) != CardId.LENGTH:
            return Decoded(raw, (f"卡的识别码 is {len(raw)} bytes, expected {CardId.LENGTH}",))
        card_id = CardId.parse(raw)
        return Decoded(card_id, card_id.warnings)


class InitOrgCodec(Codec):
    """初始化机构编号 (EF05 tag 04, cn 12 bytes): value is an :class:`InitOrgNo`."""

    name = "init_org"
    vectors = (
        (InitOrgNo(ISSUER_PREFIX, "110000", "110100", "02"), 12, "915600000211000011010002"),
    )
    decode_vectors = (
        ("F" * 24, None, ""),
        ("915600000211000011010002", InitOrgNo(ISSUER_PREFIX, "110000", "110100", "02"), ""),
        ("9156000002110000110100FF", "9156000002110000110100", "22 digits"),
        ("915600000211000011A10002", bytes.fromhex("915600000211000011A10002"), "not BCD"),
        ("915600000300000011010002", InitOrgNo("9156000003", "000000", "110100", "02"),
         "expected 9156000002"),
    )
    bad_inputs = (
        ("91560000021100001101000", 12, "must be 24 digits"),
        (InitOrgNo(ISSUER_PREFIX, "110000", "110100", "02"), 11, "12 bytes, not 11"),
    )

    def encode(self, value: InitOrgNo | bytes | str, length: int, *, what: str | None = None
               ) -> bytes:
        _require_length(length, InitOrgNo.LENGTH, what or "初始化机构编号")
        number = value if isinstance(value, InitOrgNo) else InitOrgNo.parse(value)
        return number.raw

    def decode(self, raw: bytes) -> Decoded:
        cn = CN.decode(raw)
        if cn.value is None or cn.warnings:
            return cn
        if len(cn.value) != 2 * InitOrgNo.LENGTH:
            return Decoded(cn.value, (
                f"初始化机构编号 has {len(cn.value)} digits, expected {2 * InitOrgNo.LENGTH}",
            ))
        number = InitOrgNo.parse(cn.value)
        return Decoded(number, number.warnings)


class CardNoCodec(Codec):
    """卡号 (EF05 tag 07, an 9): 9 ASCII characters, checked on decode (spec §3.4).

    Writing accepts a check character that does not verify (test cards exist); the caller
    decides whether to ask for confirmation, using :func:`check_card_no`.
    """

    name = "card_no"
    vectors = (("D2143569X", 9, "443231343335363958"), ("X00000019", 9, "583030303030303139"))
    decode_vectors = (
        ("443231343335363935", "D21435695", "expected 'X'"),
        ("443231343335363958" + "00", "D2143569X", ""),
        ("44323134333536395841", "D2143569X", "only the first 9"),
        ("000000000000000000", None, ""),
    )
    bad_inputs = (
        ("d2143569X", 9, "write upper-case"),
        ("D2143569", 9, "it needs 9"),
        ("D2143569X", 10, "9 bytes, not 10"),
    )

    def encode(self, value: str, length: int, *, what: str | None = None) -> bytes:
        label = what or "卡号"
        _require_length(length, CARD_NO_LEN, label)
        _ascii_upper_alnum(value, label)
        if len(value) != CARD_NO_LEN:
            raise BadInputError(f"{label}: {value!r} has {len(value)} characters; it needs 9")
        return AN.encode(value, length, what=label)

    def decode(self, raw: bytes) -> Decoded:
        text = AN.decode(raw)
        if not isinstance(text.value, str):
            return text
        value, warnings = text.value, list(text.warnings)
        if len(value) > CARD_NO_LEN:
            warnings.append(f"卡号 field holds {value!r}; readers use only the first 9")
            value = value[:CARD_NO_LEN]
        return Decoded(value, (*warnings, *check_card_no(value)))


class SsnCodec(Codec):
    """社会保障号码 (EF06 tag 08, an 18): written as given, checked on decode (GB 11643).

    Writing accepts any 1–18 digits/upper-case letters, because MOHRSS assigns numbers of
    other shapes to foreigners; :func:`check_ssn` tells the caller what looks wrong.
    """

    name = "ssn"
    vectors = (
        ("110105199003071239", 18, "313130313035313939303033303731323339"),
        ("65010219880615104X", 18, "363530313032313938383036313531303458"),
    )
    decode_vectors = (
        ("363530313032313938383036313531303478", "65010219880615104x", "lower-case 'x'"),
        ("313130313035313939303033303731323338", "110105199003071238", "expected '9'"),
        ("00" * 18, None, ""),
    )
    bad_inputs = (
        ("65010219880615104x", 18, "write upper-case"),
        ("1101051990030712390", 18, "19 bytes"),
        ("110105 19900307123", 18, "character 7 of 18"),
    )

    def encode(self, value: str, length: int, *, what: str | None = None) -> bytes:
        label = what or "社会保障号码"
        _require_length(length, SSN_LEN, label)
        _ascii_upper_alnum(value, label)
        if not value:
            raise BadInputError(f"{label}: empty")
        return AN.encode(value, length, what=label)

    def decode(self, raw: bytes) -> Decoded:
        text = AN.decode(raw)
        if not isinstance(text.value, str):
            return text
        return Decoded(text.value, (*text.warnings, *check_ssn(text.value)))


class RegionCodec(Codec):
    """A GB/T 2260 region code as cn 3 bytes (出生地 EF06 tag 0C, Jiangsu EF0D tag EB)."""

    name = "region"
    vectors = (("510100", 3, "510100"), (None, 3, "FFFFFF"))
    decode_vectors = (
        ("990100", "990100", "not a GB/T 2260 province"),
        ("5101FF", "5101", "not 6 digits"),
    )
    bad_inputs = (("5101", 3, "needs 6 digits"), ("51010A", 3, "not a decimal digit"))

    def encode(self, value: str | None, length: int, *, what: str | None = None) -> bytes:
        label = what or "region code"
        _require_length(length, REGION_LEN // 2, label)
        if value is not None and len(value) != REGION_LEN:
            raise BadInputError(
                f"{label}: {value!r} has {len(value)} characters; it needs 6 digits"
            )
        return CN.encode(value, length, what=label)

    def decode(self, raw: bytes) -> Decoded:
        cn = CN.decode(raw)
        if cn.value is None or cn.warnings:
            return cn
        return Decoded(cn.value, check_region_code(cn.value))


CARD_ID = CardIdCodec()
INIT_ORG = InitOrgCodec()
CARD_NO = CardNoCodec()
SSN = SsnCodec()
REGION = RegionCodec()


# Identifier codecs by name, alongside ``codecs.CODECS`` (cn, an, date, b).
CODECS: Mapping[str, Codec] = MappingProxyType(
    {c.name: c for c in (CARD_ID, INIT_ORG, CARD_NO, SSN, REGION)}
)
