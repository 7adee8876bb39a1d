"""The cards the fixtures hand to tests: in-process (``SimulatedCard``) and in pcscd
(``PcscdCard``). Both carry the ``SimCard``, its ``Persona``, an ``ApduLog`` of what the card
saw and a ``FaultInjector`` on it."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sbcard.apdu.channel import ApduChannel
from sbcard.apdu.dump import DumpLayer, DumpWriter
from sbcard.apdu.t0 import T0Layer
from sbcard.compose import SessionOptions, open_session
from sbcard.hexutil import parse_hex
from sbcard.sim.faults import FaultInjector
from sbcard.sim.persona import Persona
from sbcard.sim.replay import ReplayCard
from sbcard.sim.vpcd import VpcdServer
from sbcard.testing.apdu_log import ApduLog, RecordingCard
from sbcard.testing.pcscd import CARD_SLOT, PcscdService, serve_quietly, slot_lock
from sbcard.transport.pcsc import PcscTransport
from sbcard.transport.simulated import SimulatedTransport


class SimulatedCard:
    """A simulated card in-process, connected: ``channel`` is ready for ``sbcard.ops``.

    ``transport`` is the bare link (a ``SimulatedTransport``); ``channel`` adds the T=0 layer
    like every sbcard session does; ``raw_channel`` has no T=0 help (you see 61xx/6Cxx).
    """

    def __init__(self, persona: Persona, log: ApduLog | None = None) -> None:
        self.persona: Persona | None = persona
        self.card: Any = persona.build_card()
        self.faults: FaultInjector | None = FaultInjector(self.card)
        self._connect(log, f"simulator: {persona.name}",
                      "T=0" if persona.behaviour.t0_get_response else "T=1")

    @classmethod
    def from_dump(cls, path: str | os.PathLike[str], log: ApduLog | None = None,
                  **replay_options: Any) -> SimulatedCard:
        """A recorded session (``sbcard --dump``) as the card: a ``ReplayCard`` in-process.

        ``persona`` and ``faults`` are None (a replay answers what was recorded);
        ``card.misses`` lists commands the dump did not hold.
        """
        self = cls.__new__(cls)
        self.persona = None
        self.card = ReplayCard.load(path, **replay_options)
        self.faults = None
        self._connect(log, f"replay: {path}", self.card.protocol)
        return self

    def _connect(self, log: ApduLog | None, description: str, protocol: str) -> None:
        self.log = log if log is not None else ApduLog()
        self.transport = SimulatedTransport(RecordingCard(self.card, self.log), description,
                                            protocol=protocol)
        self.transport.connect()
        self.channel = ApduChannel(T0Layer(self.transport))
        self.raw_channel = ApduChannel(self.transport)

    @contextmanager
    def recording(self, path: str | os.PathLike[str], *,
                  redact_holder: bool = False) -> Iterator[ApduChannel]:
        """A channel to this card whose exchanges go to a dump at ``path``, in-process.

        The dump is the one ``sbcard --dump FILE`` writes (header, masked exchanges with
        timing), so ``sbcard --sim FILE``, ``sbcard sim replay FILE`` and
        ``SimulatedCard.from_dump(FILE)`` replay it. The card is simulated and its holder
        synthetic, so EF06 is kept (the replay reads it back); ``redact_holder=True`` masks
        it as ``sbcard --dump`` does by default.
        """
        writer = DumpWriter(path)
        layer = DumpLayer(self.transport, writer, redact_holder=redact_holder)
        writer.header(reader=self.transport.description, atr=self.transport.atr,
                      protocol=self.transport.protocol)
        try:
            yield ApduChannel(T0Layer(layer))
        finally:
            writer.close()

    @property
    def atr(self) -> bytes:
        return self.card.atr

    def transmit(self, command: bytes | str) -> bytes:
        """One command through the T=0 layer (hex text or bytes); response data ‖ SW."""
        raw = parse_hex(command, "command") if isinstance(command, str) else command
        return self.channel.transport.transmit(raw)

    def reconnect(self) -> bytes:
        """Power the card again (after a tear, or to clear its security state)."""
        self.transport.disconnect()
        self.transport.connect()
        return self.transport.atr

    def close(self) -> None:
        self.transport.disconnect()


class PcscdCard:
    """A simulated card served into pcscd through vpcd; ``reader`` is where it sits.

    ``sbcard(*args)`` runs the ``sbcard`` command against it in a subprocess (with the
    reader chosen and the environment that reaches this pcscd); ``transport()`` and
    ``session()`` talk to it from this process through PC/SC.
    """

    def __init__(self, service: PcscdService, persona: Persona | str | os.PathLike[str],
                 log: ApduLog | None = None, slot: int = CARD_SLOT) -> None:
        self.service = service
        self.card: Any
        if isinstance(persona, Persona):
            self.persona: Persona | None = persona
            self.card = persona.build_card()
            self.faults: FaultInjector | None = FaultInjector(self.card)
        else:                                    # a session dump (sbcard --dump): replay it
            self.persona, self.faults = None, None
            self.card = ReplayCard.load(persona)
        self.log = log if log is not None else ApduLog()
        self.slot = slot
        self.port = service.port(slot)
        self.reader = service.reader(slot)
        self.events: list[str] = []
        self.server: Any = None
        self._thread: threading.Thread | None = None
        self._slot: contextlib.ExitStack | None = None

    @property
    def atr(self) -> bytes:
        return self.card.atr

    @property
    def served(self) -> bool:
        return self.server is not None

    # -- in and out of the reader ---------------------------------------------------------
    def insert(self, timeout: float = 30.0) -> None:
        """Serve the card into the reader and wait until pcscd lists it."""
        if self.server is not None:
            return
        slot = contextlib.ExitStack()
        slot.enter_context(slot_lock(self.port, on_wait=lambda m: print(m, file=sys.stderr)))
        try:
            self.server = VpcdServer(RecordingCard(self.card, self.log), port=self.port,
                                     on_event=self.events.append)
            self._thread = threading.Thread(target=serve_quietly, args=(self.server, timeout),
                                            daemon=True, name=f"vpcd {self.reader}")
            self._thread.start()
            self.wait_present(True, timeout)
        except BaseException:
            if self.server is not None:
                self.server.stop()
            if self._thread is not None:
                self._thread.join(5)
            self.server = self._thread = None
            slot.close()
            raise
        self._slot = slot

    def remove(self, timeout: float = 30.0) -> None:
        """Take the card out of the reader and wait until pcscd notices."""
        server, thread, slot = self.server, self._thread, self._slot
        self.server = self._thread = self._slot = None
        if server is None:
            return
        try:
            server.stop()
            if thread is not None:
                thread.join(5)
            self.wait_present(False, timeout)
        finally:
            if slot is not None:
                slot.close()

    def wait_reinserted(self, timeout: float = 30.0) -> None:
        """After a tear: wait until the card is back and pcscd has powered it again.

        A torn card drops its vpcd link (pcscd sees it leave); the server reconnects half a
        second later, like a card pushed back in, and pcscd powers it on.
        """
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            events = list(self.events)
            last_tear = max((i for i, e in enumerate(events) if e == "torn"), default=-1)
            after = events[last_tear + 1:]
            if "connected" in after and "power on" in after[after.index("connected"):]:
                self.wait_present(True, max(0.1, deadline - time.monotonic()))
                return
            time.sleep(0.02)
        raise AssertionError(f"{self.reader}: the card did not come back after the tear "
                             f"(server events {self.events[-6:]})")

    def wait_present(self, present: bool = True, timeout: float = 30.0) -> None:
        """Wait until pcscd lists this card in the reader (or, ``present=False``, no card)."""
        self.service.wait_card(self.slot, present, timeout, atr=self.card.atr)

    # -- talking to it --------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        return self.service.env()

    def sbcard(self, *args: str, stdin: str | None = None, timeout: float = 60.0,
               reader: bool = True) -> subprocess.CompletedProcess[str]:
        """``sbcard [-r READER] ARGS…`` in a subprocess; stdout/stderr captured as text."""
        cmd = [sys.executable, "-m", "sbcard", *(("-r", self.reader) if reader else ()), *args]
        env = self.env()
        env.pop("SBCARD_READER", None)
        return subprocess.run(cmd, input=stdin, capture_output=True, text=True, env=env,
                              timeout=timeout)

    def _need_in_process(self) -> None:
        if not self.service.in_process:
            import pytest

            reason = (f"this process's PC/SC client is bound to another pcscd than the "
                      f"{self.service.mode} one ({self.service.note}); use card.sbcard(…) "
                      "or run pytest with --sbcard-pcscd=isolated")
            if self.service.required:
                pytest.fail(reason)
            pytest.skip(reason)

    def transport(self, *, exclusive: bool = False) -> Any:
        """A connected ``PcscTransport`` to this reader (disconnect it when done)."""
        self._need_in_process()
        t = PcscTransport(self.reader, exclusive=exclusive)
        t.connect()
        return t

    @contextmanager
    def session(self, *, raw: bool = False) -> Iterator[ApduChannel]:
        """An sbcard session (T=0 help unless ``raw``) on this reader, as the CLI opens it."""
        self._need_in_process()
        with open_session(SessionOptions(reader=self.reader, raw=raw)) as channel:
            yield channel
