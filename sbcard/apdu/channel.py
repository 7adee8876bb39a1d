"""The APDU channel: the session object every operation is handed.

It sends ``CommandApdu`` objects over a transport stack and returns ``ResponseApdu``; with
``check`` it turns an unexpected status word into the matching ``CardError``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sbcard.apdu.command import CommandApdu, ResponseApdu
from sbcard.apdu.sw import CardError
from sbcard.transport.base import Transport


class ApduChannel:
    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.apdu_count = 0

    @property
    def atr(self) -> bytes:
        return self.transport.atr

    def send(self, command: CommandApdu) -> ResponseApdu:
        self.apdu_count += 1
        return ResponseApdu.parse(self.transport.transmit(command.to_bytes()))

    def check(self, command: CommandApdu, *, expect: tuple[int, ...] = (0x9000,)) -> ResponseApdu:
        """Send and insist on one of ``expect``; otherwise raise the specific CardError."""
        response = self.send(command)
        if response.sw not in expect:
            raise CardError.for_sw(response.sw, command.name or str(command), response.data)
        return response

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self.transport.exclusive():
            yield
