"""Opening a card session: the transport stack every operation runs on.

``open_session`` builds, bottom up: the link (PC/SC reader or in-process simulator) → trace
layer (if asked; it sits on the wire so it sees every GET RESPONSE) → T=0 layer (unless raw)
→ ``ApduChannel``. The channel is the session object handed to operations; there is no
global card state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from sbcard.apdu.channel import ApduChannel
from sbcard.apdu.t0 import T0Layer
from sbcard.apdu.trace import TraceLayer, TraceRecord
from sbcard.transport.base import Transport


@dataclass(frozen=True)
class SessionOptions:
    reader: str | None = None          # index, name or fragment; None → SBCARD_READER / auto
    sim: str | None = None             # persona name or file: use the in-process simulator
    raw: bool = False                  # no T=0 help: the user sees 61xx/6Cxx themselves
    exclusive: bool = False            # open the reader in exclusive mode
    trace: Callable[[str], None] | None = None
    on_record: Callable[[TraceRecord], None] | None = None
    #: Wraps the bare link before tracing and T=0 help (e.g. ``sbcard --dump``'s recorder).
    wrap_link: Callable[[Transport], Transport] | None = None
    #: Seconds to wait for a card to be inserted (PC/SC only; 0: it must be there now).
    wait: float = 0.0
    on_wait: Callable[[str], None] | None = None     # told once that we are waiting
    #: Readers that hold something else (the PSAM's → "the PSAM"): never the card's.
    reserved: Mapping[str, str] | None = None
    #: Traces mask the holder's ID number and name (EF06) unless the user said --no-redact.
    redact_holder: bool = True


def link_protocol(atr: bytes) -> str:
    """The protocol a reader runs with this card: T=1 when the ATR offers it (a contactless
    card's synthesised ATR, ISO 7816-3 TDi), else T=0 — what every ``3B 6D 00 00`` social
    security ATR says (part 2 §8.3), so the in-process link is T=0 for them."""
    from sbcard.apdu.atr import Atr

    return "T=1" if 1 in Atr.parse(atr).protocols else "T=0"


def make_link(options: SessionOptions) -> Transport:
    if options.sim is not None:
        from sbcard.apdu.dump import is_dump_file
        from sbcard.sim.persona import load_persona
        from sbcard.transport.simulated import SimulatedTransport

        if is_dump_file(options.sim):          # a session dump: replay it as the card
            from sbcard.sim.replay import ReplayCard

            replay = ReplayCard.load(options.sim)
            return SimulatedTransport(replay, f"replay: {options.sim}", protocol=replay.protocol)
        persona = load_persona(options.sim)
        return SimulatedTransport(persona.build_card(), f"simulator: {persona.name}",
                                  protocol=link_protocol(persona.atr))
    from sbcard.transport.pcsc import PcscTransport

    return PcscTransport(options.reader, exclusive=options.exclusive,
                         reserved=options.reserved)


def stack(link: Transport, options: SessionOptions) -> Transport:
    transport = link
    if options.trace is not None or options.on_record is not None:
        transport = TraceLayer(transport, options.trace, options.on_record,
                               redact_holder=options.redact_holder)
    if not options.raw:
        transport = T0Layer(transport)
    return transport


@contextmanager
def open_session(options: SessionOptions) -> Iterator[ApduChannel]:
    if options.wait > 0 and options.sim is None:
        from sbcard.ops.readers import wait_for_card

        wait_for_card(options.reader, options.wait, say=options.on_wait,
                      reserved=options.reserved)
    link = make_link(options)
    if options.wrap_link is not None:
        link = options.wrap_link(link)
    transport = stack(link, options)
    transport.connect()
    try:
        yield ApduChannel(transport)
    finally:
        transport.disconnect()
