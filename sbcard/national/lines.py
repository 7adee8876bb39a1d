"""The national output strings, built from ``read --json``-shaped data (one place for each).

Formats (人社信息函〔2016〕38号 as restated in the Sichuan reader spec §7, and the public code
``gdgly/SI_3rdCard`` ``code/JavaScript/SSCARD.js`` / ``SSCARDCtrl.cpp``; see
/work/shared/reference/national-interface.md §3):

- iReadCardBas: ``发卡地区行政区划代码|社会保障号码|卡号|卡识别码|姓名|卡复位信息|规范版本|发卡日期|
  卡有效期|终端机编号|终端设备号|`` — every field followed by ``|``; 卡号 its first 9
  characters; 卡复位信息 the historical bytes as hex ("仅取历史字节", SSCARD.js); 规范版本 as
  "1.00"/"2.00"/"3.00"; dates YYYYMMDD; 终端机编号 twelve zeros without a PSAM.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sbcard.hexutil import is_ascii_digits

NO_TERMINAL = "000000000000"


def national_version(value: object) -> str:
    """规范版本 as the national samples print it: "1.00", "2.00", "3.00".

    An empty version is a 1.0x card (reader interface §10.2). A version the card writes in
    another shape ("2.0", "3") is widened to two decimals; anything else is passed through.
    """
    text = "" if value is None else str(value).strip().rstrip("\x00").strip()
    if not text:
        return "1.00"
    major, _, minor = text.partition(".")
    if is_ascii_digits(major) and (is_ascii_digits(minor) or not minor):
        return f"{int(major)}.{(minor + '00')[:2]}"
    return text


def field_text(value: object) -> str:
    """A field never carries the separator: ``|`` would shift every later field."""
    return "" if value is None else str(value).replace("|", "")


def ireadcardbas_line(data: Mapping[str, Any], *, terminal_number: str | None = None,
                      device_number: str = "") -> str:
    """The iReadCardBas line from ``read --json`` data of an authenticated card."""
    def v(key: str) -> str:
        return field_text(data.get(key))

    def date(key: str) -> str:
        return v(key).replace("-", "")

    fields = [v("region_code"), v("ssn"), v("card_no")[:9], v("card_id"), v("name"),
              v("atr_historical"), national_version(data.get("spec_version")),
              date("issue_date"), date("expiry_date"),
              field_text(terminal_number) or NO_TERMINAL, field_text(device_number)]
    return "".join(f + "|" for f in fields)


def join_fields(*fields: object) -> str:
    """``a|b|c|``: the national way (every field, the last too, ends with ``|``)."""
    return "".join(field_text(f) + "|" for f in fields)


def split_fields(text: str) -> list[str]:
    """The fields of ``a|b|c|`` (a missing final ``|`` is tolerated)."""
    parts = text.split("|")
    if parts and parts[-1] == "":
        parts.pop()
    return parts
