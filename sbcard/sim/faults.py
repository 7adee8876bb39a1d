"""Fault injection on a simulated card, built on ``SimCard.command_hooks``.

A hook runs before the card's normal dispatch and sees every command the card receives
(GET RESPONSE rounds too). Faults made here are one such hook each:

* ``tear_at(n)`` — the n-th command from now tears the card (power lost mid-command): the
  in-process transport raises ``CardRemovedError``; through pcscd the card leaves the reader;
* ``tear_on(match | ins=…)`` — the first (``nth``) matching command tears the card;
* ``answer(sw, match | ins=…)`` — matching commands get this status word (and ``data``);
* ``delay(seconds, match | ins=…)`` — matching commands are answered late (normally).

Commands are matched on the raw bytes the card received (nothing is masked at the card):
``match`` is a hex prefix (spaces ignored, ``?`` any digit) and ``cla``/``ins``/``p1``/``p2``
are exact bytes. ``times`` bounds how often a fault fires (None = every time).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sbcard.hexutil import hex_mask_matches, parse_hex
from sbcard.sim.extras import FaultsPersona
from sbcard.transport.base import CardTornError


@dataclass(frozen=True)
class CommandMatch:
    prefix: str | None = None
    cla: int | None = None
    ins: int | None = None
    p1: int | None = None
    p2: int | None = None

    def __call__(self, raw: bytes) -> bool:
        if self.prefix is not None:
            text = raw.hex().upper()
            pattern = "".join(self.prefix.split()).upper()
            if not hex_mask_matches(pattern, text, prefix=True):
                return False
        for offset, want in ((0, self.cla), (1, self.ins), (2, self.p1), (3, self.p2)):
            if want is not None and (len(raw) <= offset or raw[offset] != want):
                return False
        return True

    def describe(self) -> str:
        parts = [f"prefix {''.join(self.prefix.split()).upper()}"] if self.prefix else []
        parts += [f"{n}={v:02X}" for n, v in (("CLA", self.cla), ("INS", self.ins),
                                               ("P1", self.p1), ("P2", self.p2))
                  if v is not None]
        return " ".join(parts) or "any command"


@dataclass
class Fault:
    """One installed fault; ``fired`` counts how often it acted."""

    description: str
    hook: Callable[[Any, Any], tuple[bytes, int] | None]
    injector: FaultInjector
    times: int | None = None
    fired: int = 0
    seen: int = 0                       # matching commands seen (for ``nth``)
    removed: bool = field(default=False)

    @property
    def active(self) -> bool:
        return not self.removed and (self.times is None or self.fired < self.times)

    def remove(self) -> None:
        self.injector.remove(self)


class FaultInjector:
    """Faults for one ``SimCard``; ``clear()`` removes every fault it installed."""

    def __init__(self, card: Any) -> None:
        self.card = card                      # anything with ``command_hooks``
        self.faults: list[Fault] = []

    # -- installing -----------------------------------------------------------------------
    def _install(self, description: str, times: int | None,
                 act: Callable[[Fault, Any, bytes], tuple[bytes, int] | None],
                 match: CommandMatch, nth: int = 1) -> Fault:
        fault: Fault

        def hook(card: Any, cmd: Any) -> tuple[bytes, int] | None:
            if not fault.active:
                return None
            raw = cmd.to_bytes()
            if not match(raw):
                return None
            fault.seen += 1
            if fault.seen < nth:
                return None
            fault.fired += 1
            return act(fault, card, raw)

        fault = Fault(description, hook, self, times)
        self.card.command_hooks.append(hook)
        self.faults.append(fault)
        return fault

    def tear_at(self, n: int) -> Fault:
        """The ``n``-th command from now (1 = the next one) tears the card."""
        if n < 1:
            raise ValueError("tear_at counts from 1 (the next command)")

        def act(fault: Fault, card: Any, raw: bytes) -> None:
            raise CardTornError(f"fault injection: torn at command {n} ({raw[:4].hex().upper()})")

        return self._install(f"tear at command {n}", 1, act, CommandMatch(), nth=n)

    def tear_on(self, match: str | None = None, *, cla: int | None = None,
                ins: int | None = None, p1: int | None = None, p2: int | None = None,
                nth: int = 1) -> Fault:
        """The ``nth`` command matching tears the card (once)."""
        m = CommandMatch(match, cla, ins, p1, p2)

        def act(fault: Fault, card: Any, raw: bytes) -> None:
            raise CardTornError(f"fault injection: torn on {m.describe()}")

        return self._install(f"tear on {m.describe()} (#{nth})", 1, act, m, nth=nth)

    def answer(self, sw: int | str, match: str | None = None, *, cla: int | None = None,
               ins: int | None = None, p1: int | None = None, p2: int | None = None,
               data: bytes | str = b"", times: int | None = None) -> Fault:
        """Matching commands get ``data`` ‖ ``sw`` instead of the card's own answer."""
        status = int(sw, 16) if isinstance(sw, str) else sw
        if not 0 <= status <= 0xFFFF:
            raise ValueError(f"status word {sw!r} is not two bytes")
        body = parse_hex(data, "fault answer data") if isinstance(data, str) else bytes(data)
        m = CommandMatch(match, cla, ins, p1, p2)
        return self._install(f"answer {status:04X} to {m.describe()}", times,
                             lambda fault, card, raw: (body, status), m)

    def delay(self, seconds: float, match: str | None = None, *, cla: int | None = None,
              ins: int | None = None, p1: int | None = None, p2: int | None = None,
              times: int | None = None) -> Fault:
        """Matching commands are answered normally, ``seconds`` late."""
        m = CommandMatch(match, cla, ins, p1, p2)

        def act(fault: Fault, card: Any, raw: bytes) -> None:
            time.sleep(seconds)

        return self._install(f"delay {seconds}s on {m.describe()}", times, act, m)

    # -- removing -------------------------------------------------------------------------
    def remove(self, fault: Fault) -> None:
        if fault.removed:
            return
        fault.removed = True
        if fault.hook in self.card.command_hooks:
            self.card.command_hooks.remove(fault.hook)
        if fault in self.faults:
            self.faults.remove(fault)

    def clear(self) -> None:
        for fault in list(self.faults):
            self.remove(fault)


def install_from_persona(card: Any, persona: Any) -> None:
    """Persona ``[faults]`` (or ``sbcard sim serve`` options), as data (typed and validated
    by ``sim/extras.py``: :class:`~sbcard.sim.extras.FaultsPersona`)::

        [faults]
        tear_at = 25                 # the 25th command after power-on tears the card
        tear_on = "00DC"             # the first command starting with these bytes tears it
        delay_ms = 40                # every answer comes 40 ms late
        [[faults.answer]]
        match = "00B2"               # these commands …
        sw = "6A83"                  # … get this status word (optionally: data, times)
    """
    spec: FaultsPersona | None = persona.faults
    if spec is None or spec.empty:
        return
    injector = FaultInjector(card)
    card.faults = injector
    if spec.tear_at:
        injector.tear_at(spec.tear_at)
    if spec.tear_on:
        injector.tear_on(spec.tear_on)
    if spec.delay_ms:
        injector.delay(spec.delay_ms / 1000)
    for rule in spec.answer:
        injector.answer(rule.sw, rule.match, data=rule.data, times=rule.times)
