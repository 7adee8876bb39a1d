"""Serve a simulated card into pcscd's vpcd slot 1 for a benchmark, and take it out again."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sbcard.testing.pcscd import CARD_SLOT, reader_name, slot_lock, system_vpcd_port

READER = reader_name(CARD_SLOT)
PORT = system_vpcd_port() + CARD_SLOT


def _present(card_present: bool, timeout: float = 10.0) -> None:
    from sbcard.transport.pcsc import list_readers

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(
            r.name == READER and r.card_present for r in list_readers()) != card_present:
        time.sleep(0.01)


def pcscd_ready() -> bool:
    """pcscd runs and has the vpcd reader (benchmarks report 'unavailable' otherwise)."""
    try:
        from sbcard.transport.pcsc import list_readers

        return READER in [r.name for r in list_readers()]
    except Exception:  # no pcscd or no PC/SC library
        return False


@contextmanager
def served(card, server_cls=None) -> Iterator[None]:
    """``card`` is in READER for the ``with`` block; it leaves when the block ends."""
    from sbcard.sim.vpcd import VpcdServer

    with slot_lock(PORT, on_wait=lambda m: print(m, file=sys.stderr)):  # --json: stdout
        server = (server_cls or VpcdServer)(card, port=PORT)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            _present(True)
            yield
        finally:
            server.stop()
            thread.join(5)
            _present(False)
