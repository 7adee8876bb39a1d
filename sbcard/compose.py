"""Composition: the one place that chooses the card link and the key source.

Operations (``sbcard.ops``) work on any link; they never name the simulator. What the user
points at — a PC/SC reader, an in-process simulated card (``--sim PERSONA``), a replayed
session dump (``--sim FILE.dump``), a key file, a PSAM (real or simulated) or an HSM — is
turned into objects here, and the CLI, the pytest plugin (``sbcard.testing``) and the
national reader interface (``sbcard.national``) all build the very same stack through it:

* :func:`make_link` / :func:`open_session`: link → ``--dump`` recorder → trace → T=0 →
  ``ApduChannel`` (``sbcard.ops.session`` stacks the layers);
* :func:`open_key_source`: ``--keys`` / ``--psam`` / ``--hsm-command`` / ``--hsm-stdio``;
* :class:`Workbench`: what one run shares (trace sink, dump files, the PSAM's reader kept
  apart from the card's), with ``session()`` and ``key_source()`` context managers;
* :class:`SimSlot`: simulated blank cards for in-process personalisation batches.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from sbcard.apdu.channel import ApduChannel
from sbcard.apdu.dump import DumpLayer, DumpWriter, is_dump_file
from sbcard.apdu.t0 import T0Layer
from sbcard.apdu.trace import TraceRecord, format_step
from sbcard.card.profiles import CardProfile, profile_for
from sbcard.errors import BadInputError, SbcardError, TransportError
from sbcard.keys.base import KeySource
from sbcard.keys.keyfile import KeyFile
from sbcard.ops.readers import reader_name, wait_for_card
from sbcard.ops.session import StackOptions, link_protocol, stack
from sbcard.transport.base import Transport

if TYPE_CHECKING:
    from sbcard.sim.card_os import SimCard

# The simulator, the PC/SC stack and the key sources are imported where they are chosen
# (below): a command that reads a card in a reader loads no simulator and no SM2/X.509 code,
# and one on the simulator loads no PC/SC library. This module is a declared lazy-import
# boundary of tests/test_layers.py for that reason.

Say = Callable[[str], None]

#: The warning ``--keys test`` gives: the public keys open only simulated and test cards.
TEST_KEYS_WARNING = ("WARNING: using the public TEST keys: only simulated and test cards "
                     "accept them")


# --------------------------------------------------------------------------- the card link


@dataclass(frozen=True)
class SessionOptions(StackOptions):
    """Which card (reader or simulator) and how the session's stack is built."""

    reader: str | None = None          # index, name or fragment; None → SBCARD_READER / auto
    sim: str | None = None             # persona name or file, or a session dump to replay
    exclusive: bool = False            # open the reader in exclusive mode
    #: Seconds to wait for a card to be inserted (PC/SC only; 0: it must be there now).
    wait: float = 0.0
    on_wait: Say | None = None         # told once that we are waiting
    #: Readers that hold something else (the PSAM's → "the PSAM"): never the card's.
    reserved: Mapping[str, str] | None = None
    #: Power the card down when the session ends (PC/SC ``SCARD_UNPOWER_CARD``), so no
    #: security state outlives it; the simulated card is always powered off.
    power_off: bool = False


def make_link(options: SessionOptions) -> Transport:
    """The bare link ``options`` name: the simulated card, a replayed dump, or a reader."""
    if options.sim is not None:
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
                         reserved=options.reserved, power_off=options.power_off)


@dataclass(frozen=True)
class CardSession:
    """One connected card session that its owner closes: the bare link (a PIN pad's
    control channel is on it), the stacked transport and the channel operations use."""

    link: Transport
    transport: Transport
    channel: ApduChannel

    def close(self) -> None:
        self.transport.disconnect()


def connect_session(options: SessionOptions, link: Transport | None = None) -> CardSession:
    """Connect ``link`` (by default a new one, :func:`make_link`) with the stack ``options``
    ask for. :func:`open_session` is the scoped form; the national driver keeps a session
    powered between HSM steps and reuses one simulated card across calls (``link``)."""
    bare = link if link is not None else make_link(options)
    wrapped = options.wrap_link(bare) if options.wrap_link is not None else bare
    transport = stack(wrapped, options)
    transport.connect()
    return CardSession(bare, transport, ApduChannel(transport))


@contextmanager
def open_session(options: SessionOptions) -> Iterator[ApduChannel]:
    """A connected card session as ``options`` say (waiting for the card if asked)."""
    if options.wait > 0 and options.sim is None:
        wait_for_card(options.reader, options.wait, say=options.on_wait,
                      reserved=options.reserved)
    session = connect_session(options)
    try:
        yield session.channel
    finally:
        session.close()


# --------------------------------------------------------------------------- key sources


@dataclass(frozen=True)
class KeySourceOptions:
    keys: str | None = None            # key file path, or "test"
    psam: str | None = None            # PSAM reader (index/name/fragment), "sim", "sim:NAME"
    hsm_command: str | None = None     # program answering HSM requests
    hsm_stdio: bool = False            # HSM step mode by hand over stderr/stdin
    #: How the PSAM's own link is traced and recorded (``trace``, ``wrap_link``), the way
    #: the user card's is: the PSAM is a second card session.
    psam_session: SessionOptions = field(default_factory=SessionOptions)
    #: Card key version (``--key-version``); None = the profile's ``key_version``, if any.
    key_version: int | None = None
    #: How ``hsm_command`` is spoken to: sbcard's ``json`` steps, or the ``national`` strings
    #: (one run per request: two lines on stdin, the hex answer on stdout).
    hsm_protocol: str = "json"

    @property
    def given(self) -> list[str]:
        return [n for n, v in (("--keys", self.keys), ("--psam", self.psam),
                               ("--hsm-command", self.hsm_command),
                               ("--hsm-stdio", self.hsm_stdio)) if v]


def open_key_source(options: KeySourceOptions, profile: CardProfile | None = None,
                    warn: Say | None = None) -> KeySource | None:
    """The one key source ``options`` name (None if none; BadInputError for two), set to the
    chosen card key version."""
    source = _open_key_source(options, profile, warn)
    version = options.key_version
    if version is None and profile is not None:
        version = profile.key_version
    if source is None or version is None:
        return source
    if not 0 <= version <= 0xFF:
        raise BadInputError(f"key version must be 0..255, got {version}")
    if isinstance(source, KeyFile):          # the built-in test file is shared: a copy
        source = KeyFile(source.roots, source.name)
    source.key_version = version
    return source


def _open_key_source(options: KeySourceOptions, profile: CardProfile | None,
                     warn: Say | None) -> KeySource | None:
    given = options.given
    if len(given) > 1:
        raise BadInputError(f"give one key source, not {' and '.join(given)}")
    if not given:
        return None
    if options.keys is not None:
        if options.keys == "test":
            from sbcard.keys.builtin import builtin_key_file

            (warn or _noop)(TEST_KEYS_WARNING)
            return builtin_key_file()
        return KeyFile.load(options.keys, warn=warn)
    if options.psam is not None:
        if options.psam == "sim" or options.psam.startswith("sim:"):
            # "sim" = the default simulated PSAM; "sim:NAME" = the PSAM persona NAME
            name = options.psam.partition(":")[2] or "default"
            return open_psam(replace(options.psam_session, sim=f"psam:{name}"), profile)
        return open_psam(replace(options.psam_session, reader=options.psam), profile)
    from sbcard.keys.hsm import (
        HsmStepSource,
        NationalHsmSource,
        hsm_address_map,
        stdio_exchange,
    )
    from sbcard.keys.hsm_command import command_exchange, national_command

    addresses = hsm_address_map(profile or profile_for())
    if options.hsm_protocol not in ("national", "json"):
        raise BadInputError(f"HSM protocol is 'national' or 'json', not "
                            f"{options.hsm_protocol!r}")
    if options.hsm_protocol == "national":
        if not options.hsm_command:      # the national strings are one program run each
            raise BadInputError("the national HSM protocol needs --hsm-command (--hsm-stdio "
                                "speaks sbcard's JSON requests)")
        return NationalHsmSource(national_command(options.hsm_command), addresses)
    exchange = (command_exchange(options.hsm_command) if options.hsm_command
                else stdio_exchange())
    return HsmStepSource(exchange, addresses)


def _noop(_message: str) -> None:
    pass


def open_psam(options: SessionOptions, profile: CardProfile | str | None = None) -> KeySource:
    """A PSAM key source on ``options``' reader, or the simulated PSAM when ``options.sim``.

    ``sim`` names a PSAM persona (``"default"`` or ``"psam:default"``, or a file). The usual
    stack (trace, T=0 help) is put on the link. The PSAM is checked at once (its terminal
    number is read), so a wrong reader fails here rather than in an authentication.
    """
    from sbcard.keys.psam import PsamKeySource

    if options.sim is not None:
        from sbcard.sim.psam import load_psam_persona
        from sbcard.transport.simulated import SimulatedTransport

        persona = load_psam_persona(options.sim)
        link: Transport = SimulatedTransport(
            persona.build(), f"simulated PSAM: {persona.name}",
            protocol="T=0" if persona.t0_get_response else "T=1")
    else:
        link = make_link(options)
    bare = link                                      # the PC/SC link knows its reader
    if options.wrap_link is not None:
        link = options.wrap_link(link)
    transport = stack(link, options)
    transport.connect()
    source = PsamKeySource(ApduChannel(transport), profile,
                           name=f"PSAM in {transport.description or 'reader'}",
                           reader=None if options.sim is not None else bare.description,
                           on_close=transport.disconnect)
    try:
        source.terminal_number  # noqa: B018 - the check that this is a PSAM
    except SbcardError:
        source.close()
        raise
    return source


# --------------------------------------------------------------------------- one run


@dataclass
class Workbench:
    """What one run (a CLI invocation, a driver, a test) opens its sessions with.

    The card: ``reader`` or ``sim``. The key source: at most one of ``keys``, ``psam``,
    ``hsm_command``, ``hsm_stdio``. ``trace`` hears every APDU line (the PSAM's prefixed
    ``PSAM``); ``dump`` records every session of the run into one file (the PSAM's into
    ``FILE.psam``); ``steps`` hears one short line per exchange (``READ RECORD → 9000``;
    not with ``trace``); ``say`` hears notices (waiting for a card); ``warn`` hears warnings
    (the TEST keys, a key file's permissions).
    """

    reader: str | None = None
    sim: str | None = None
    keys: str | None = None
    psam: str | None = None
    hsm_command: str | None = None
    hsm_stdio: bool = False
    hsm_protocol: str = "json"          # how hsm_command is spoken to: json | national
    key_version: int | None = None      # card key version (Lc 11 byte); None: the profile's
    trace: Say | None = None
    steps: Say | None = None
    dump: Path | None = None            # record every session of this run
    wait: float = 0.0                   # seconds to wait for the card to be inserted
    #: The simulated card's memory kept between runs (``--sim-state``; with ``sim`` only).
    sim_state: Path | None = None
    #: Traces and dumps mask the holder's ID number and name (EF06) unless False.
    redact_holder: bool = True
    say: Say = _noop
    warn: Say = _noop
    #: Readers holding something else this run (the PSAM's): never taken for the card's.
    reserved: dict[str, str] = field(default_factory=dict, repr=False)
    _dump_sessions: dict[Path, int] = field(default_factory=dict, repr=False)

    @property
    def psam_dump(self) -> Path | None:
        """Where the PSAM's exchanges go with ``dump``: ``FILE.psam`` beside it."""
        return None if self.dump is None else self.dump.with_name(self.dump.name + ".psam")

    def _recorder(self, path: Path | None
                  ) -> tuple[DumpWriter | None, Callable[[Transport], Transport] | None]:
        """(writer, link wrapper) recording a session into ``path``; (None, None) without."""
        if path is None:
            return None, None
        # The first session of the run starts the file; later ones append to it.
        seen = self._dump_sessions.get(path, 0)
        writer = DumpWriter(path, append=seen > 0)
        self._dump_sessions[path] = seen + 1
        return writer, lambda link: DumpLayer(link, writer, redact_holder=self.redact_holder)

    def _trace_sink(self, prefix: str = "") -> Say | None:
        sink = self.trace
        if sink is None:
            return None
        if not prefix:
            return sink
        return lambda text: sink("\n".join(prefix + line for line in text.splitlines()))

    def _step_sink(self, prefix: str = "") -> Callable[[TraceRecord], None] | None:
        sink = self.steps
        if sink is None or self.trace is not None:
            return None
        return lambda record: sink(prefix + format_step(record))

    @contextmanager
    def key_source(self, profile: CardProfile | None = None) -> Iterator[KeySource | None]:
        """The key source named (None if none); closed afterwards.

        A PSAM is a second card: its APDUs are traced prefixed ``PSAM`` and recorded in
        ``FILE.psam``, masked the same way.
        """
        writer, wrap = self._recorder(self.psam_dump if self.psam else None)
        psam_session = SessionOptions(trace=self._trace_sink("PSAM "), wrap_link=wrap,
                                      on_record=self._step_sink("PSAM "))
        try:
            source = open_key_source(
                KeySourceOptions(self.keys, self.psam, self.hsm_command, self.hsm_stdio,
                                 psam_session=psam_session, key_version=self.key_version,
                                 hsm_protocol=self.hsm_protocol),
                profile, warn=self.warn)
            psam_reader = getattr(source, "reader", None)
            if psam_reader:
                self.reserved[psam_reader] = "the PSAM (--psam)"
            try:
                yield source
            finally:
                if source is not None:
                    source.close()
                if psam_reader:
                    self.reserved.pop(psam_reader, None)
        finally:
            if writer is not None:
                writer.close()

    @contextmanager
    def session(self, *, raw: bool = False) -> Iterator[ApduChannel]:
        """A session on the card (T=0 help unless ``raw``), recorded and traced as asked."""
        writer, wrap = self._recorder(self.dump)
        reserved = dict(self.reserved)
        if (self.psam is not None and self.psam != "sim" and not self.psam.startswith("sim:")
                and self.sim is None and not reserved):
            # A command that does not use the PSAM still must not take its reader. If the
            # PSAM's reader is not there now, there is nothing to keep apart.
            with contextlib.suppress(TransportError):
                reserved[reader_name(self.psam)] = "the PSAM (--psam)"
        saved: list[SimCard] = []
        if self.sim_state is not None:
            wrap = self._with_sim_state(wrap, saved)
        options = SessionOptions(reader=self.reader, sim=self.sim, raw=raw,
                                 trace=self._trace_sink(), wrap_link=wrap, wait=self.wait,
                                 on_record=self._step_sink(), on_wait=self.say,
                                 reserved=reserved, redact_holder=self.redact_holder)
        try:
            with open_session(options) as channel:
                yield channel
        finally:
            if writer is not None:
                writer.close()
            if saved and self.sim_state is not None:   # also after a failure: a wrong PIN
                from sbcard.sim import state as sim_state

                sim_state.save(self.sim_state, sim_state.capture(saved[0], str(self.sim)))

    def _with_sim_state(self, wrap: Callable[[Transport], Transport] | None,
                        saved: list[SimCard]) -> Callable[[Transport], Transport]:
        """A link wrapper that gives the simulated card its saved memory (``sim_state``)."""
        from sbcard.sim import state as sim_state
        from sbcard.sim.card_os import SimCard

        state_file = self.sim_state
        if self.sim is None or state_file is None:
            raise BadInputError("a simulated card's saved state goes with a simulated card")

        def restore(link: Transport) -> Transport:
            card = getattr(link, "card", None)
            if not isinstance(card, SimCard):
                raise BadInputError(f"{self.sim}: not a simulated card (a dump replays, it "
                                    "keeps no state)")
            previous = sim_state.load(state_file, str(self.sim))
            if previous is not None:
                sim_state.restore(card, previous)
            saved.append(card)
            return link if wrap is None else wrap(link)

        return restore


# --------------------------------------------------------------------------- batches


class SimSlot:
    """Simulated blank cards, one after another (serials counting up): in-process batches.

    A ``sbcard.ops.personalise.CardSlot``.
    """

    def __init__(self, persona: str, count: int, name: str = "sim", first_serial: int = 1,
                 on_card: Callable[[object], None] | None = None) -> None:
        from sbcard.sim.persona import load_persona

        self.name = name
        self._persona = load_persona(persona)
        self._left = count
        self._serial = first_serial
        self._on_card = on_card
        self.cards: list = []

    def next_card(self, stop: threading.Event) -> ApduChannel | None:
        from sbcard.sim.persona import build_atr
        from sbcard.transport.simulated import SimulatedTransport

        if stop.is_set() or self._left <= 0:
            return None
        self._left -= 1
        serial = f"{self._serial:08X}"
        self._serial += 1
        card_data = {**self._persona.card, "serial": serial}
        persona = replace(self._persona, card=card_data, atr=build_atr(card_data, {}))
        card = persona.build_card()
        self.cards.append(card)
        if self._on_card:
            self._on_card(card)
        t = T0Layer(SimulatedTransport(card, f"{self.name} card {serial}"))
        t.connect()
        return ApduChannel(t)

    def release(self, channel: ApduChannel, *, finished: bool, wait: bool = True) -> None:
        channel.transport.disconnect()
