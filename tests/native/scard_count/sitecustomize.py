"""Counts the PC/SC calls of a process, for tests/test_national_pcsc_work.py.

Put this folder on PYTHONPATH and name a file in ``SCARD_COUNT_LOG``: every interpreter that
starts then (``python`` or the one libSSCardDriver.so embeds) wraps each ``SCard*`` function
of pyscard's ``smartcard.scard`` (the functions ``sbcard.transport.pcsc`` calls, through the
module) and writes one line per call: the name; SCardTransmit adds the command's CLA INS P1
P2 and the status word, SCardDisconnect its disposition. Lines are written as they happen:
the embedded interpreter is never finalised, so nothing waits for exit.
"""

from __future__ import annotations

import os

_LOG = os.environ.get("SCARD_COUNT_LOG")


def _install(path: str) -> None:
    from smartcard import scard

    out = open(path, "w", buffering=1, encoding="ascii")  # noqa: SIM115 - lives with the process
    names = {scard.SCARD_LEAVE_CARD: "LEAVE", scard.SCARD_RESET_CARD: "RESET",
             scard.SCARD_UNPOWER_CARD: "UNPOWER", scard.SCARD_EJECT_CARD: "EJECT"}

    def wrap(name, function):
        def counted(*args):
            result = function(*args)
            line = name
            if name == "SCardTransmit":
                line += f" {bytes(args[2][:4]).hex()} {bytes(result[1][-2:]).hex()}"
            elif name == "SCardDisconnect":
                line += f" {names.get(args[1], args[1])}"
            out.write(line + "\n")
            return result
        return counted

    for name in dir(scard):
        if name.startswith("SCard") and callable(getattr(scard, name)):
            setattr(scard, name, wrap(name, getattr(scard, name)))


if _LOG:
    _install(_LOG)
