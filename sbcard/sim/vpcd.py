"""Serve a virtual card into pcscd through the vsmartcard ``vpcd`` reader driver.

vpcd (Debian ``vsmartcard-vpcd``) is an IFD handler inside pcscd that listens on TCP
(port 35963 for reader "Virtual PCD 00 00", 35964 for "… 00 01"). The card side connects and
answers. Every message in both directions is a 2-byte big-endian length and a payload; a
1-byte payload from vpcd is a control message: 00 power off, 01 power on, 02 reset, 04 get ATR
(answered with the ATR). Any other payload is a command APDU, answered with the response APDU.

Latency: every APDU is one request/response turn over loopback TCP. vpcd's socket does not
set ``TCP_NODELAY``, so its kernel holds a small frame (Nagle's algorithm) until the previous
one is acknowledged; Linux delays our acknowledgement by up to 40 ms hoping to piggyback it. A
naive card side therefore costs ~44 ms per APDU (measured here: 43.9 ms median). We send each
frame in one ``sendall`` with ``TCP_NODELAY`` and re-arm ``TCP_QUICKACK`` after every read so the
ACK leaves at once: median 0.13 ms per APDU through pcscd (``bench/bench_transport.py``).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading
import time
from collections.abc import Callable

from sbcard.errors import TransportError
from sbcard.transport.base import CardTornError, VirtualCard

log = logging.getLogger(__name__)

DEFAULT_PORT = 0x8C7B          # 35963, CHANNELID of /etc/reader.conf.d/vpcd
CTRL_OFF, CTRL_ON, CTRL_RESET, CTRL_ATR = 0x00, 0x01, 0x02, 0x04


class VpcdConnectionClosed(Exception):
    """vpcd (pcscd) closed the connection."""


#: Linux-only; elsewhere the stall stays (documented in the module docstring).
_QUICKACK = getattr(socket, "TCP_QUICKACK", None)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise VpcdConnectionClosed()
        if _QUICKACK is not None:  # the kernel clears it again after a while: re-arm per read
            sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
        buf += chunk
    return bytes(buf)


def _send_frame(sock: socket.socket, payload: bytes) -> None:
    sock.sendall(struct.pack(">H", len(payload)) + payload)


class VpcdServer:
    """Connect a ``VirtualCard`` to vpcd and answer until stopped.

    The connection is re-made when pcscd restarts (vpcd is the listening side), so a long
    hardware-in-the-loop run survives a pcscd restart. ``on_event`` hears "connected",
    "power on", "reset", "power off" and "disconnected", for logs and tests.
    """

    def __init__(self, card: VirtualCard, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                 on_event: Callable[[str], None] | None = None) -> None:
        self.card = card
        self.host = host
        self.port = port
        self.on_event = on_event or (lambda _e: None)
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self._atr: bytes | None = None
        self.apdus = 0

    def stop(self) -> None:
        self._stop.set()
        sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def connect_once(self, timeout: float = 5.0) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(None)
        return sock

    def serve_forever(self, retry_seconds: float = 0.5, max_wait: float | None = None) -> None:
        """Connect (retrying while vpcd is not listening) and answer until ``stop``.

        ``max_wait`` bounds how long to wait for the first connection (None = forever).
        """
        started = time.monotonic()
        connected_once = False
        while not self._stop.is_set():
            try:
                self._sock = self.connect_once()
            except OSError as exc:
                if (max_wait is not None and not connected_once
                        and time.monotonic() - started > max_wait):
                    raise TransportError(
                        f"vpcd is not listening on {self.host}:{self.port}: is pcscd running "
                        "with the vsmartcard-vpcd driver?"
                    ) from exc
                self._stop.wait(retry_seconds)
                continue
            connected_once = True
            self.on_event("connected")
            try:
                self._serve(self._sock)
            except (VpcdConnectionClosed, OSError):
                pass
            finally:
                self._sock.close()
                self._sock = None
                self.on_event("disconnected")
            self._stop.wait(retry_seconds)

    def _serve(self, sock: socket.socket) -> None:
        while not self._stop.is_set():
            (length,) = struct.unpack(">H", _recv_exact(sock, 2))
            payload = _recv_exact(sock, length) if length else b""
            if length == 1:
                self._control(sock, payload[0])
                continue
            _send_frame(sock, self._apdu(payload))

    def _control(self, sock: socket.socket, code: int) -> None:
        if code == CTRL_ATR:
            if self._atr is None:        # pcscd asks for the ATR before powering on
                self._atr = self.card.power_on()
            _send_frame(sock, self._atr)
        elif code == CTRL_ON:
            self._atr = self.card.power_on()
            self.on_event("power on")
        elif code == CTRL_RESET:
            self.card.power_off()
            self._atr = self.card.power_on()
            self.on_event("reset")
        elif code == CTRL_OFF:
            self.card.power_off()
            self._atr = None
            self.on_event("power off")
        else:
            log.warning("unknown vpcd control message %02X ignored", code)

    def _apdu(self, command: bytes) -> bytes:
        self.apdus += 1
        try:
            return self.card.process(command)
        except CardTornError:
            # A torn card: drop the link so pcscd sees the card vanish mid-command.
            self.on_event("torn")
            raise VpcdConnectionClosed() from None
