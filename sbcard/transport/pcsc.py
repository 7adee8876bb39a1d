"""PC/SC transport through pyscard's low-level ``scard`` API (pcsc-lite on Linux).

The same code drives a technician's USB reader (libccid) and the simulated card served into
pcscd by vpcd; nothing here knows which. PC/SC error codes become sbcard's transport errors
with a message that says what to do.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sbcard import messages as msg
from sbcard.errors import (
    AmbiguousReaderError,
    CardRemovedError,
    NoCardError,
    NoServiceError,
    ReaderChoiceError,
    ReaderNotFoundError,
    TransportError,
)
from sbcard.transport.base import Transport

READER_ENV = "SBCARD_READER"


def _scard() -> Any:
    try:
        from smartcard import scard
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise NoServiceError(
            f"PC/SC is not available ({exc}); install pcscd and libpcsclite1 (Debian) "
            "and the pyscard package"
        ) from exc
    return scard


def _message(scard: Any, rv: int) -> str:
    try:
        return str(scard.SCardGetErrorMessage(rv)).strip()
    except Exception:  # pragma: no cover
        return f"PC/SC error {rv & 0xFFFFFFFF:#010x}"


def _raise_for(scard: Any, rv: int, where: str, *, in_command: bool = False) -> None:
    """Turn a PC/SC return value into the matching sbcard error (no-op on success)."""
    if rv == scard.SCARD_S_SUCCESS:
        return
    code = rv & 0xFFFFFFFF
    text = f"{where}: {_message(scard, rv)} ({code:#010x})"
    if rv in (scard.SCARD_E_NO_SERVICE, scard.SCARD_E_SERVICE_STOPPED):
        raise NoServiceError(msg.NO_PCSCD)
    if rv == scard.SCARD_E_NO_READERS_AVAILABLE:
        raise ReaderNotFoundError(msg.NO_READER)
    if rv in (scard.SCARD_E_UNKNOWN_READER, scard.SCARD_E_READER_UNAVAILABLE):
        raise ReaderNotFoundError(text)
    removed = (scard.SCARD_W_REMOVED_CARD, scard.SCARD_E_NO_SMARTCARD,
               scard.SCARD_W_UNPOWERED_CARD, scard.SCARD_W_RESET_CARD)
    if in_command and (rv in removed or rv == scard.SCARD_E_NOT_TRANSACTED):
        raise CardRemovedError(
            f"{where}: card removed or reset during the command; its effect on the card is unknown"
        )
    if rv in removed:
        raise NoCardError(f"{where}: no card in the reader")
    if rv == scard.SCARD_W_UNRESPONSIVE_CARD:
        raise NoCardError(f"{where}: the card does not answer (inserted the wrong way round?)")
    if rv == scard.SCARD_E_SHARING_VIOLATION:
        raise TransportError(f"{where}: another program holds the reader exclusively")
    raise TransportError(text)


@dataclass(frozen=True)
class ReaderInfo:
    index: int
    name: str
    card_present: bool
    atr: bytes


class PcscContext:
    """An established PC/SC context; released on close."""

    def __init__(self) -> None:
        self.scard = _scard()
        rv, self.handle = self.scard.SCardEstablishContext(self.scard.SCARD_SCOPE_USER)
        _raise_for(self.scard, rv, "PC/SC")

    def readers(self) -> list[str]:
        rv, names = self.scard.SCardListReaders(self.handle, [])
        if rv == self.scard.SCARD_E_NO_READERS_AVAILABLE:
            return []
        _raise_for(self.scard, rv, "listing readers")
        return list(names)

    def reader_states(self) -> list[ReaderInfo]:
        names = self.readers()
        if not names:
            return []
        query = [(name, self.scard.SCARD_STATE_UNAWARE) for name in names]
        rv, states = self.scard.SCardGetStatusChange(self.handle, 0, query)
        _raise_for(self.scard, rv, "reading reader states")
        out = []
        for i, (name, event, atr) in enumerate(states):
            present = bool(event & self.scard.SCARD_STATE_PRESENT) and not bool(
                event & self.scard.SCARD_STATE_MUTE
            )
            out.append(ReaderInfo(i, name, present, bytes(atr) if present else b""))
        return out

    def close(self) -> None:
        if self.handle is not None:
            self.scard.SCardReleaseContext(self.handle)
            self.handle = None


def choose_reader(readers: list[ReaderInfo], spec: str | None,
                  reserved: Mapping[str, str] | None = None) -> ReaderInfo:
    """Pick a reader by index, exact name, or unambiguous name fragment.

    With no spec (and no ``SBCARD_READER``): the only reader, else the first one holding a
    card, else the first reader. An ambiguous fragment is an error listing the candidates,
    because a technician with two readers must never talk to the wrong card.

    ``reserved`` maps reader names to what holds them (the PSAM's reader → "the PSAM"):
    the default choice skips them, and naming one is refused, so a user card is never
    looked for in the PSAM's reader.
    """
    reserved = reserved or {}
    spec = spec if spec is not None else os.environ.get(READER_ENV) or None
    if not readers:
        raise ReaderNotFoundError("no card reader found: plug one in (is libccid installed?)")
    listing = "; ".join(f"{r.index}: {r.name}" for r in readers)
    if spec is None:
        free = [r for r in readers if r.name not in reserved]
        if not free:
            held = "; ".join(f"{name} holds {what}" for name, what in reserved.items())
            raise ReaderNotFoundError(f"no reader left for the card ({held})")
        with_card = [r for r in free if r.card_present]
        return with_card[0] if with_card else free[0]
    chosen = _match_reader(readers, spec, listing)
    if chosen.name in reserved:
        raise ReaderChoiceError(f"{chosen.name} holds {reserved[chosen.name]}: give the "
                                "card's own reader")
    return chosen


def _match_reader(readers: list[ReaderInfo], spec: str, listing: str) -> ReaderInfo:
    if spec.isascii() and spec.isdigit():
        idx = int(spec)
        if idx < len(readers):
            return readers[idx]
        raise ReaderNotFoundError(f"no reader with index {idx}; readers are {listing}")
    exact = [r for r in readers if r.name == spec]
    if exact:
        return exact[0]
    matches = [r for r in readers if spec.lower() in r.name.lower()]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise ReaderNotFoundError(f"no reader matches {spec!r}; readers are {listing}")
    names = "; ".join(f"{r.index}: {r.name}" for r in matches)
    raise AmbiguousReaderError(
        f"{spec!r} matches {len(matches)} readers ({names}); give an index or more of the name"
    )


class PcscTransport(Transport):
    """One card in one PC/SC reader.

    ``power_off``: ``disconnect`` powers the card down (``SCARD_UNPOWER_CARD``) instead of
    leaving it powered (``SCARD_LEAVE_CARD``). A card left powered keeps its security state
    (an external authentication, a verified PIN) for whoever connects next, in any process;
    powered down, the next connection starts from the card's reset state, as a simulated
    card does after ``disconnect``.
    """

    def __init__(self, reader: str | None = None, *, exclusive: bool = False,
                 reserved: Mapping[str, str] | None = None, power_off: bool = False) -> None:
        self._spec = reader
        self._reserved = dict(reserved or {})
        self._share_exclusive = exclusive
        self._power_off = power_off
        self._ctx: PcscContext | None = None
        self._card: Any = None
        self._proto: int = 0
        self._atr = b""
        self._in_transaction = 0
        self.description = reader or ""

    # -- connection -------------------------------------------------------------------
    def connect(self) -> None:
        if self._card is not None:
            return
        self._ctx = ctx = PcscContext()
        try:
            info = choose_reader(ctx.reader_states(), self._spec, self._reserved)
            self.description = info.name
            s = ctx.scard
            share = s.SCARD_SHARE_EXCLUSIVE if self._share_exclusive else s.SCARD_SHARE_SHARED
            rv, card, proto = s.SCardConnect(
                ctx.handle, info.name, share, s.SCARD_PROTOCOL_T0 | s.SCARD_PROTOCOL_T1
            )
            _raise_for(s, rv, info.name)
            self._card, self._proto = card, proto
            self._refresh_atr()
        except BaseException:
            self.disconnect()
            raise

    def _refresh_atr(self) -> None:
        if self._ctx is None:
            raise TransportError(f"{self.description or 'reader'}: not connected")
        s = self._ctx.scard
        rv, _reader, _state, _proto, atr = s.SCardStatus(self._card)
        _raise_for(s, rv, self.description)
        self._atr = bytes(atr)

    @property
    def atr(self) -> bytes:
        if self._card is None:
            raise NoCardError("not connected to a card")
        return self._atr

    @property
    def protocol(self) -> str:
        s = _scard()
        return "T=0" if self._proto == s.SCARD_PROTOCOL_T0 else "T=1"

    def transmit(self, command: bytes) -> bytes:
        if self._card is None or self._ctx is None:
            raise NoCardError("not connected to a card")
        s = self._ctx.scard
        rv, response = s.SCardTransmit(self._card, self._proto, list(command))
        _raise_for(s, rv, self.description, in_command=True)
        if len(response) < 2:
            # Seen when the link to the card breaks mid-command (pcscd reports success with
            # no bytes): a card always answers at least SW1 SW2.
            raise CardRemovedError(
                f"{self.description}: no status word came back (card removed or link lost "
                "during the command); its effect on the card is unknown"
            )
        return bytes(response)

    def control(self, code: int, data: bytes = b"") -> bytes:
        """SCardControl: a reader command (PC/SC part 10 features, e.g. the PIN pad).

        ``code`` is the part 10 control code (``SCARD_CTL_CODE(n)`` or a value the reader
        announced in its feature list).
        """
        if self._card is None or self._ctx is None:
            raise NoCardError("not connected to a card")
        s = self._ctx.scard
        rv, response = s.SCardControl(self._card, code, list(data))
        _raise_for(s, rv, self.description, in_command=True)
        return bytes(response)

    def reset(self) -> bytes:
        if self._card is None or self._ctx is None:
            raise NoCardError("not connected to a card")
        s = self._ctx.scard
        share = s.SCARD_SHARE_EXCLUSIVE if self._share_exclusive else s.SCARD_SHARE_SHARED
        rv, self._proto = s.SCardReconnect(
            self._card, share, s.SCARD_PROTOCOL_T0 | s.SCARD_PROTOCOL_T1, s.SCARD_RESET_CARD
        )
        _raise_for(s, rv, self.description, in_command=True)
        self._refresh_atr()
        return self._atr

    def disconnect(self) -> None:
        if self._ctx is None:
            return
        s = self._ctx.scard
        if self._card is not None:
            s.SCardDisconnect(self._card,
                              s.SCARD_UNPOWER_CARD if self._power_off else s.SCARD_LEAVE_CARD)
            self._card = None
        self._ctx.close()
        self._ctx = None

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """A PC/SC transaction: other programs wait until the block ends (re-entrant)."""
        if self._card is None or self._ctx is None:
            raise NoCardError("not connected to a card")
        s = self._ctx.scard
        if self._in_transaction == 0:
            rv = s.SCardBeginTransaction(self._card)
            _raise_for(s, rv, self.description, in_command=True)
        self._in_transaction += 1
        try:
            yield
        finally:
            self._in_transaction -= 1
            if self._in_transaction == 0 and self._card is not None:
                s.SCardEndTransaction(self._card, s.SCARD_LEAVE_CARD)


def list_readers() -> list[ReaderInfo]:
    """Every reader pcscd knows, with card presence and ATR."""
    ctx = PcscContext()
    try:
        return ctx.reader_states()
    finally:
        ctx.close()
