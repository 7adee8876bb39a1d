"""Every data element of the SSSE files as data (spec §3.1, §3.2; 人社信息函〔2012〕37号 table 9).

Each record of EF05/EF06 is one SIMPLE-TLV ``tag ‖ len ‖ value``; the record identifier is the
tag. ``key`` is the stable JSON key of ``sbcard read --json``. ``fmt`` names a codec: the
spec's formats (cn, an, date, b) from ``sbcard.card.codecs``, or an identifier codec from
``sbcard.card.identity`` that checks what it decodes (card_id, init_org, card_no, ssn, region).
卡的识别码 is "cn" in the spec table but carries the RID D156000005, which is not BCD,
so its codec treats it as structured hex.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from sbcard.card import identity
from sbcard.card.codecs import CODECS as FORMAT_CODECS
from sbcard.card.codecs import NAME_EXT_FIELD_LEN, NAME_FIELD_LEN, Codec, Decoded
from sbcard.errors import BadInputError

CODECS = MappingProxyType({**FORMAT_CODECS, **identity.CODECS})
#: Formats stored as cn (BCD) on the card, whose empty value is all F rather than all 00.
CN_TYPE_FORMATS = frozenset({"cn", "date", "region", "init_org", "card_id"})


@dataclass(frozen=True)
class DataElement:
    tag: int
    key: str
    zh: str
    en: str
    fmt: str          # a key of CODECS
    length: int
    ef: str           # file holding it

    @property
    def codec(self) -> Codec:
        return CODECS[self.fmt]

    @property
    def record_len(self) -> int:
        """Bytes READ RECORD returns: tag, length, value."""
        return self.length + 2

    def encode_value(self, value: Any) -> bytes:
        """Field bytes; None writes the empty field (all F for cn-type, all 00 for an)."""
        if value is None:
            return (b"\xff" if self.fmt in CN_TYPE_FORMATS else b"\x00") * self.length
        return self.codec.encode(value, self.length, what=self.zh)

    def encode_record(self, value: Any) -> bytes:
        return bytes((self.tag, self.length)) + self.encode_value(value)

    def encode_record_raw(self, value: bytes) -> bytes:
        """The record around value bytes made elsewhere (a B-TLV's sub-items)."""
        return bytes((self.tag, len(value))) + value

    def decode_value(self, raw: bytes) -> Decoded:
        return self.codec.decode(raw)


ELEMENTS: tuple[DataElement, ...] = (
    # EF05 发卡机构数据文件 card issuer data
    DataElement(0x01, "card_id", "卡的识别码", "Card identification code", "card_id", 0x10, "EF05"),
    DataElement(0x02, "card_type", "卡的类别", "Card category", "an", 0x01, "EF05"),
    DataElement(0x03, "spec_version", "规范版本", "Specification version", "an", 0x04, "EF05"),
    DataElement(0x04, "init_org", "初始化机构编号", "Initialising organisation", "init_org", 0x0C,
                "EF05"),
    DataElement(0x05, "issue_date", "发卡日期", "Issue date", "date", 0x04, "EF05"),
    DataElement(0x06, "expiry_date", "卡有效期", "Expiry date", "date", 0x04, "EF05"),
    DataElement(0x07, "card_no", "卡号", "Card number", "card_no", 0x09, "EF05"),
    # EF06 持卡人基本信息文件 cardholder basic information
    DataElement(0x08, "ssn", "社会保障号码", "Social security number", "ssn", 0x12, "EF06"),
    DataElement(0x09, "name", "姓名", "Name", "an", NAME_FIELD_LEN, "EF06"),
    DataElement(0x4E, "name_ext", "姓名扩展", "Name extension", "an", NAME_EXT_FIELD_LEN, "EF06"),
    DataElement(0x0A, "sex", "性别", "Sex", "an", 0x01, "EF06"),
    DataElement(0x0B, "ethnicity", "民族", "Ethnicity", "cn", 0x01, "EF06"),
    DataElement(0x0C, "birthplace", "出生地", "Birthplace", "region", 0x03, "EF06"),
    DataElement(0x0D, "birth_date", "出生日期", "Birth date", "date", 0x04, "EF06"),
)

BY_KEY = MappingProxyType({e.key: e for e in ELEMENTS})
BY_EF_TAG = MappingProxyType({(e.ef, e.tag): e for e in ELEMENTS})


def element(ef: str, tag: int) -> DataElement:
    try:
        return BY_EF_TAG[(ef, tag)]
    except KeyError:
        raise BadInputError(f"{ef} has no data element with tag {tag:02X}") from None


def elements_of(ef: str) -> tuple[DataElement, ...]:
    return tuple(e for e in ELEMENTS if e.ef == ef)


@dataclass(frozen=True)
class RawRecord:
    """One SIMPLE-TLV record as read: tag, declared length, value bytes."""

    tag: int
    value: bytes
    warnings: tuple[str, ...] = ()


def split_records(data: bytes) -> list[RawRecord]:
    """Split concatenated SIMPLE-TLV records (a READ RECORD P1..last answer).

    Padding bytes 00/FF between records are skipped; a record that claims more bytes than
    remain is kept truncated with a warning instead of being dropped.
    """
    out: list[RawRecord] = []
    pos = 0
    while pos < len(data):
        tag = data[pos]
        if tag in (0x00, 0xFF):
            pos += 1
            continue
        if pos + 1 >= len(data):
            out.append(RawRecord(tag, b"", (f"record {tag:02X} has no length byte",)))
            break
        length = data[pos + 1]
        value = data[pos + 2:pos + 2 + length]
        warns: tuple[str, ...] = ()
        if len(value) < length:
            warns = (f"record {tag:02X} claims {length} bytes but only {len(value)} follow",)
        out.append(RawRecord(tag, bytes(value), warns))
        pos += 2 + length
    return out
