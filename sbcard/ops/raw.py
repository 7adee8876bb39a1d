"""Raw APDUs as the user typed them: parse (with case checking) and send, nothing added."""

from __future__ import annotations

from dataclasses import dataclass

from sbcard.apdu.channel import ApduChannel
from sbcard.apdu.command import CommandApdu, ResponseApdu
from sbcard.apdu.redact import mask_command, mask_response
from sbcard.apdu.sw import describe_sw
from sbcard.errors import BadInputError


@dataclass(frozen=True)
class Exchange:
    command: CommandApdu
    response: ResponseApdu

    def to_json(self) -> dict:
        return {
            "command": mask_command(self.command.to_bytes()),
            "case": int(self.command.case),
            "response": mask_response(self.response.to_bytes())[:-4],
            "sw": f"{self.response.sw:04X}",
            "meaning": describe_sw(self.response.sw)[5:],
        }


def parse_apdus(texts: list[str]) -> list[CommandApdu]:
    """Parse every APDU before sending any, so a typo in the third never half-runs a list."""
    out = []
    for n, text in enumerate(texts, start=1):
        try:
            out.append(CommandApdu.from_hex(text))
        except BadInputError as exc:
            prefix = f"APDU {n}: " if len(texts) > 1 else ""
            raise BadInputError(f"{prefix}{exc}") from None
    return out


def send_apdus(channel: ApduChannel, commands: list[CommandApdu]) -> list[Exchange]:
    with channel.exclusive():
        return [Exchange(c, channel.send(c)) for c in commands]
