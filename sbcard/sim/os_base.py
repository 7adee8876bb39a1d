"""What every simulated card OS shares: power, the APDU frame, and T=0 response chaining.

Subclasses (the user card, the PSAM) implement ``_dispatch(cmd) -> (data, sw)`` and
``_reset_state()``; a T=0 card answers commands that carry data in and out with ``61xx`` and
serves the data through GET RESPONSE, exactly like the cards the spec describes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from sbcard.apdu.command import CommandApdu

Reply = tuple[bytes, int]
SW_OK = 0x9000
INS_GET_RESPONSE = 0xC0


class CardOS(ABC):
    def __init__(self, atr: bytes) -> None:
        self.atr = atr
        self.powered = False
        self.apdu_count = 0
        self.pending = b""

    @property
    @abstractmethod
    def t0_get_response(self) -> bool:
        """Whether this card answers data-returning case-4 commands with 61xx."""

    @abstractmethod
    def _reset_state(self) -> None:
        """Forget everything volatile (selection, security state, session keys)."""

    @abstractmethod
    def _dispatch(self, cmd: CommandApdu) -> Reply:
        """Answer one well-formed command."""

    def power_on(self) -> bytes:
        self.powered = True
        self.pending = b""
        self._reset_state()
        return self.atr

    def power_off(self) -> None:
        self.powered = False
        self.pending = b""
        self._reset_state()

    def process(self, raw: bytes) -> bytes:
        self.apdu_count += 1
        try:
            cmd = CommandApdu.parse(raw)
        except ValueError:
            return (0x6700).to_bytes(2, "big")
        data, sw = self._dispatch(cmd)
        if cmd.ins != INS_GET_RESPONSE:
            self.pending = b""
        if self.t0_get_response and data and cmd.data and sw == SW_OK:
            self.pending = data
            return bytes((0x61, len(data) & 0xFF))
        return data + sw.to_bytes(2, "big")

    def get_response(self, cmd: CommandApdu) -> Reply:
        """GET RESPONSE: the next ``Le`` bytes of what a 61xx announced."""
        if not self.pending:
            return b"", 0x6985
        want = cmd.le or 256
        if want > len(self.pending):
            return b"", 0x6C00 | len(self.pending)
        chunk, self.pending = self.pending[:want], self.pending[want:]
        if self.pending:
            return chunk, 0x6100 | (len(self.pending) & 0xFF)
        return chunk, SW_OK
