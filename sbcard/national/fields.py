"""What the layers above the driver (the local service) show and check of the national data.

The service talks to cards only through the national driver (docs/architecture.md, layer
test), so the few facts it needs from the card model and the APDU layer reach it from here:
the field labels, the PIN length rule, the digit check, and the masking of long numbers in
its call log. Each is the one definition below the driver, re-exported, never a copy.
"""

from __future__ import annotations

from sbcard.apdu.redact import mask_pan_digits
from sbcard.card.elements import ELEMENTS
from sbcard.card.filesystem import PIN_MAX_DIGITS, PIN_MIN_DIGITS
from sbcard.hexutil import is_ascii_digits

__all__ = ["PIN_MAX_DIGITS", "PIN_MIN_DIGITS", "field_labels", "is_ascii_digits",
           "is_pin_digits", "mask_pan_digits"]


def field_labels() -> dict[str, dict[str, str]]:
    """Chinese and English names of the fields the driver answers with (``read --json``
    keys, plus the national ``region_code``), from the one element table."""
    table = {e.key: {"zh": e.zh, "en": e.en} for e in ELEMENTS}
    table["region_code"] = {"zh": "发卡地区行政区划代码", "en": "Issuing region code"}
    return table


def is_pin_digits(value: object) -> bool:
    """A PIN as the card takes it: ASCII digits, PIN_MIN_DIGITS to PIN_MAX_DIGITS long."""
    return (isinstance(value, str) and is_ascii_digits(value)
            and PIN_MIN_DIGITS <= len(value) <= PIN_MAX_DIGITS)
