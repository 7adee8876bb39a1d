"""BER-TLV (ISO 7816-4 §5.2) parsing: FCI templates, EMV records, and the PAN masker.

Tolerant by design: data from a card is parsed as far as it is well formed, and the caller
learns where it stopped (``TlvError``) instead of getting half a tree silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class TlvError(ValueError):
    """The bytes are not well-formed BER-TLV at ``offset``."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"{message} at byte {offset}")
        self.offset = offset


@dataclass(frozen=True)
class Tlv:
    tag: int
    value: bytes
    offset: int                      # where the value starts in the parsed buffer
    children: tuple[Tlv, ...] = field(default=())

    @property
    def constructed(self) -> bool:
        first = self.tag
        while first > 0xFF:
            first >>= 8
        return bool(first & 0x20)

    def find(self, tag: int) -> Tlv | None:
        """Depth-first search of this object and its children."""
        if self.tag == tag:
            return self
        for child in self.children:
            hit = child.find(tag)
            if hit is not None:
                return hit
        return None


def parse(data: bytes, *, base: int = 0, depth: int = 0, max_depth: int = 8) -> list[Tlv]:
    """Parse a sequence of BER-TLV objects; constructed ones are parsed recursively.

    00 and FF bytes between objects are padding (ISO 7816-4 §5.2.2) and skipped.
    """
    out: list[Tlv] = []
    pos = 0
    n = len(data)
    while pos < n:
        if data[pos] in (0x00, 0xFF):
            pos += 1
            continue
        start = pos
        tag = data[pos]
        pos += 1
        if tag & 0x1F == 0x1F:
            while True:
                if pos >= n:
                    raise TlvError("tag runs past the end", base + start)
                tag = (tag << 8) | data[pos]
                pos += 1
                if not data[pos - 1] & 0x80:
                    break
        if pos >= n:
            raise TlvError(f"tag {tag:X} has no length", base + start)
        length = data[pos]
        pos += 1
        if length & 0x80:
            count = length & 0x7F
            if count == 0 or count > 3 or pos + count > n:
                raise TlvError(f"bad length field for tag {tag:X}", base + pos - 1)
            length = int.from_bytes(data[pos:pos + count], "big")
            pos += count
        if pos + length > n:
            raise TlvError(f"tag {tag:X} claims {length} bytes, {n - pos} remain", base + pos)
        value = bytes(data[pos:pos + length])
        obj = Tlv(tag, value, base + pos)
        if obj.constructed and depth < max_depth:
            obj = Tlv(tag, value, base + pos,
                      tuple(parse(value, base=base + pos, depth=depth + 1, max_depth=max_depth)))
        out.append(obj)
        pos += length
    return out


def find(objects: list[Tlv], tag: int) -> Tlv | None:
    for obj in objects:
        hit = obj.find(tag)
        if hit is not None:
            return hit
    return None


def parse_dol(dol: bytes) -> list[tuple[int, int]]:
    """A data object list (EMV Book 3 §5.4: PDOL, CDOL): ``(tag, length)`` pairs, no values."""
    out: list[tuple[int, int]] = []
    pos, n = 0, len(dol)
    while pos < n:
        start = pos
        tag = dol[pos]
        pos += 1
        if tag & 0x1F == 0x1F:
            while True:
                if pos >= n:
                    raise TlvError("DOL tag runs past the end", start)
                tag = (tag << 8) | dol[pos]
                pos += 1
                if not dol[pos - 1] & 0x80:
                    break
        if pos >= n:
            raise TlvError(f"DOL tag {tag:X} has no length", start)
        out.append((tag, dol[pos]))
        pos += 1
    return out
