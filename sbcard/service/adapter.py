"""What the service needs from ``SSCardDriver`` beyond the national functions, in one place.

The national functions themselves are called by name (``functions.FUNCTIONS``). The
service also needs: the parsed fields beside the national line (``read_fields``), a PIN
operation with the kiosk PIN when that mode is on, both HSM steps through the driver's
configured bridge, and whether a card is in the reader (for the card events). Each runs in
the reader's worker thread (``queue.ReaderQueue``), except ``present``, which only asks
PC/SC for the reader state and never talks to the card.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sbcard.national.fields import field_labels


def labels() -> dict[str, dict[str, str]]:
    """Chinese and English names of the fields, from the one element table."""
    return field_labels()


class DriverAdapter:
    def __init__(self, driver: Any, page_pins: Any = None) -> None:
        self.driver = driver
        self.page_pins = page_pins          # a PagePins when kiosk mode is on

    def card_with_line(self, i_type: int) -> tuple[int, Any]:
        code, fields = self.driver.read_fields(i_type)
        if code != 0:
            return code, fields
        line_code, line = self.driver.iReadCardBas(i_type)
        return 0, {"fields": fields, "labels": labels(),
                   "national": line if line_code == 0 else None,
                   "national_code": line_code,
                   "national_message": None if line_code == 0 else line}

    def pin_operation(self, kind: str, pins: dict[str, str]) -> Callable[[int], tuple[int, Any]]:
        """The driver's PIN function; in kiosk mode the page's PINs are handed to the
        ``PagePins`` source for exactly this operation (in the reader's worker thread)."""
        function = getattr(self.driver, {"verify": "iVerifyPIN", "change": "iChangePIN"}[kind])
        if self.page_pins is None or not pins:
            return function     # kiosk mode without a PIN: the page source says −31
        if kind == "verify":
            entries: tuple[str, ...] = (pins.get("pin", ""),)
        else:  # the driver asks old, new, new again
            entries = (pins.get("oldPin", ""), pins.get("newPin", ""), pins.get("newPin", ""))
        page_pins = self.page_pins

        def with_page_pins(i_type: int) -> tuple[int, Any]:
            with page_pins.holding(entries):
                return function(i_type)

        return with_page_pins

    def photo(self, i_type: int) -> tuple[int, Any]:
        """EF08's image bytes (``SSCardDriver.read_photo``: the key source opens RKSSSE)."""
        return self.driver.read_photo(i_type)

    def hsm_read(self, i_type: int) -> tuple[int, Any]:
        """Both HSM steps by the service: the driver's key source is the HSM bridge
        (``[keys] source = "hsm"`` in the driver configuration), so iReadCardBas runs
        Step1 → HSM → Step2 inside the driver."""
        return self.driver.iReadCardBas(i_type)
