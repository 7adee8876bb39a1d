"""DF item values as text, in the form the national interface writes them, and back to bytes.

The national ``iReadCard``/``iWriteCard`` (Sichuan reader-interface spec §2.1.2/§3.1.2, gdgly/
SI_3rdCard ``docs/3-四川省…读写机具规范.pdf``) carry values as text: ``DF01EF0A|CHN|$``. A
cyclic record is its items joined by ``^`` and ending with ``^`` (same source). Our choices
where the source says nothing (docs/spec-uncertainties.md): a B-TLV item (学位信息 ``40``) is
its sub-items the same way, ``an``→ text, ``cn``→ digits, dates YYYYMMDD, ``b``→ upper-case hex,
an empty field → empty text; a transparent file → hex of its bytes.
"""

from __future__ import annotations

import datetime as dt

from sbcard.card.dfs import RECORD_FIELDS, SUBITEMS
from sbcard.card.elements import DataElement, split_records
from sbcard.errors import BadInputError

ITEM_SEP = "^"


def value_text(el: DataElement, raw: bytes) -> str:
    """One field's bytes → its text ('' for an empty field; undecodable cn → hex)."""
    decoded = el.decode_value(raw)
    value = decoded.value
    if value is None:
        return ""
    if isinstance(value, dt.date):
        return value.strftime("%Y%m%d")
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex().upper()
    return str(value)


def _field_bytes(el: DataElement, text: str) -> bytes:
    return el.encode_value(text if text != "" else None)


def _split(text: str, count: int, what: str) -> list[str]:
    parts = text.split(ITEM_SEP)
    if len(parts) > 1 and parts[-1] == "":
        parts = parts[:-1]
    if len(parts) > count:
        raise BadInputError(f"{what}: {len(parts)} items separated by '^', the record has "
                            f"{count}")
    return parts + [""] * (count - len(parts))


def item_value(file: str, el: DataElement, text: str) -> bytes:
    """The value bytes of item ``el`` of ``file`` from its text (sub-items for a B-TLV)."""
    subs = SUBITEMS.get((file, el.tag))
    if subs is None:
        return _field_bytes(el, text)
    parts = _split(text, len(subs), f"{file} {el.tag:02X} ({el.zh})")
    value = b"".join(bytes((s.tag, s.length)) + _field_bytes(s, p)
                     for s, p in zip(subs, parts, strict=True))
    if len(value) != el.length:      # the tables' lengths add up (checked by a test)
        raise BadInputError(f"{file} {el.tag:02X}: sub-items make {len(value)} bytes, the item "
                            f"is {el.length}")
    return value


def item_text(file: str, el: DataElement, value: bytes) -> str:
    """Text of item ``el``'s value bytes (a B-TLV's sub-items joined and ended with '^')."""
    subs = SUBITEMS.get((file, el.tag))
    if subs is None:
        return value_text(el, value)
    if not value.strip(b"\x00\xff"):
        return ""
    found = {r.tag: r.value for r in split_records(value)}
    return "".join(value_text(s, found.get(s.tag, b"")) + ITEM_SEP for s in subs)


def record_bytes(file: str, text: str) -> bytes:
    """A cyclic file's record from its items' text, by position."""
    fields = RECORD_FIELDS[file]
    parts = _split(text, len(fields), f"{file} record")
    return b"".join(_field_bytes(f, p) for f, p in zip(fields, parts, strict=True))


def record_text(file: str, raw: bytes) -> str:
    """A cyclic file's record → items joined and ended with '^'."""
    out, pos = [], 0
    for f in RECORD_FIELDS[file]:
        out.append(value_text(f, raw[pos:pos + f.length]) + ITEM_SEP)
        pos += f.length
    return "".join(out)
