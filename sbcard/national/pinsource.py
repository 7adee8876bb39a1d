"""Where the national PIN functions get a PIN: they take none as an argument (spec §7.2).

- ``ConsolePinSource``: a hidden prompt on the terminal (/dev/tty), for technicians.
- ``PinentryPinSource``: GnuPG's ``pinentry`` program over its Assuan protocol (SETTITLE,
  SETDESC, SETPROMPT, GETPIN → ``D <pin>`` / ``ERR 83886179 Operation cancelled``), so a
  desktop gets the standard dialog (packages ``pinentry-gnome3``, ``pinentry-qt``, …).
- ``PinPadPinSource``: the reader's own PIN pad (PC/SC part 10 FEATURE_VERIFY_PIN_DIRECT for
  iVerifyPIN, FEATURE_MODIFY_PIN_DIRECT for iChangePIN); the PIN never enters this process.
  The driver verifies and changes through the reader (``sbcard.national.pinpad``); without
  the feature, or for a PIN it would have to read (iReloadPIN, iReadCard by PIN): −13.
- ``FixedPinSource``: a PIN given by the caller (the local service's explicit kiosk mode, tests).

A source returns digits or raises ``NationalError`` (−31 cancelled, −32 timed out, −33 length).
PINs are never logged, and the Assuan exchange is read without echoing ``D`` lines anywhere.
"""

from __future__ import annotations

import urllib.parse
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sbcard.card.filesystem import PIN_MAX_DIGITS, PIN_MIN_DIGITS
from sbcard.national import codes
from sbcard.national.codes import NationalError

if TYPE_CHECKING:
    import subprocess

MIN_DIGITS, MAX_DIGITS = PIN_MIN_DIGITS, PIN_MAX_DIGITS   # spec §7.2: the PIN pad takes 4–16

#: Assuan error codes pinentry answers with (GPG_ERR_CANCELED / GPG_ERR_TIMEOUT, with the
#: pinentry source byte in front): the low 16 bits are the gpg-error code.
GPG_ERR_CANCELED = 99
GPG_ERR_TIMEOUT = 62


def check_digits(pin: str) -> str:
    if not pin.isdigit() or not pin.isascii() or not MIN_DIGITS <= len(pin) <= MAX_DIGITS:
        raise NationalError(codes.PIN_LENGTH, f"{codes.message(codes.PIN_LENGTH)}"
                                              f"（{MIN_DIGITS}-{MAX_DIGITS}位数字）")
    return pin


class PinSource(ABC):
    """Collects one PIN; ``prompt`` is the Chinese line shown to the holder."""

    name = "PIN source"
    on_reader = False          # True: the reader checks the PIN itself (PIN pad)

    @abstractmethod
    def get_pin(self, prompt: str, *, description: str = "") -> str:
        """Digits, or ``NationalError`` (−31 cancelled, −32 timeout, −33 length)."""


class FixedPinSource(PinSource):
    """PINs given in advance, one per request in order (a new PIN twice means two entries)."""

    name = "fixed"

    def __init__(self, *pins: str) -> None:
        self._pins = list(pins)

    def __repr__(self) -> str:
        return f"FixedPinSource({len(self._pins)} PINs)"

    def get_pin(self, prompt: str, *, description: str = "") -> str:
        if not self._pins:
            raise NationalError(codes.PIN_CANCELLED, "用户取消密码输入（没有预置的密码）")
        pin = self._pins.pop(0) if len(self._pins) > 1 else self._pins[0]
        return check_digits(pin)


class ConsolePinSource(PinSource):
    name = "console"

    def __init__(self) -> None:
        # getpass (and termios) load with this source, not with the driver: the first call of
        # every national function imports this module (issue 13, first-call weight).
        import getpass

        self._getpass = getpass

    def get_pin(self, prompt: str, *, description: str = "") -> str:
        try:
            ask = f"{description}\n{prompt}: " if description else f"{prompt}: "
            pin = self._getpass.getpass(ask)
        except (EOFError, KeyboardInterrupt):
            raise NationalError(codes.PIN_CANCELLED) from None
        if not pin:
            raise NationalError(codes.PIN_CANCELLED)
        return check_digits(pin.strip())


def _assuan_escape(text: str) -> str:
    """Assuan parameters: %, CR and LF percent-escaped (the protocol's only quoting)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


class PinentryPinSource(PinSource):
    """One ``pinentry`` process per PIN, spoken to over stdin/stdout (Assuan)."""

    name = "pinentry"

    def __init__(self, program: Sequence[str] | str = "pinentry", timeout: float = 60.0,
                 title: str = "社会保障卡 sbcard") -> None:
        # subprocess (with signal, selectors) loads with this source, not with the driver,
        # whose every first call imports this module (issue 13, first-call weight).
        import subprocess

        self._subprocess = subprocess
        self.argv = [program] if isinstance(program, str) else list(program)
        self.timeout = timeout
        self.title = title

    def get_pin(self, prompt: str, *, description: str = "") -> str:
        subprocess = self._subprocess
        try:
            proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL, text=True, encoding="utf-8")
        except OSError:
            raise NationalError(codes.LOAD_LIBRARY, f"{codes.message(codes.LOAD_LIBRARY)}"
                                                    f"（无法启动 {self.argv[0]}）") from None
        try:
            return self._dialogue(proc, prompt, description)
        finally:
            try:
                if proc.stdin and not proc.stdin.closed:
                    proc.stdin.write("BYE\n")
                    proc.stdin.close()
            except OSError:
                pass
            try:
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def _line(self, proc: subprocess.Popen[str]) -> str:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise NationalError(codes.PIN_CANCELLED, "用户取消密码输入（pinentry 已退出）")
        return line.rstrip("\n")

    def _command(self, proc: subprocess.Popen[str], command: str) -> list[str]:
        """Send one command; the data lines (``D …``) until ``OK``, or the mapped ``ERR``."""
        assert proc.stdin is not None
        proc.stdin.write(command + "\n")
        proc.stdin.flush()
        data: list[str] = []
        while True:
            line = self._line(proc)
            if line.startswith("D "):
                data.append(urllib.parse.unquote(line[2:]))
            elif line == "OK" or line.startswith("OK "):
                return data
            elif line.startswith("ERR"):
                raise self._error(line)
            # S (status) and # (comment) lines are informational.

    @staticmethod
    def _error(line: str) -> NationalError:
        parts = line.split()
        try:
            err = int(parts[1]) & 0xFFFF
        except (IndexError, ValueError):
            err = -1
        if err == GPG_ERR_TIMEOUT:
            return NationalError(codes.PIN_TIMEOUT)
        return NationalError(codes.PIN_CANCELLED)

    def _dialogue(self, proc: subprocess.Popen[str], prompt: str, description: str) -> str:
        greeting = self._line(proc)
        if not greeting.startswith("OK"):
            raise NationalError(codes.PIN_CANCELLED, "用户取消密码输入（pinentry 未就绪）")
        self._command(proc, f"SETTITLE {_assuan_escape(self.title)}")
        if description:
            self._command(proc, f"SETDESC {_assuan_escape(description)}")
        self._command(proc, f"SETPROMPT {_assuan_escape(prompt)}")
        self._command(proc, f"SETTIMEOUT {int(self.timeout)}")
        data = self._command(proc, "GETPIN")
        pin = "".join(data)
        if not pin:
            raise NationalError(codes.PIN_CANCELLED)
        return check_digits(pin)


class PinPadPinSource(PinSource):
    """The reader verifies and changes on its own keypad (PC/SC part 10 features 06, 07)."""

    name = "pinpad"
    on_reader = True

    def get_pin(self, prompt: str, *, description: str = "") -> str:
        # Only a function that hands the PIN to the host asks; the pad never does that.
        raise NationalError(codes.UNSUPPORTED,
                            f"{codes.message(codes.UNSUPPORTED)}（密码键盘上输入的密码不经过主机，"
                            "密码键盘只用于 iVerifyPIN 和 iChangePIN）")


def pin_source_for(kind: str, *, pinentry: str = "pinentry", fixed: str | None = None
                   ) -> PinSource:
    if kind == "console":
        return ConsolePinSource()
    if kind == "pinentry":
        import shlex

        return PinentryPinSource(shlex.split(pinentry))
    if kind == "pinpad":
        return PinPadPinSource()
    if kind == "fixed":
        return FixedPinSource(*([fixed] if fixed else []))
    raise NationalError(codes.BAD_PARAMETER, f"未知的密码来源 {kind}")
