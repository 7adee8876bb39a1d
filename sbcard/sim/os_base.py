"""What every simulated card OS shares: power, the APDU frame, and T=0 response chaining.

Both simulated cards (the user card, the PSAM) dispatch the same way: command hooks first
(fault injection), then the card's own refusals (``_refuse``: blocked card, wrong CLA), then
``handlers[ins](card, cmd) -> (data, sw)``. Subclasses fill ``handlers`` and implement
``_reset_state()``; a T=0 card answers commands that carry data in and out with ``61xx`` and
serves the data through GET RESPONSE, exactly like the cards the spec describes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sbcard.apdu.command import CommandApdu
from sbcard.apdu.sw import SW
from sbcard.transport.base import CardTornError

if TYPE_CHECKING:
    import logging

Reply = tuple[bytes, int]
#: ``handler(card, cmd) -> (data, sw)``: one convention for every simulated card's commands.
Handler = Callable[[Any, CommandApdu], Reply]
#: ``hook(card, cmd) -> reply | None``: a reply ends the command before its handler runs.
CommandHook = Callable[[Any, CommandApdu], "Reply | None"]
INS_GET_RESPONSE = 0xC0


def _log() -> logging.Logger:
    """The module's logger, for the two "the card OS itself failed" paths only: logging (with
    traceback and textwrap, some 5 ms) stays off the first call of every simulated card."""
    import logging

    return logging.getLogger(__name__)


class CardOS(ABC):
    def __init__(self, atr: bytes) -> None:
        self.atr = atr
        self.powered = False
        self.apdu_count = 0
        self.pending = b""
        self.handlers: dict[int, Handler] = {}
        self.command_hooks: list[CommandHook] = []

    @property
    @abstractmethod
    def t0_get_response(self) -> bool:
        """Whether this card answers data-returning case-4 commands with 61xx."""

    @abstractmethod
    def _reset_state(self) -> None:
        """Forget everything volatile (selection, security state, session keys)."""

    def _refuse(self, cmd: CommandApdu) -> Reply | None:
        """The card's answer when it refuses ``cmd`` before its handler (None: go on)."""
        return None

    def _dispatch(self, cmd: CommandApdu) -> Reply:
        """Answer one well-formed command."""
        for hook in self.command_hooks:
            reply = hook(self, cmd)
            if reply is not None:
                return reply
        refusal = self._refuse(cmd)
        if refusal is not None:
            return refusal
        handler = self.handlers.get(cmd.ins)
        if handler is None:
            return b"", SW.INS_NOT_SUPPORTED
        return handler(self, cmd)

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
            return SW.WRONG_LENGTH.to_bytes(2, "big")
        try:
            data, sw = self._dispatch(cmd)
        except CardTornError:
            raise                      # a test's injected fault: the card leaves the reader
        except Exception:              # a card answers, whatever happens inside it
            _log().exception("simulated card OS failed on %s; answering 6F00",
                          raw[:4].hex().upper())
            self.pending = b""
            return SW.NO_DIAGNOSIS.to_bytes(2, "big")
        if not isinstance(sw, int) or not 0x6000 <= sw <= 0x9FFF:
            _log().error("simulated card OS gave status word %r to %s; answering 6F00", sw,
                      raw[:4].hex().upper())
            return SW.NO_DIAGNOSIS.to_bytes(2, "big")
        if cmd.ins != INS_GET_RESPONSE:
            self.pending = b""
        if self.t0_get_response and data and cmd.data and sw == SW.OK:
            self.pending = data
            return bytes((0x61, len(data) & 0xFF))
        return data + sw.to_bytes(2, "big")

    def get_response(self, cmd: CommandApdu) -> Reply:
        """GET RESPONSE: the next ``Le`` bytes of what a 61xx announced."""
        if not self.pending:
            return b"", SW.CONDITIONS_NOT_SATISFIED
        want = cmd.le or 256
        if want > len(self.pending):
            return b"", SW.WRONG_LE | len(self.pending)
        chunk, self.pending = self.pending[:want], self.pending[want:]
        if self.pending:
            return chunk, SW.MORE_DATA | (len(self.pending) & 0xFF)
        return chunk, SW.OK
