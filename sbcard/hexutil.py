"""Bytes in: hex text ↔ bytes with messages a technician can act on, bytes-like → bytes, and
the one ``?``-wildcard hex matcher (status-word masks, command prefixes)."""

from __future__ import annotations

import string

from sbcard.errors import BadInputError

_SEPARATORS = " \t:-_"


def parse_hex(text: str, what: str = "hex") -> bytes:
    """Parse hex that may be spaced (``00 A4 04 00``) or glued (``00A40400``), with an optional
    leading ``0x``.

    Raises BadInputError naming the first bad character and its position, or an odd digit count.
    """
    digits = []
    start = len(text) - len(text.lstrip())
    if text[start:start + 2] in ("0x", "0X"):
        text = " " * (start + 2) + text[start + 2:]      # keep the positions in messages
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


def as_bytes(data: object, what: str) -> bytes:
    """``bytes`` from bytes, bytearray or memoryview; TypeError (a programming error) else."""
    if isinstance(data, bytes):
        return data
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    raise TypeError(f"{what} must be bytes, got {type(data).__name__}")


def hex_mask_matches(pattern: str, text: str, *, prefix: bool = False) -> bool:
    """Whether upper-case hex ``text`` fits ``pattern``, where ``?`` is any one digit.

    Whole length by default (``63C?`` against a status word); with ``prefix`` the pattern
    need only cover the start of ``text`` (a command prefix). Any other character, such as a
    masked ``*``, matches only itself.
    """
    if len(pattern) > len(text) or (not prefix and len(pattern) != len(text)):
        return False
    return all(p == "?" or p == t for p, t in zip(pattern, text, strict=False))


def is_ascii_digits(text: str) -> bool:
    """0-9 only: ``str.isdigit`` also accepts full-width (１２３) and other scripts' digits,
    which no card field, PIN or key number can take."""
    return text.isascii() and text.isdigit()
