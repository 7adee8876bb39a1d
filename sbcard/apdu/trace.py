"""APDU tracing as a transport layer: every exchange with lengths, timing and the SW in words.

Secrets are masked here, at the only place traces are made (rules in ``redact``), so no
caller can forget. Put this layer directly on the link (under the T=0 layer) to see every
GET RESPONSE as it really crossed the wire.

Format, one line per direction::

    >> 00A404000F7378312E73682EC9E7BBE1B1A3D5CF  (20 B)
    << 6F1C...9000  (32 B, 0.21 ms)  9000 成功 success
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sbcard.apdu.redact import mask_command, mask_response
from sbcard.apdu.sw import describe_sw
from sbcard.transport.base import Transport, TransportLayer


@dataclass(frozen=True)
class TraceRecord:
    """One exchange as it may be shown or stored: already masked."""

    command: str
    response: str
    seconds: float
    sw: int | None
    command_len: int
    response_len: int


class TraceLayer(TransportLayer):
    def __init__(self, inner: Transport, sink: Callable[[str], None] | None = None,
                 on_record: Callable[[TraceRecord], None] | None = None) -> None:
        super().__init__(inner)
        self.sink = sink
        self.on_record = on_record

    def transmit(self, command: bytes) -> bytes:
        start = time.perf_counter()
        response = self.inner.transmit(command)
        elapsed = time.perf_counter() - start
        sw = int.from_bytes(response[-2:], "big") if len(response) >= 2 else None
        record = TraceRecord(
            command=mask_command(command),
            response=mask_response(response) if sw is not None else response.hex().upper(),
            seconds=elapsed,
            sw=sw,
            command_len=len(command),
            response_len=len(response),
        )
        if self.on_record is not None:
            self.on_record(record)
        if self.sink is not None:
            self.sink(format_record(record))
        return response

    def connect(self) -> None:
        self.inner.connect()
        if self.sink is not None:
            self.sink(f"-- {self.description}  ATR {self.inner.atr.hex().upper()}  "
                      f"{self.inner.protocol}")

    def reset(self) -> bytes:
        atr = self.inner.reset()
        if self.sink is not None:
            self.sink(f"-- reset  ATR {atr.hex().upper()}")
        return atr


def format_record(r: TraceRecord) -> str:
    meaning = describe_sw(r.sw) if r.sw is not None else "no status word"
    return (f">> {r.command}  ({r.command_len} B)\n"
            f"<< {r.response}  ({r.response_len} B, {r.seconds * 1000:.2f} ms)  {meaning}")


#: Instruction bytes → the command's name, for the one-line steps of ``sbcard -v``.
INS_NAMES = {
    0xA4: "SELECT", 0xB0: "READ BINARY", 0xB2: "READ RECORD", 0xD6: "UPDATE BINARY",
    0xDC: "UPDATE RECORD", 0x20: "VERIFY", 0x5E: "CHANGE/RELOAD PIN",
    0x84: "GET CHALLENGE", 0x82: "EXTERNAL AUTHENTICATE", 0x88: "INTERNAL AUTHENTICATE",
    0xC0: "GET RESPONSE", 0xA8: "GET PROCESSING OPTIONS",
}


def format_step(r: TraceRecord) -> str:
    """``READ RECORD → 9000 成功 success (0.21 ms)``: what was asked, what the card said."""
    ins = int(r.command[2:4], 16) if len(r.command) >= 4 else -1
    name = INS_NAMES.get(ins, f"INS {r.command[2:4]}")
    meaning = describe_sw(r.sw) if r.sw is not None else "no status word"
    return f"· {name} → {meaning} ({r.seconds * 1000:.2f} ms)"
