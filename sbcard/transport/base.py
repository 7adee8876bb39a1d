"""The one small interface every way of reaching a card implements.

A transport moves bytes: ``transmit(command) -> response`` (data ‖ SW1 SW2), exactly as the
card gave them. Protocol help (T=0 GET RESPONSE), tracing and the like are layers that wrap a
transport and are transports themselves, so they stack in any order and are tested alone.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol


class Transport(ABC):
    """Bytes to one card and back."""

    _description: str = ""

    @property
    def description(self) -> str:
        """Human-readable name of where the card sits (reader name, "simulator: demo")."""
        return self._description

    @description.setter
    def description(self, value: str) -> None:
        self._description = value

    @abstractmethod
    def connect(self) -> None:
        """Power the card (or attach to it) so ``atr`` and ``transmit`` work."""

    @property
    @abstractmethod
    def atr(self) -> bytes:
        """The card's answer to reset, as last received."""

    @property
    def protocol(self) -> str:
        """``"T=0"`` or ``"T=1"``: what the link negotiated."""
        return "T=1"

    @abstractmethod
    def transmit(self, command: bytes) -> bytes:
        """Send one command APDU; return response data followed by SW1 SW2."""

    @abstractmethod
    def reset(self) -> bytes:
        """Warm-reset the card; returns the new ATR. Clears the card's security state."""

    @abstractmethod
    def disconnect(self) -> None:
        """Release the card; safe to call twice."""

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the card for a multi-step operation so no other program interleaves APDUs."""
        yield

    def __enter__(self) -> Transport:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect()


class TransportLayer(Transport):
    """A transport that wraps another and changes only what it must (usually ``transmit``)."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner

    @property
    def description(self) -> str:
        """The wrapped link's: a layer is not a place the card sits."""
        return self.inner.description

    @description.setter
    def description(self, value: str) -> None:
        self.inner.description = value

    def connect(self) -> None:
        self.inner.connect()

    @property
    def atr(self) -> bytes:
        return self.inner.atr

    @property
    def protocol(self) -> str:
        return self.inner.protocol

    def transmit(self, command: bytes) -> bytes:
        return self.inner.transmit(command)

    def reset(self) -> bytes:
        return self.inner.reset()

    def disconnect(self) -> None:
        self.inner.disconnect()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self.inner.exclusive():
            yield

    def innermost(self) -> Transport:
        t: Transport = self
        while isinstance(t, TransportLayer):
            t = t.inner
        return t


class VirtualCard(Protocol):
    """What the in-process transport needs of a card: the simulator implements it."""

    def power_on(self) -> bytes: ...

    def power_off(self) -> None: ...

    def process(self, command: bytes) -> bytes: ...


class CardTornError(Exception):
    """Raised by a virtual card to say 'power was lost mid-command' (fault injection)."""
