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

from sbcard.apdu.redact import (
    HOLDER_FID,
    HOLDER_SFI,
    mask_command,
    mask_holder_records,
    mask_known,
    mask_response,
)
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
                 on_record: Callable[[TraceRecord], None] | None = None, *,
                 redact_holder: bool = True) -> None:
        super().__init__(inner)
        self.sink = sink
        self.on_record = on_record
        #: EF06 (ID number, name) masked unless the user asked for --no-redact
        self.redact_holder = redact_holder
        self._secrets: set[bytes] = set()
        self._pending = b""          # earlier T=0 chunks of the answer being fetched
        self._pending_holder = False  # … and they are EF06 records
        self._in_holder_file = False  # the current EF is EF06 (selected by FID)

    def hide(self, secret: bytes) -> None:
        """Mask these bytes wherever they appear from now on (a script's secret variable)."""
        self._secrets.add(bytes(secret))

    def _holder_record(self, command: bytes) -> bool:
        """READ/UPDATE RECORD on EF06, by SFI or as the current file."""
        if not self.redact_holder or len(command) < 4 or command[1] not in (0xB2, 0xDC):
            return False
        sfi = command[3] >> 3
        return sfi == HOLDER_SFI or (sfi == 0 and self._in_holder_file)

    def _mask(self, command: bytes, response: bytes) -> tuple[str, str]:
        shown_cmd = mask_command(command)
        holder = self._holder_record(command)
        if holder and command[1] == 0xDC and len(command) > 5:
            shown_cmd = command[:5].hex().upper() + mask_holder_records(command[5:])
        fetching = len(command) >= 2 and command[1] == 0xC0      # GET RESPONSE: a chunk
        before = self._pending if fetching else b""
        if len(response) < 2:
            shown_rsp = response.hex().upper()
        elif (holder and command[1] == 0xB2) or (fetching and self._pending_holder):
            shown_rsp = mask_holder_records(before + response[:-2])[len(before) * 2:] + \
                response[-2:].hex().upper()
            self._pending_holder = response[-2] == 0x61
        else:
            shown_rsp = mask_response(response, before)
            self._pending_holder = False
        self._pending = before + response[:-2] if len(response) >= 2 and \
            response[-2] == 0x61 else b""
        if len(command) >= 2 and command[1] == 0xA4 and len(response) >= 2 and \
                response[-2] in (0x90, 0x61):
            data = command[5:5 + command[4]] if len(command) > 5 else b""
            self._in_holder_file = data == HOLDER_FID
        if self._secrets:
            shown_cmd = mask_known(shown_cmd, self._secrets)
            shown_rsp = mask_known(shown_rsp, self._secrets)
        return shown_cmd, shown_rsp

    def transmit(self, command: bytes) -> bytes:
        start = time.perf_counter()
        response = self.inner.transmit(command)
        elapsed = time.perf_counter() - start
        sw = int.from_bytes(response[-2:], "big") if len(response) >= 2 else None
        shown_cmd, shown_rsp = self._mask(command, response)
        record = TraceRecord(
            command=shown_cmd,
            response=shown_rsp,
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
