"""Codecs, identifiers and code tables of ``sbcard.card`` (spec §0.2, §3, §7).

All personas are synthetic: invented names (测试, 买买提·测试 …) and ID numbers built from
invented bodies with computed check characters.
"""

from __future__ import annotations

import datetime as dt
import inspect
from typing import Any

import pytest

from sbcard.card import codecs, codes, identity
from sbcard.card.codecs import (
    AN,
    CN,
    DATE,
    NAME_VECTORS,
    Codec,
    Decoded,
    encode_name,
    join_name,
    split_name,
)
from sbcard.card.identity import (
    CardId,
    InitOrgNo,
    card_no_check_char,
    check_card_no,
    check_region_code,
    check_ssn,
    id_check_char,
    ssn_birth_date,
    ssn_sex,
)
from sbcard.errors import BadInputError

# --- the automatic vector sweep ----------------------------------------------------------------


def _codec_classes() -> list[type[Codec]]:
    """Every concrete Codec subclass in the package (test-local classes excluded)."""
    found: list[type[Codec]] = []
    stack = list(Codec.__subclasses__())
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if not inspect.isabstract(cls) and cls.__module__.startswith("sbcard."):
            found.append(cls)
    return sorted(found, key=lambda c: c.name)


CODEC_CLASSES = _codec_classes()


def _cases(attr: str) -> list[Any]:
    return [
        pytest.param(cls, vec, id=f"{cls.name}-{i}")
        for cls in CODEC_CLASSES
        for i, vec in enumerate(getattr(cls, attr))
    ]


def test_sweep_finds_all_codecs() -> None:
    names = {cls.name for cls in CODEC_CLASSES}
    assert {"cn", "an", "date", "b", "card_id", "init_org", "card_no", "ssn", "region"} <= names


@pytest.mark.parametrize("cls", CODEC_CLASSES, ids=lambda c: c.name)
def test_every_codec_has_vectors_and_is_registered(cls: type[Codec]) -> None:
    assert cls.vectors, f"codec {cls.name} has no encode/decode vectors"
    registered = {**codecs.CODECS, **identity.CODECS}
    assert type(registered.get(cls.name)) is cls, f"codec {cls.name} is not in a CODECS table"


@pytest.mark.parametrize(("cls", "vector"), _cases("vectors"))
def test_vector_round_trip(cls: type[Codec], vector: tuple[Any, int, str]) -> None:
    value, length, hex_ = vector
    codec = cls()
    raw = bytes.fromhex(hex_)
    assert len(raw) == length
    assert codec.encode(value, length) == raw
    assert codec.decode(raw) == Decoded(value)


@pytest.mark.parametrize(("cls", "vector"), _cases("decode_vectors"))
def test_decode_vector(cls: type[Codec], vector: tuple[str, Any, str]) -> None:
    hex_, value, warning = vector
    got = cls().decode(bytes.fromhex(hex_))
    assert got.value == value
    if warning:
        assert any(warning in w for w in got.warnings), got.warnings
    else:
        assert got.warnings == ()


@pytest.mark.parametrize(("cls", "vector"), _cases("bad_inputs"))
def test_bad_input(cls: type[Codec], vector: tuple[Any, int, str]) -> None:
    value, length, words = vector
    with pytest.raises(BadInputError) as err:
        cls().encode(value, length)
    message = str(err.value)
    assert words in message
    assert "\n" not in message


def test_sweep_would_catch_a_codec_without_vectors() -> None:
    class Bare(Codec):
        name = "bare"

        def encode(self, value: Any, length: int, *, what: str | None = None) -> bytes:
            return bytes(length)

        def decode(self, raw: bytes) -> Decoded:
            return Decoded(None)

    assert Bare in Codec.__subclasses__()
    assert not Bare.vectors
    assert Bare not in CODEC_CLASSES  # excluded only because it lives in the tests


@pytest.mark.parametrize(("cls", "vector"), _cases("decode_vectors"))
def test_decode_never_raises_on_truncation(cls: type[Codec], vector: tuple[str, Any, str]) -> None:
    raw = bytes.fromhex(vector[0])
    for cut in range(len(raw) + 1):
        assert isinstance(cls().decode(raw[:cut]), Decoded)


# --- spec §3.7 dump shapes ---------------------------------------------------------------------

EF05 = {
    0x01: (identity.CARD_ID, 0x10),
    0x02: (AN, 0x01),
    0x03: (AN, 0x04),
    0x04: (identity.INIT_ORG, 0x0C),
    0x05: (DATE, 0x04),
    0x06: (DATE, 0x04),
    0x07: (identity.CARD_NO, 0x09),
}
EF06 = {
    0x08: (identity.SSN, 0x12),
    0x09: (AN, 0x1E),
    0x4E: (AN, 0x14),
    0x0A: (AN, 0x01),
    0x0B: (CN, 0x01),
    0x0C: (identity.REGION, 0x03),
    0x0D: (DATE, 0x04),
}


def _records(hex_: str, table: dict[int, tuple[Codec, int]]) -> dict[int, Decoded]:
    """Split SIMPLE-TLV records (spec §3.6) and decode each with its codec."""
    data = bytes.fromhex(hex_.replace(" ", ""))
    out: dict[int, Decoded] = {}
    pos = 0
    while pos < len(data):
        tag, length = data[pos], data[pos + 1]
        codec, expected = table[tag]
        assert length == expected, f"tag {tag:02X}"
        out[tag] = codec.decode(data[pos + 2:pos + 2 + length])
        pos += 2 + length
    return out


def test_ef05_dump_of_a_2_0_card() -> None:
    recs = _records(
        "0110 510100D156000005C0666779FFFFFFFF 0201 33 0304 322E3000"
        " 040C 915600000211000011010002 0504 20140601 0604 20240601"
        " 0709 443231343335363958",
        EF05,
    )
    card_id = recs[0x01].value
    assert card_id == CardId("510100", "D156000005", "C0666779", "FFFFFFFF")
    assert not card_id.auth_code_set
    assert recs[0x01].warnings == ("卡的识别码 auth code FFFFFFFF: not set (test/early card)",)
    assert recs[0x02].value == "3"
    assert codes.card_category(recs[0x02].value) == ("成年人", "adult")
    assert recs[0x03] == Decoded("2.0")
    assert codes.spec_version_key(recs[0x03].value) == "2.0"
    assert recs[0x04].value == InitOrgNo("9156000002", "110000", "110100", "02")
    assert recs[0x05] == Decoded(dt.date(2014, 6, 1))
    assert recs[0x06] == Decoded(dt.date(2024, 6, 1))
    assert recs[0x07] == Decoded("D2143569X")


def test_ef06_dump_with_empty_cn_fields() -> None:
    name_hex = "B2E2CAD4" + "00" * 26
    recs = _records(
        "0812 313130313035313939303033303731323339 091E " + name_hex
        + " 4E14 " + "00" * 20 + " 0A01 32 0B01 FF 0C03 FFFFFF 0D04 FFFFFFFF",
        EF06,
    )
    assert recs[0x08] == Decoded("110105199003071239")
    assert recs[0x09] == Decoded("测试")
    assert recs[0x4E] == Decoded(None)
    assert join_name(bytes.fromhex(name_hex), bytes(20)) == Decoded("测试")
    assert recs[0x0A] == Decoded("2")
    assert codes.sex(recs[0x0A].value) == ("女", "female")
    for tag in (0x0B, 0x0C, 0x0D):
        assert recs[tag] == Decoded(None), f"tag {tag:02X}"


def test_spec_versions() -> None:
    assert AN.decode(b"3.00") == Decoded("3.00")
    assert codes.spec_version("3.00") == codes.SPEC_VERSION.lookup("3.0")
    assert codes.spec_version(AN.decode(bytes.fromhex("322E3000")).value)[1].startswith("spec 2")
    assert codes.spec_version_key(None) == "1.0"   # empty ⇒ treat as 1.0x
    assert codes.spec_version_key("") == "1.0"
    assert codes.spec_version("9.99") is None
    assert "2.01" in codes.KNOWN_SPEC_VERSIONS


def test_reader_interface_sample_identifiers() -> None:
    card_id = CardId.parse("639900D15600000500BF7C7A48FB4966")
    assert (card_id.region, card_id.rid, card_id.serial, card_id.auth_code) == (
        "639900", "D156000005", "00BF7C7A", "48FB4966"
    )
    assert card_id.hex() == "639900D15600000500BF7C7A48FB4966"
    assert card_id.raw == bytes.fromhex(card_id.hex())
    assert card_id.warnings == ()
    assert check_card_no("X00000019") == ()


def test_card_id_odd_content_is_warned_not_raised() -> None:
    got = identity.CARD_ID.decode(bytes.fromhex("5A0100D156000099C0666779FFFFFFFF"))
    assert got.value.region == "5A0100"
    assert len(got.warnings) == 3
    assert "D156000099" in got.warnings[1]
    with pytest.raises(BadInputError, match="15 bytes; it needs 16"):
        CardId.parse(bytes(15))
    with pytest.raises(BadInputError, match="region '51010' must be 6 digits"):
        CardId.build("51010", "C0666779")
    built = CardId.build("510100", "c0666779")
    assert built.serial == "C0666779" and built.auth_code == "FFFFFFFF"


def test_init_org_example_split() -> None:
    number = InitOrgNo.parse("915600000211000011010002")
    assert number.issuer_prefix == "9156000002"
    assert number.issuing_region == "110000"
    assert number.init_org_region == "110100"
    assert number.sequence == "02"
    assert number.raw == bytes.fromhex("915600000211000011010002")
    assert number.warnings == ()
    assert InitOrgNo.parse(number.raw) == number
    with pytest.raises(BadInputError, match="must be 24 digits"):
        InitOrgNo.parse(bytes.fromhex("9156000002110000110100FF"))


# --- an: GBK, rare characters, the middle dot --------------------------------------------------

def test_rare_character_is_refused_with_its_position() -> None:
    with pytest.raises(BadInputError) as err:
        AN.encode("张测䶮", 30, what="姓名")
    assert str(err.value) == "姓名: character 3 of 3, '䶮' (U+4DAE), is not in GBK"
    with pytest.raises(BadInputError, match=r"character 2 of 3, '𠀀' \(U\+20000\)"):
        split_name("测𠀀试")


def test_gb18030_bytes_decode() -> None:
    got = AN.decode("测䶮".encode("gb18030").ljust(30, b"\0"))
    assert got.value == "测䶮"
    assert "'䶮' (U+4DAE)" in got.warnings[0]
    four_byte = AN.decode("王𠀀测试".encode("gb18030"))
    assert four_byte.value == "王𠀀测试"


def test_middle_dot_of_minority_names() -> None:
    assert AN.encode("买买提·测试", 12)[6:8] == bytes.fromhex("A1A4")
    assert AN.decode(AN.encode("买买提·测试", 30)) == Decoded("买买提·测试")
    for lookalike in "•・･‧⋅":
        with pytest.raises(BadInputError, match="U\\+00B7"):
            AN.encode(f"买买提{lookalike}测试", 30)


def test_an_length_message_counts_bytes() -> None:
    with pytest.raises(BadInputError, match="takes 32 bytes in GBK, more than the 30-byte field"):
        AN.encode("测" * 16, 30, what="姓名")


def test_cn_non_bcd_is_kept_with_warning() -> None:
    got = CN.decode(bytes.fromhex("0B"))
    assert got.value == bytes.fromhex("0B")
    assert got.json_value() == "0B"
    assert "nibble B at position 2" in got.warnings[0]


def test_date_impossible_and_empty() -> None:
    assert DATE.decode(bytes.fromhex("20230230")).value == "20230230"
    assert DATE.decode(bytes(4)) == Decoded(None)
    assert DATE.encode("2014-06-01", 4) == bytes.fromhex("20140601")
    assert DATE.encode(dt.datetime(2014, 6, 1, 12, 0), 4) == bytes.fromhex("20140601")
    assert Decoded(dt.date(2014, 6, 1)).json_value() == "2014-06-01"


# --- 姓名 / 姓名扩展 ----------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "hex09", "hex4e"), NAME_VECTORS, ids=lambda v: str(v)[:8])
def test_name_vectors(name: str, hex09: str, hex4e: str) -> None:
    field09, field4e = bytes.fromhex(hex09), bytes.fromhex(hex4e)
    assert len(field09) == 0x1E and len(field4e) == 0x14
    assert encode_name(name) == (field09, field4e)
    assert join_name(field09, field4e) == Decoded(name)


def test_name_split_never_cuts_a_character() -> None:
    name = "Z" + "测试" * 7 + "·测试"          # 29 bytes, then a 2-byte dot that cannot fit
    head, tail = split_name(name)
    assert (head, tail) == ("Z" + "测试" * 7, "·测试")
    assert len(head.encode("gbk")) == 29


def test_name_limits() -> None:
    exactly_50 = "测" * 25
    assert split_name(exactly_50) == ("测" * 15, "测" * 10)
    with pytest.raises(BadInputError) as err:
        split_name("测" * 25 + "A")
    assert "takes 51 bytes in GBK" in str(err.value)
    assert "at most 50 (30 + 20)" in str(err.value)


def test_join_name_from_other_writers() -> None:
    name = "Z" + "测试" * 7 + "·测试"
    data = name.encode("gbk")
    # a writer that cut inside a character: 29 bytes of whole characters + the dot's lead byte
    got = join_name(data[:30], data[30:].ljust(20, b"\0"))
    assert got.value == name
    assert got.warnings == ("a character is split across 姓名 and 姓名扩展",)
    assert AN.decode(data[:30]).warnings  # each field alone would not read
    assert join_name(AN.encode("测试", 30)) == Decoded("测试")       # 1.0 layout: no 4E
    assert join_name(bytes(30), bytes(20)) == Decoded(None)
    short = join_name(AN.encode("测试", 30), AN.encode("江", 20))
    assert short.value == "测试江"
    assert short.warnings == ("姓名扩展 holds text although 姓名 had room for more",)


# --- 卡号 ---------------------------------------------------------------------------------------

def test_card_no_check_char() -> None:
    assert card_no_check_char("D2143569") == "X"       # spec example D2143569X
    assert card_no_check_char("X0000001") == "9"       # reader-interface sample X00000019
    assert card_no_check_char("A0000007") == "0"       # sum 44: 11 − 0 = 11 → '0'
    assert card_no_check_char("A0000002") == "X"       # sum 34: 11 − 1 = 10 → 'X'
    assert card_no_check_char("A0000003") == "8"       # sum 36: 11 − 3 = 8
    with pytest.raises(BadInputError, match="character 2, 'a'"):
        card_no_check_char("Da143569")


def test_check_card_no_warnings() -> None:
    assert check_card_no("D2143569X") == ()
    assert check_card_no("D21435690") == ("卡号 D21435690: check character is '0', expected 'X' "
                                          "(test card?)",)
    assert any("first character" in w for w in check_card_no("12143569X"))
    assert any("has 8 characters" in w for w in check_card_no("D2143569"))
    assert check_card_no("") == ("卡号 '' has 0 characters, expected 9",)


# --- 社会保障号码 -------------------------------------------------------------------------------

SYNTHETIC_IDS = (
    "110105199003071239",
    "65010219880615104X",
    "32010619751120118X",
    "440305201202290036",
)


def _mod11_2_ok(full: str) -> bool:
    """ISO 7064 MOD 11-2 stated the other way: Σ a_i·2^(18−i) over all 18 ≡ 1 (mod 11)."""
    values = [10 if ch == "X" else int(ch) for ch in full]
    return sum(v * 2 ** (18 - i) for i, v in enumerate(values, start=1)) % 11 == 1


@pytest.mark.parametrize("ssn", SYNTHETIC_IDS)
def test_synthetic_ids_verify(ssn: str) -> None:
    assert id_check_char(ssn[:17]) == ssn[17]
    assert _mod11_2_ok(ssn)
    assert check_ssn(ssn, today=dt.date(2024, 1, 1)) == ()


def test_ssn_details() -> None:
    assert ssn_birth_date("65010219880615104X") == dt.date(1988, 6, 15)
    assert ssn_sex("65010219880615104X") == "2"
    assert ssn_sex("110105199003071239") == "1"
    lower = check_ssn("65010219880615104x")
    assert len(lower) == 1 and "lower-case 'x'" in lower[0]
    assert any("expected 'X'" in w for w in check_ssn("650102198806151040"))
    bad_date = "110105199002301230"
    bad_date = bad_date[:17] + id_check_char(bad_date[:17])
    assert check_ssn(bad_date) == (f"社会保障号码 {bad_date}: birth date 19900230 is not a "
                                   f"calendar date",)
    assert any("future" in w for w in check_ssn("440305201202290036", today=dt.date(2011, 1, 1)))
    taiwan = "83000019900307123"
    assert check_ssn(taiwan + id_check_char(taiwan)) == ()
    foreign = "99000019900307123"
    assert "start with 9" in check_ssn(foreign + id_check_char(foreign))[0]
    assert "15-digit" in check_ssn("110105900307123")[0]
    assert any("not a digit" in w for w in check_ssn("1101051990030712A9"))


# --- region codes and code tables ---------------------------------------------------------------

def test_region_codes() -> None:
    assert check_region_code("510100") == ()
    assert check_region_code("000000") == (
        "region code 000000: 00 is not a GB/T 2260 province-level prefix",
    )
    assert check_region_code("51010") == ("region code '51010' is not 6 digits",)
    assert codes.province("650102") == ("新疆维吾尔自治区", "Xinjiang")
    assert codes.province(11) == ("北京市", "Beijing")


def test_code_tables() -> None:
    assert len(codes.PROVINCE.codes()) == 34
    assert len(codes.ETHNICITY.codes()) == 58
    assert codes.ETHNICITY.codes()[:56] == tuple(f"{n:02d}" for n in range(1, 57))
    zh_names = [codes.ethnicity(c)[0] for c in codes.ETHNICITY.codes()]
    assert len(set(zh_names)) == len(zh_names)
    assert codes.ethnicity("01") == ("汉族", "Han")
    assert codes.ethnicity(56) == ("基诺族", "Jino")
    assert codes.ethnicity("98")[0] == "外国血统中国籍人士"
    assert codes.ethnicity("99") is None
    assert codes.sex("9") == ("未说明的性别", "not stated")
    assert codes.sex("3") is None
    assert codes.card_category("5") is None
    assert codes.algorithm(3)[0] == "SM4"
    assert codes.algorithm("01")[0] == "DES/3DES"
    assert codes.algorithm("2")[0] == "SSF33"
    assert codes.algorithm(None) is None
    assert "02" in codes.ALGORITHM and "04" not in codes.ALGORITHM


def test_json_values() -> None:
    card_id = CardId.parse("510100D156000005C0666779FFFFFFFF")
    assert Decoded(card_id).json_value()["auth_code"] == "FFFFFFFF"
    assert Decoded(b"\x01\xab").json_value() == "01AB"
    assert Decoded(InitOrgNo.parse("915600000211000011010002")).json_value()["sequence"] == "02"
