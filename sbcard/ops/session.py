"""A card session: the transport stack every operation runs on, over a link it is given.

``open_channel`` builds, bottom up: the link (from the caller's factory) → trace layer (if
asked; it sits on the wire so it sees every GET RESPONSE) → T=0 layer (unless raw) →
``ApduChannel``. The channel is the session object handed to operations; there is no global
card state. Which link (a PC/SC reader, the simulator, a replayed dump) is chosen above the
operations, in ``sbcard.compose``: operations work on any link.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sbcard.apdu.atr import Atr
from sbcard.apdu.channel import ApduChannel
from sbcard.apdu.t0 import T0Layer
from sbcard.apdu.trace import TraceLayer, TraceRecord
from sbcard.transport.base import Transport

#: Makes the bare link of one session (not yet connected).
LinkFactory = Callable[[], Transport]


@dataclass(frozen=True)
class StackOptions:
    """How the layers above the link are stacked."""

    raw: bool = False                  # no T=0 help: the user sees 61xx/6Cxx themselves
    trace: Callable[[str], None] | None = None
    on_record: Callable[[TraceRecord], None] | None = None
    #: Wraps the bare link before tracing and T=0 help (e.g. ``sbcard --dump``'s recorder).
    wrap_link: Callable[[Transport], Transport] | None = None
    #: Traces mask the holder's ID number and name (EF06) unless the user said --no-redact.
    redact_holder: bool = True


def link_protocol(atr: bytes) -> str:
    """The protocol a reader runs with this card: T=1 when the ATR offers it (a contactless
    card's synthesised ATR, ISO 7816-3 TDi), else T=0 — what every ``3B 6D 00 00`` social
    security ATR says (part 2 §8.3), so the in-process link is T=0 for them."""
    return "T=1" if 1 in Atr.parse(atr).protocols else "T=0"


def stack(link: Transport, options: StackOptions) -> Transport:
    """Trace and T=0 layers on ``link`` as ``options`` ask (``wrap_link`` is not applied)."""
    transport = link
    if options.trace is not None or options.on_record is not None:
        transport = TraceLayer(transport, options.trace, options.on_record,
                               redact_holder=options.redact_holder)
    if not options.raw:
        transport = T0Layer(transport)
    return transport


@contextmanager
def open_channel(make_link: LinkFactory, options: StackOptions | None = None
                 ) -> Iterator[ApduChannel]:
    """A connected channel over a new link from ``make_link``; disconnected afterwards."""
    options = options or StackOptions()
    link = make_link()
    if options.wrap_link is not None:
        link = options.wrap_link(link)
    transport = stack(link, options)
    transport.connect()
    try:
        yield ApduChannel(transport)
    finally:
        transport.disconnect()
