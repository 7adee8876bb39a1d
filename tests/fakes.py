"""Test doubles below the APDU layer: a transport that answers from a script."""

from __future__ import annotations

from typing import Any

from sbcard.transport.base import Transport


class ScriptedTransport(Transport):
    """Answers each command with the next scripted response; records what was sent."""

    description = "scripted"

    def __init__(self, *responses: str) -> None:
        self.responses = [bytes.fromhex(r) for r in responses]
        self.sent: list[bytes] = []

    def connect(self) -> None:
        pass

    @property
    def atr(self) -> bytes:
        return bytes.fromhex("3B00")

    def transmit(self, command: bytes) -> bytes:
        self.sent.append(bytes(command))
        if not self.responses:
            raise AssertionError(f"unexpected command {command.hex()}")
        return self.responses.pop(0)

    def reset(self) -> bytes:
        return self.atr

    def disconnect(self) -> None:
        pass


def recorded_sim_card(persona: str) -> tuple[Any, Any, list[str]]:
    """(card, channel, sent): a persona's simulated card on an in-process channel, every
    command it receives recorded as upper-case hex in ``sent``."""
    from sbcard.apdu.channel import ApduChannel
    from sbcard.apdu.t0 import T0Layer
    from sbcard.sim.persona import load_persona
    from sbcard.transport.simulated import SimulatedTransport

    card = load_persona(persona).build_card()
    sent: list[str] = []
    card.command_hooks.append(lambda _c, cmd: sent.append(cmd.to_bytes().hex().upper()))
    link = T0Layer(SimulatedTransport(card))   # as sessions build it (ops/session.stack)
    link.connect()
    return card, ApduChannel(link), sent
