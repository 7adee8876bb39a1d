"""Command and response APDUs (ISO 7816-4 §5.1, ISO 7816-3 §12.1), short lengths only.

Social security cards use short APDUs throughout; an extended-length APDU is refused with a
message rather than sent half-understood.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from sbcard.errors import BadInputError, TransportError
from sbcard.hexutil import parse_hex, to_hex


class ApduCase(IntEnum):
    """ISO 7816-3 case: 1 no data/no Le, 2 Le only, 3 data only, 4 data and Le."""

    CASE_1 = 1
    CASE_2 = 2
    CASE_3 = 3
    CASE_4 = 4


@dataclass(frozen=True)
class CommandApdu:
    """A command APDU. ``le`` is the number of bytes expected (1..256) or None for no Le.

    ``le=256`` is written as ``00`` on the wire.
    """

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None
    name: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        fields = (("CLA", self.cla), ("INS", self.ins), ("P1", self.p1), ("P2", self.p2))
        for label, value in fields:
            if not 0 <= value <= 0xFF:
                raise BadInputError(f"{label} must be one byte, got {value:#x}")
        if len(self.data) > 255:
            raise BadInputError(
                f"command data is {len(self.data)} bytes; short APDUs carry at most 255"
            )
        if self.le is not None and not 1 <= self.le <= 256:
            raise BadInputError(f"Le must be 1..256 (00 means 256), got {self.le}")

    @property
    def case(self) -> ApduCase:
        if self.data:
            return ApduCase.CASE_4 if self.le is not None else ApduCase.CASE_3
        return ApduCase.CASE_2 if self.le is not None else ApduCase.CASE_1

    @property
    def header(self) -> bytes:
        return bytes((self.cla, self.ins, self.p1, self.p2))

    def to_bytes(self) -> bytes:
        out = bytearray(self.header)
        if self.data:
            out.append(len(self.data))
            out += self.data
        if self.le is not None:
            out.append(self.le & 0xFF)
        return bytes(out)

    def with_le(self, le: int | None) -> CommandApdu:
        return CommandApdu(self.cla, self.ins, self.p1, self.p2, self.data, le, self.name)

    def __str__(self) -> str:
        return to_hex(self.to_bytes())

    @classmethod
    def parse(cls, raw: bytes) -> CommandApdu:
        """Parse a short command APDU, saying exactly what is wrong when it is malformed."""
        n = len(raw)
        if n < 4:
            raise BadInputError(
                f"APDU is {n} byte{'s' if n != 1 else ''}; it needs at least CLA INS P1 P2 (4)"
            )
        cla, ins, p1, p2 = raw[:4]
        if n == 4:
            return cls(cla, ins, p1, p2)
        b5 = raw[4]
        if n == 5:
            return cls(cla, ins, p1, p2, le=b5 or 256)
        if b5 == 0:
            raise BadInputError(
                "Lc byte is 00 with more bytes following: extended-length APDUs are not supported"
            )
        body = n - 5
        if body == b5:
            return cls(cla, ins, p1, p2, raw[5:])
        if body == b5 + 1:
            return cls(cla, ins, p1, p2, raw[5:-1], raw[-1] or 256)
        raise BadInputError(
            f"Lc={b5:02X} says {b5} data byte{'s' if b5 != 1 else ''} but {body} "
            f"byte{'s' if body != 1 else ''} follow (expected {b5}, or {b5 + 1} with Le)"
        )

    @classmethod
    def from_hex(cls, text: str) -> CommandApdu:
        return cls.parse(parse_hex(text, "APDU"))


@dataclass(frozen=True)
class ResponseApdu:
    """Response data and the two status bytes."""

    data: bytes
    sw1: int
    sw2: int

    @property
    def sw(self) -> int:
        return (self.sw1 << 8) | self.sw2

    @property
    def ok(self) -> bool:
        return self.sw == 0x9000

    def to_bytes(self) -> bytes:
        return self.data + bytes((self.sw1, self.sw2))

    @classmethod
    def parse(cls, raw: bytes) -> ResponseApdu:
        if len(raw) < 2:
            raise TransportError(
                f"card answer is {len(raw)} byte(s); a response needs at least SW1 SW2"
            )
        return cls(bytes(raw[:-2]), raw[-2], raw[-1])

    def __str__(self) -> str:
        return f"{to_hex(self.data)} {self.sw:04X}".lstrip()
