"""Test doubles below the APDU layer: a transport that answers from a script."""

from __future__ import annotations

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
