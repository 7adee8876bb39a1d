"""Hex text ↔ bytes with messages a technician can act on."""

from __future__ import annotations

import string

from sbcard.errors import BadInputError

_SEPARATORS = " \t:-_"


def parse_hex(text: str, what: str = "hex") -> bytes:
    """Parse hex that may be spaced (``00 A4 04 00``) or glued (``00A40400``).

    Raises BadInputError naming the first bad character and its position, or an odd digit count.
    """
    digits = []
    for pos, ch in enumerate(text, start=1):
        if ch in _SEPARATORS:
            continue
        if ch not in string.hexdigits:
            raise BadInputError(f"{what}: {ch!r} at position {pos} is not a hex digit")
        digits.append(ch)
    if len(digits) % 2:
        raise BadInputError(
            f"{what}: odd number of hex digits ({len(digits)}); every byte needs two"
        )
    return bytes.fromhex("".join(digits))


def to_hex(data: bytes, sep: str = "") -> str:
    """Upper-case hex, the way card people write it."""
    return data.hex(sep).upper() if sep else data.hex().upper()
