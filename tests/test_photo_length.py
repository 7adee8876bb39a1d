"""Where the photo in EF08 ends (``ops.read.photo_length``), with expected offsets written
down as literals, counted by hand from the bytes below, never worked out by the code under test.

EF08 数字相片 is a transparent file of 0x1000 bytes holding a JPEG or a BMP compressed to fit
it (人社信息函〔2012〕37号 §8.1.4, sscard-spec §3.5); the rest of the file is padding (00 from
the COS, or FF written by a personalisation station: neither is specified). The image's own
length says where it ends: a JPEG's EOI marker (ITU-T T.81 / ISO 10918-1 §B.1: markers, segment
lengths, the entropy-coded scan where FF is stuffed as FF00 and RSTn are FFD0–FFD7) and a BMP's
file-size field (``BM`` ‖ size, u32 little endian). Stripping trailing 00/FF would cut a BMP
whose last pixels are black or white; the first FFD9 in the file may be the end of an Exif
thumbnail inside APP1. Anything else is kept whole (the file size), and a file of nothing but
padding holds no photo.
"""

from __future__ import annotations

import pytest

from sbcard.ops.read import photo_length

EF08_SIZE = 4096

# A 2×2 24-bit BMP whose last pixel is white and whose rows end in their 2 pad bytes (00 00).
BMP = bytes.fromhex(
    "424D" "46000000" "0000" "0000" "36000000"          # 0: BM, file size 0x46 = 70, offset 54
    "28000000" "02000000" "02000000" "0100" "1800"     # 14: BITMAPINFOHEADER 2×2, 24 bits
    "00000000" "10000000" "130B0000" "130B0000" "00000000" "00000000"
    "204080" "C0A060" "0000"                            # 54: bottom row, 2 pad bytes
    "000000" "FFFFFF" "0000"                            # 62: top row: black, white, pad
)                                                       # 70: end

# A JPEG: APP0, APP1 holding an Exif thumbnail (its own FFD8 … FFD9), COM, SOS and an
# entropy-coded scan with a stuffed FF00, a restart marker and fill bytes FF FF, then EOI.
JPEG = bytes.fromhex(
    "FFD8"                                              # 0: SOI
    "FFE00010" "4A46494600" "0101" "00" "00010001" "0000"   # 2: APP0 JFIF, length 16 → 20
    "FFE1000E" "457869660000" "FFD8" "0102" "FFD9"      # 20: APP1 Exif, length 14 → 36;
    #                                                     the thumbnail's FFD9 at 34, ends 36
    "FFFE0006" "73626364"                               # 36: COM "sbcd", length 6 → 44
    "FFDA0008" "01" "0100" "003F00"                     # 44: SOS, length 8 → 54
    "12FF0034" "FFD0" "56" "FFFF"                       # 54: scan: FF00, RST0, fill FF FF → 63
    "FFD9"                                              # 63: EOI → 65
)


def padded(image: bytes, pad: bytes) -> bytes:
    return image + pad * (EF08_SIZE - len(image))


def test_the_literal_images_are_as_long_as_counted():
    assert (len(BMP), len(JPEG)) == (70, 65)
    assert JPEG[34:36] == b"\xff\xd9" and JPEG[63:65] == b"\xff\xd9"


@pytest.mark.parametrize("pad", [b"\x00", b"\xff"])
def test_bmp_ending_in_white_pixels_and_zero_pad_bytes_is_cut_by_its_size_field(pad):
    # rstrip(00) then rstrip(FF) would give 65 (the row pad and the white pixel lost)
    assert photo_length(padded(BMP, pad)) == 70


@pytest.mark.parametrize("pad", [b"\x00", b"\xff"])
def test_jpeg_ends_at_its_eoi_not_at_the_thumbnails(pad):
    assert photo_length(padded(JPEG, pad)) == 65          # not 36 (the thumbnail's EOI)


@pytest.mark.parametrize("tail, expected", [
    (b"", 65),                   # the image fills the file: the EOI is its last two bytes
    (b"\x00", 65),               # one pad byte after the EOI
    (b"\xff", 65),
    (b"\xff\xff\x00", 65),
])
def test_jpeg_eoi_near_the_end_of_the_data(tail, expected):
    assert photo_length(JPEG + tail) == expected


def test_jpeg_whose_scan_is_cut_short_is_kept_whole():
    # no EOI anywhere after the scan: the end is unknown, so nothing is cut (the file size)
    cut = JPEG[:60]
    assert photo_length(cut + b"\x00" * 4036) == 4096


def test_bmp_with_an_impossible_size_field_is_kept_whole():
    too_big = BMP[:2] + (5000).to_bytes(4, "little") + BMP[6:]
    too_small = BMP[:2] + (13).to_bytes(4, "little") + BMP[6:]
    assert photo_length(padded(too_big, b"\x00")) == 4096
    assert photo_length(padded(too_small, b"\xff")) == 4096


def test_unknown_format_is_kept_whole_never_stripped():
    # a GIF-like file ending in 00 00 then padding: nothing says where it ends → file size
    gif = b"GIF89a" + bytes.fromhex("0200020080000000FFFFFF2C00000000020002000002") + b"\x00\x00"
    assert photo_length(padded(gif, b"\x00")) == 4096
    assert photo_length(padded(gif, b"\xff")) == 4096
    assert photo_length(gif) == 30


@pytest.mark.parametrize("blank", [b"", b"\x00" * 4096, b"\xff" * 4096])
def test_a_file_of_nothing_but_padding_holds_no_photo(blank):
    assert photo_length(blank) == 0
