"""Kiosk mode: the PIN typed on the page, handed to the driver for one operation only.

Off by default (``kiosk_pin_from_page``): a PIN that travels through a web page can be read
by any script on that page and by anything that logs requests. A self-service kiosk whose
only page is the service's own may accept it; docs/local-service.md states the risk.
The PINs live in the reader's worker thread for the length of one driver call, never in a
log (``logmask``) and never in an answer.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sbcard.national import codes
from sbcard.national.codes import NationalError
from sbcard.national.pinsource import FixedPinSource, PinSource


class PagePins(PinSource):
    name = "page (kiosk mode)"

    def __init__(self) -> None:
        self._local = threading.local()

    @contextmanager
    def holding(self, entries: tuple[str, ...]) -> Iterator[None]:
        self._local.source = FixedPinSource(*entries)
        try:
            yield
        finally:
            self._local.source = None

    def get_pin(self, prompt: str, *, description: str = "") -> str:
        source = getattr(self._local, "source", None)
        if source is None:
            raise NationalError(codes.PIN_CANCELLED, "用户取消密码输入（页面未提供密码 no PIN "
                                                      "from the page）")
        return source.get_pin(prompt, description=description)
