import pytest

from sbcard.apdu.command import ApduCase, CommandApdu, ResponseApdu
from sbcard.errors import BadInputError, TransportError


@pytest.mark.parametrize(
    ("text", "case", "data", "le"),
    [
        ("00A40000", ApduCase.CASE_1, b"", None),
        ("00B2012C12", ApduCase.CASE_2, b"", 0x12),
        ("00B2012C00", ApduCase.CASE_2, b"", 256),
        ("00A4020002EF05", ApduCase.CASE_3, b"\xef\x05", None),
        ("00 A4 04 00 02 3F 00 00", ApduCase.CASE_4, b"\x3f\x00", 256),
        ("0088000010" + "11" * 16 + "08", ApduCase.CASE_4, b"\x11" * 16, 8),
    ],
)
def test_parse_cases(text, case, data, le):
    apdu = CommandApdu.from_hex(text)
    assert apdu.case is case
    assert apdu.data == data
    assert apdu.le == le
    assert apdu.to_bytes() == bytes.fromhex(text.replace(" ", ""))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("00A", "odd number of hex digits"),
        ("00G0", r"'G' at position 3"),
        ("00A404", "at least CLA INS P1 P2"),
        ("00A4040005AABB", "Lc=05 says 5 data bytes but 2 bytes follow"),
        ("00A40400020102030405", "Lc=02 says 2 data bytes but 5 bytes follow"),
        ("00B0000000FFFF", "extended-length"),
    ],
)
def test_parse_rejects_malformed(text, message):
    with pytest.raises(BadInputError, match=message):
        CommandApdu.from_hex(text)


def test_constructor_checks_fields():
    with pytest.raises(BadInputError, match="P1 must be one byte"):
        CommandApdu(0, 0xA4, 0x100, 0)
    with pytest.raises(BadInputError, match="at most 255"):
        CommandApdu(0, 0xD6, 0, 0, b"\x00" * 256)
    with pytest.raises(BadInputError, match=r"Le must be 1\.\.256"):
        CommandApdu(0, 0xB0, 0, 0, le=0)


def test_with_le_keeps_everything_else():
    apdu = CommandApdu(0, 0xB2, 7, 0x2C, le=256, name="READ RECORD")
    fixed = apdu.with_le(0x0B)
    assert fixed.to_bytes() == bytes.fromhex("00B2072C0B")
    assert fixed.name == "READ RECORD"


def test_response_parse():
    r = ResponseApdu.parse(bytes.fromhex("0102639C"[:4] + "9000"))
    assert r.data == b"\x01\x02" and r.sw == 0x9000 and r.ok
    with pytest.raises(TransportError):
        ResponseApdu.parse(b"\x90")
