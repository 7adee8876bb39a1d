"""In-process transport to a virtual card: the fast path for unit tests and demos.

It behaves like a reader holding the card: commands before ``connect`` or after the card was
torn fail the same way a PC/SC reader fails, so code above cannot tell the difference.
"""

from __future__ import annotations

from sbcard.errors import CardRemovedError, NoCardError
from sbcard.transport.base import CardTornError, Transport, VirtualCard


class SimulatedTransport(Transport):
    def __init__(self, card: VirtualCard, description: str = "simulator",
                 protocol: str = "T=1") -> None:
        self.card = card
        self.description = description
        self._protocol = protocol
        self._atr: bytes | None = None

    @property
    def protocol(self) -> str:
        return self._protocol

    def connect(self) -> None:
        if self._atr is None:
            self._atr = bytes(self.card.power_on())

    @property
    def atr(self) -> bytes:
        if self._atr is None:
            raise NoCardError(f"{self.description}: not connected (no card powered)")
        return self._atr

    def transmit(self, command: bytes) -> bytes:
        if self._atr is None:
            raise NoCardError(f"{self.description}: not connected (no card powered)")
        try:
            return bytes(self.card.process(bytes(command)))
        except CardTornError as exc:
            self._atr = None
            raise CardRemovedError(
                f"{self.description}: card removed during the command; its effect is unknown"
            ) from exc

    def reset(self) -> bytes:
        self.card.power_off()
        self._atr = None
        self.connect()
        return self.atr

    def disconnect(self) -> None:
        if self._atr is not None:
            self.card.power_off()
            self._atr = None
