"""T=0 response handling as a transport layer (ISO 7816-3 §12.2, ISO 7816-4 §5.3.3).

On T=0 a card signals available data with ``61xx`` (fetch it with GET RESPONSE, possibly in
several rounds) and a wrong Le with ``6Cxx`` (send the same command again with Le=xx). Readers
do not do this for the application; this layer does, and hands up one complete response, so no
byte is ever lost between rounds. Many social security cards answer SELECT with ``61xx`` even
under T=1 readers, so the layer is used on every link unless the user asks for raw APDUs.
"""

from __future__ import annotations

from sbcard.apdu.command import CommandApdu
from sbcard.errors import TransportError
from sbcard.transport.base import Transport, TransportLayer

#: A card that keeps saying 61xx/6Cxx forever is broken; stop after this many rounds.
MAX_ROUNDS = 64

#: Instructions that only read (ISO 7816-4 §11: SELECT, READ BINARY/RECORD, GET DATA, GET
#: RESPONSE, GET CHALLENGE) or compute without spending a try (INTERNAL AUTHENTICATE): sending
#: one again with the Le the card asked for changes nothing.
#: Any other command (VERIFY, CHANGE/RELOAD/UNBLOCK PIN, EXTERNAL AUTHENTICATE, a write, a
#: proprietary command) may have spent a try or changed the card the first time: its 6Cxx is
#: handed up as it came, never re-sent, so one typed APDU is one APDU at the card.
RESENDABLE_INS = frozenset({0xA4, 0xB0, 0xB1, 0xB2, 0xB3, 0xCA, 0xCB, 0xC0, 0x84, 0x88})


class T0Layer(TransportLayer):
    def __init__(self, inner: Transport, *, max_rounds: int = MAX_ROUNDS,
                 enabled: bool = True) -> None:
        super().__init__(inner)
        self.max_rounds = max_rounds
        #: Scripts switch T=0 help off to behave exactly like scriptor (``option t0 off``).
        self.enabled = enabled

    def transmit(self, command: bytes) -> bytes:
        response = self.inner.transmit(command)
        if not self.enabled or len(response) < 2:
            return response
        sw1, sw2 = response[-2], response[-1]
        if sw1 == 0x6C:
            try:
                apdu = CommandApdu.parse(command)
            except ValueError:
                return response
            if apdu.le is None:  # 6Cxx to a command without Le: nothing to correct
                return response
            if apdu.ins not in RESENDABLE_INS:   # may have changed state: report, never repeat
                return response
            response = self.inner.transmit(apdu.with_le(sw2 or 256).to_bytes())
            sw1, sw2 = response[-2], response[-1]
        if sw1 != 0x61:
            return response
        collected = bytearray(response[:-2])
        channel_bits = command[0] & 0x03 if command and command[0] < 0x80 else 0
        rounds = 0
        while sw1 == 0x61:
            rounds += 1
            if rounds > self.max_rounds:
                raise TransportError(
                    f"card kept answering 61xx after {self.max_rounds} GET RESPONSE rounds"
                )
            get_response = bytes((channel_bits, 0xC0, 0x00, 0x00, sw2))
            reply = self.inner.transmit(get_response)
            if len(reply) < 2:
                raise TransportError("card gave no status word to GET RESPONSE")
            sw1, sw2 = reply[-2], reply[-1]
            if sw1 == 0x6C:  # GET RESPONSE with the wrong Le: ask again with the right one
                reply = self.inner.transmit(get_response[:4] + bytes((sw2,)))
                sw1, sw2 = reply[-2], reply[-1]
            collected += reply[:-2]
        return bytes(collected) + bytes((sw1, sw2))
