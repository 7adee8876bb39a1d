"""The one hex parser, bytes coercion and ``?`` matcher that every layer uses."""

from __future__ import annotations

import pytest

from sbcard.apdu.sw import parse_sw_mask, sw_matches
from sbcard.errors import BadInputError
from sbcard.hexutil import as_bytes, hex_mask_matches, parse_hex


def test_parse_hex_forms() -> None:
    assert parse_hex("00 A4:04-00") == bytes.fromhex("00A40400")
    assert parse_hex(" 0x1f2E") == b"\x1f\x2e"
    with pytest.raises(BadInputError, match="'z' at position 4 is not a hex digit"):
        parse_hex("0x1z")
    with pytest.raises(BadInputError, match="odd number"):
        parse_hex("ABC")


def test_as_bytes() -> None:
    assert as_bytes(bytearray(b"ab"), "x") == b"ab"
    assert as_bytes(memoryview(b"ab"), "x") == b"ab"
    with pytest.raises(TypeError, match="key must be bytes, got str"):
        as_bytes("ab", "key")


def test_hex_mask_whole_and_prefix() -> None:
    assert hex_mask_matches("63C?", "63C2")
    assert not hex_mask_matches("63C?", "6382")
    assert not hex_mask_matches("63C", "63C2")                  # whole length by default
    assert hex_mask_matches("00B2??", "00B2012C00", prefix=True)
    assert not hex_mask_matches("00B2012C0000", "00B2012C00", prefix=True)
    assert hex_mask_matches("0020000003**", "0020000003******", prefix=True)
    assert not hex_mask_matches("0020000003**", "002000000312", prefix=True)


def test_sw_masks() -> None:
    assert parse_sw_mask(" 63cx ") == "63C?"
    assert sw_matches("61??", 0x6110) and not sw_matches("9000", 0x6A82)
    with pytest.raises(BadInputError, match="'90' is not a status word mask"):
        parse_sw_mask("90")
