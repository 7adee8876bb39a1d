"""The few pieces of DER that SM2 keys, signatures and ciphertexts need.

Written here rather than borrowed from an ASN.1 library because the set is tiny (SEQUENCE,
INTEGER, OCTET STRING, BIT STRING, OBJECT IDENTIFIER, two context tags) and because the
decoder must be strict: signatures are compared byte for byte by other tools, so we reject
non-minimal lengths, negative or padded integers and trailing bytes instead of accepting
anything BER would allow.
"""

from __future__ import annotations

from dataclasses import dataclass

from sbcard.errors import BadInputError

INTEGER = 0x02
BIT_STRING = 0x03
OCTET_STRING = 0x04
NULL = 0x05
OID = 0x06
SEQUENCE = 0x30
CONTEXT_0 = 0xA0
CONTEXT_1 = 0xA1


class DerError(BadInputError):
    """Malformed DER (the message says where)."""


# --------------------------------------------------------------------------- encoding


def encode_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def tlv(tag: int, value: bytes) -> bytes:
    return bytes([tag]) + encode_length(len(value)) + value


def sequence(*items: bytes) -> bytes:
    return tlv(SEQUENCE, b"".join(items))


def integer(value: int) -> bytes:
    """Non-negative INTEGER in minimal two's complement (a 00 byte before a set top bit)."""
    if value < 0:
        raise ValueError("only non-negative integers are encoded")
    return tlv(INTEGER, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def octet_string(value: bytes) -> bytes:
    return tlv(OCTET_STRING, value)


def bit_string(value: bytes) -> bytes:
    """BIT STRING of whole bytes (zero unused bits), as keys always are."""
    return tlv(BIT_STRING, b"\x00" + value)


def oid(dotted: str) -> bytes:
    arcs = [int(part) for part in dotted.split(".")]
    if len(arcs) < 2 or arcs[0] > 2 or (arcs[0] < 2 and arcs[1] >= 40):
        raise ValueError(f"bad object identifier {dotted}")
    body = bytearray()
    for arc in [arcs[0] * 40 + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body += bytes(reversed(chunk))
    return tlv(OID, bytes(body))


# --------------------------------------------------------------------------- decoding


@dataclass(frozen=True)
class Element:
    """One decoded TLV: its tag and the value bytes."""

    tag: int
    value: bytes

    def expect(self, tag: int, what: str) -> Element:
        if self.tag != tag:
            raise DerError(f"{what}: expected tag 0x{tag:02X}, found 0x{self.tag:02X}")
        return self

    def children(self, what: str) -> list[Element]:
        """Elements inside a constructed value (SEQUENCE or context tag)."""
        if not self.tag & 0x20:
            raise DerError(f"{what}: tag 0x{self.tag:02X} is not constructed")
        return read_all(self.value, what)

    def as_integer(self, what: str) -> int:
        self.expect(INTEGER, what)
        v = self.value
        if not v:
            raise DerError(f"{what}: empty INTEGER")
        if v[0] & 0x80:
            raise DerError(f"{what}: negative INTEGER")
        if len(v) > 1 and v[0] == 0 and not v[1] & 0x80:
            raise DerError(f"{what}: INTEGER has a superfluous leading zero byte")
        return int.from_bytes(v, "big")

    def as_octets(self, what: str) -> bytes:
        return self.expect(OCTET_STRING, what).value

    def as_bits(self, what: str) -> bytes:
        v = self.expect(BIT_STRING, what).value
        if not v or v[0] != 0:
            raise DerError(f"{what}: BIT STRING must have 0 unused bits")
        return v[1:]

    def as_oid(self, what: str) -> str:
        v = self.expect(OID, what).value
        if not v or v[-1] & 0x80:
            raise DerError(f"{what}: truncated OBJECT IDENTIFIER")
        arcs: list[int] = []
        acc = 0
        start = True
        for byte in v:
            if start and byte == 0x80:
                raise DerError(f"{what}: OBJECT IDENTIFIER arc is not minimal")
            acc = (acc << 7) | (byte & 0x7F)
            start = not byte & 0x80
            if start:
                arcs.append(acc)
                acc = 0
        first = arcs[0]
        head = [0, first] if first < 40 else [1, first - 40] if first < 80 else [2, first - 80]
        return ".".join(str(a) for a in head + arcs[1:])


def read_one(data: bytes, offset: int, what: str) -> tuple[Element, int]:
    """Decode the TLV at ``offset``; return it and the offset just after it."""
    if offset + 2 > len(data):
        raise DerError(f"{what}: truncated")
    tag = data[offset]
    if tag & 0x1F == 0x1F:
        raise DerError(f"{what}: multi-byte tags are not used here")
    first = data[offset + 1]
    pos = offset + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0:
            raise DerError(f"{what}: indefinite length is not DER")
        if count > 4 or pos + count > len(data):
            raise DerError(f"{what}: bad length")
        length = int.from_bytes(data[pos : pos + count], "big")
        if length < 0x80 or data[pos] == 0:
            raise DerError(f"{what}: length is not minimally encoded")
        pos += count
    end = pos + length
    if end > len(data):
        raise DerError(f"{what}: value runs past the end of the data")
    return Element(tag, bytes(data[pos:end])), end


def read_all(data: bytes, what: str) -> list[Element]:
    out: list[Element] = []
    pos = 0
    while pos < len(data):
        element, pos = read_one(data, pos, what)
        out.append(element)
    return out


def decode(data: bytes, what: str) -> Element:
    """Decode exactly one TLV that spans all of ``data``."""
    element, end = read_one(data, 0, what)
    if end != len(data):
        raise DerError(f"{what}: {len(data) - end} trailing byte(s) after the DER value")
    return element
