"""DF01–DF07 (人社信息函〔2012〕37号): the tables as data, the simulated card's access rules, and
the record operations of ``sbcard.ops.records``.

Expected values are written from the notice (gdgly/SI_3rdCard, docs/社保卡指令文档资料_银海提供/
关于印发社会保障卡文件结构和数据项（V2.0）的通知.pdf, tables 4–9) and part 9 table B1, not
from our tables."""

from __future__ import annotations

import pytest

from sbcard.apdu.sw import SW, CardError
from sbcard.card import dftext
from sbcard.card.dfs import (
    DF_BY_NAME,
    DF_KEYS,
    ITEMS,
    KEY_BY_NAME,
    RECORD_FIELDS,
    SUBITEMS,
    key_ref,
    record_number,
    split_file_name,
)
from sbcard.card.filesystem import Structure
from sbcard.errors import BadInputError, RefusedError
from sbcard.keys.builtin import builtin_key_file
from sbcard.keys.keyfile import KeyFile
from sbcard.ops.pin import Pin
from sbcard.ops.records import DfSession, ItemRef, Method, ReadAuth, read_file, write_file
from sbcard.sim.persona import persona_from_mapping
from tests.fakes import recorded_sim_card

PIN = Pin("123456")


# -- the tables ------------------------------------------------------------------------------

def test_files_per_df_as_the_notice_lists_them() -> None:
    names = {df: [e.name for e in spec.efs()] for df, spec in DF_BY_NAME.items()}
    assert names["DF01"] == ["EF05", "EF06", "EF07", "EF08", "EF09", "EF0A", "EF15", "EF16",
                             "EF17", "EF18", "EF19", "EF1A"]                    # table 4
    assert names["DF02"] == ["EF05", "EF06", "EF07", "EF09", "EF15", "EF16"]    # table 5
    assert names["DF03"] == ["EF05", "EF06", "EF07", "EF15", "EF16", "EF17", "EF18",
                             "EF19"]                                            # table 6
    assert names["DF04"] == ["EF05", "EF06", "EF08", "EF15"]                    # table 7
    assert names["DF07"] == ["EF05", "EF06", "EF07"]                            # table 8
    assert DF_BY_NAME["DF01"].df_name.hex().upper() == "D15600000500"           # table 2
    assert DF_BY_NAME["DF07"].df_name.hex().upper() == "D15600000504"


@pytest.mark.parametrize(("file", "read", "write"), [
    ("DF01EF05", "pin|key:8E", "key:83"),     # PIN 或 RK1DF01 / UK1DF01 (83: part 9 B1)
    ("DF01EF06", "pin|key:8E", "key:86"),     # UK4DF01 = 86
    ("DF01EF16", "free", "key:89"),           # 无 / UK7DF01
    ("DF03EF05", "pin|key:85", "key:86"),     # PIN 或 RK2DF03 (85) / UK1DF03 (86)
    ("DF03EF07", "pin|key:84", "key:88"),     # RK1DF03 84 / UK3DF03 88
    ("DF04EF06", "pin&key:84", "key:86"),     # PIN & RK1DF04 / UK2DF04
    ("DF04EF08", "pin", "never"),             # PIN / 不允许改写
    ("DF07EF06", "key:85", "key:86"),         # RK2DF07 / UK2DF07 (assumed IDs)
])
def test_access_rules_read_from_the_notice(file: str, read: str, write: str) -> None:
    _, ef = split_file_name(file)
    assert (str(ef.read), str(ef.write)) == (read, write)


def test_card_key_ids_given_by_part_9_table_b1_are_not_marked_assumed() -> None:
    known = {"UK1DF01": 0x83, "UK2DF01": 0x84, "UK3DF01": 0x85, "UK4DF01": 0x86,
             "UK5DF01": 0x87, "UK1DF02": 0x83, "UK5DF02": 0x87, "UK1DF03": 0x86,
             "UK2DF03": 0x87, "UK3DF03": 0x88, "UK1DF04": 0x85, "UK2DF04": 0x86,
             "RK1DF03": 0x84, "RK2DF03": 0x85, "RK1DF04": 0x84}
    for name, kid in known.items():
        assert (KEY_BY_NAME[name].card_key_id, KEY_BY_NAME[name].assumed) == (kid, False)
    assert KEY_BY_NAME["RK1DF01"].assumed and KEY_BY_NAME["UK3DF07"].assumed
    # HSM addresses of SI appendix B: RK1DF01 004F, RK1DF04 0182, UK1DF01 0097
    assert (KEY_BY_NAME["RK1DF01"].hsm, KEY_BY_NAME["RK1DF04"].hsm,
            KEY_BY_NAME["UK1DF01"].hsm) == (0x004F, 0x0182, 0x0097)
    refs = [k.ref for k in DF_KEYS]
    assert len(refs) == len(set(refs))                  # one reference per key
    assert key_ref("DF03", 0x84) == 0x384 and key_ref("SSSE", 0x0A) == 0x0A


def test_lengths_add_up_as_the_notice_states_them() -> None:
    for (file, tag), subs in SUBITEMS.items():          # B-TLV: 40 = 0x34, 43 = 0x6C, …
        parent = next(e for e in ITEMS[file] if e.tag == tag)
        assert sum(s.length + 2 for s in subs) == parent.length, (file, hex(tag))
    for file, fields in RECORD_FIELDS.items():          # cyclic: DF02EF07 0x55, DF04EF08 0x1C
        _, ef = split_file_name(file)
        assert sum(f.length for f in fields) == ef.record_size, file
    assert split_file_name("DF04EF08")[1].record_size == 0x1C
    for df in DF_BY_NAME.values():
        for ef in df.efs():
            for tag in set(ef.tags):
                assert any(e.tag == tag for e in ITEMS[df.name + ef.name])


def test_b_tlv_and_cyclic_text_round_trip() -> None:
    el = next(e for e in ITEMS["DF01EF15"] if e.tag == 0x40)
    value = dftext.item_value("DF01EF15", el, "400^080901^测试大学^")
    assert value[:5].hex().upper() == "5703343030"       # 57 03 "400"
    assert dftext.item_text("DF01EF15", el, value) == "400^080901^测试大学^"
    raw = dftext.record_bytes("DF04EF15", "0001^2^")
    assert raw.hex().upper() == "000132"
    assert dftext.record_text("DF04EF15", raw) == "0001^2^"
    with pytest.raises(BadInputError, match="items separated"):
        dftext.record_bytes("DF04EF15", "1^2^3^")


def test_record_number_of_a_repeated_identifier() -> None:
    _, ef = split_file_name("DF01EF15")              # 2A 40 40 40
    assert record_number(ef, 0x40, 2) == 3
    with pytest.raises(BadInputError):
        record_number(ef, 0x40, 4)


# -- the simulated card ----------------------------------------------------------------------

def _apdu(card, hexstr: str) -> tuple[bytes, int]:
    r = card.process(bytes.fromhex(hexstr))
    return r[:-2], int.from_bytes(r[-2:], "big")


def _sim(persona: str = "demo"):
    card, ch, sent = recorded_sim_card(persona)
    return card, ch, sent


def test_read_needs_the_pin_or_the_rk_key() -> None:
    card, _, _ = _sim()
    card.power_on()
    assert _apdu(card, "00A4040C06D15600000500")[1] == SW.OK
    assert _apdu(card, "00B2375005")[1] == SW.SECURITY_NOT_SATISFIED       # no PIN, no RK
    assert _apdu(card, "0020000003123456")[1] == SW.OK
    assert _apdu(card, "00B2375005") == (bytes.fromhex("3703000000"), SW.OK)
    assert _apdu(card, "00A4040C06D15600000501")[1] == SW.OK                # another DF
    assert _apdu(card, "00B2604805")[1] == SW.SECURITY_NOT_SATISFIED       # PIN forgotten


def test_writes_are_refused_without_the_uk_key_or_a_good_mac() -> None:
    card, _, _ = _sim()
    card.power_on()
    _apdu(card, "00A4040C06D15600000500")
    _apdu(card, "0020000003123456")                                        # PIN: read only
    assert _apdu(card, "00DC375405370343484E")[1] == SW.SECURITY_NOT_SATISFIED
    assert _apdu(card, "04DC375409370343484E01020304")[1] == SW.NO_CHALLENGE
    _apdu(card, "0084000008")
    assert _apdu(card, "04DC375409370343484E01020304")[1] == SW.SM_DATA_INCORRECT
    assert _apdu(card, "00B2375005") == (bytes.fromhex("3703000000"), SW.OK)   # unchanged


def test_pin_and_key_file_needs_both() -> None:
    card, ch, _ = _sim()
    keys = builtin_key_file()
    s = DfSession(ch)
    with pytest.raises(RefusedError, match="needs the PIN"):
        read_file(s, "DF04EF06", (ItemRef(0x90),), ReadAuth(Method.KEY, keys=keys))
    with pytest.raises(RefusedError, match="RK1DF04"):
        read_file(DfSession(ch), "DF04EF06", (ItemRef(0x90),), ReadAuth(Method.PIN, pin=PIN))
    card.power_on()                                  # and the card itself: PIN alone is not it
    _apdu(card, "00A4040C06D15600000503")
    assert _apdu(card, "0020000003123456")[1] == SW.OK
    assert _apdu(card, "00B2903005")[1] == SW.SECURITY_NOT_SATISFIED
    got = read_file(DfSession(ch), "DF04EF06", (ItemRef(0x90),),
                    ReadAuth(Method.PIN, pin=PIN, keys=keys))
    assert got.texts == ("",)


def test_medical_transactions_are_not_writable_even_with_every_key() -> None:
    card, ch, _ = _sim()
    card.power_on()
    _apdu(card, "00A4040C06D15600000503")
    _apdu(card, "0020000003123456")
    assert _apdu(card, "00E20040" + "1C" + "00" * 0x1C)[1] == SW.SECURITY_NOT_SATISFIED
    with pytest.raises(RefusedError, match="不允许改写"):
        write_file(DfSession(ch), "DF04EF08", (), ("0001^1^000001^20240101120000^^^^",),
                   builtin_key_file())


def test_cyclic_file_appends_newest_first_and_drops_the_oldest() -> None:
    _, ch, sent = _sim()
    keys = builtin_key_file()
    s = DfSession(ch)
    for i in range(10):                                  # DF04 EF15 holds 8 (table 9)
        write_file(s, "DF04EF15", (), (f"{i:04d}^{i % 3}^",), keys)
    assert any(c.startswith("00E200A803") for c in sent)  # APPEND RECORD, SFI 15
    got = read_file(s, "DF04EF15", (), ReadAuth(Method.PIN, pin=PIN)).texts
    assert len(got) == 8 and got[0] == "0009^0^" and got[-1] == "0002^2^"
    one = read_file(s, "DF04EF15", (ItemRef(None, 2),), ReadAuth(Method.PIN, pin=PIN))
    assert one.texts == ("0008^2^",)


def test_fixed_record_file_refuses_a_record_of_another_length() -> None:
    card, _, _ = _sim()
    card.power_on()
    _apdu(card, "00A4040C06D15600000502")
    assert _apdu(card, "0020000003123456")[1] == SW.OK
    assert _apdu(card, "00B279C829")[1] == SW.OK              # EF19 record 79, 0x29 bytes
    # a write granted by the UK key still checks the fixed length (6700)
    card.authenticated.add(0x8D)                              # UK8DF03 as if authenticated
    assert _apdu(card, "00DC79C80479020102")[1] == SW.WRONG_LENGTH


# -- operations -----------------------------------------------------------------------------

def test_write_then_read_items_by_identifier_and_occurrence() -> None:
    _, ch, sent = _sim()
    keys = builtin_key_file()
    s = DfSession(ch)
    write_file(s, "DF01EF15", (ItemRef(0x2A), ItemRef(0x40, 2)), ("7", "400^080901^测试大学^"),
               keys)
    got = read_file(s, "DF01EF15", (ItemRef(0x2A), ItemRef(0x40, 2)),
                    ReadAuth(Method.KEY, keys=keys))
    assert got.texts == ("7", "400^080901^测试大学^")
    assert not any(c.startswith("0020") for c in sent)     # the key method spends no PIN try
    assert any(c.startswith("0082008810") for c in sent)   # UK6DF01 (88) writes EF15
    assert any(c.startswith("0082008E10") for c in sent)   # RK1DF01 (8E) reads it


def test_secure_messaging_write_needs_no_external_authentication() -> None:
    _, ch, sent = _sim()
    keys = builtin_key_file()
    s = DfSession(ch)
    write_file(s, "DF01EF0A", (ItemRef(0x37),), ("CHN",), keys, mac=True)
    assert any(c.startswith("04DC375009") for c in sent)   # Lc = 5 data + 4 MAC
    assert not any(c.startswith("0082") for c in sent)
    got = read_file(DfSession(ch), "DF01EF0A", (ItemRef(0x37),), ReadAuth(pin=PIN))
    assert got.texts == ("CHN",)


def test_no_pin_try_is_spent_unless_asked_and_the_last_is_kept() -> None:
    card, ch, sent = _sim("lasttry")
    with pytest.raises(RefusedError, match="needs the PIN"):
        read_file(DfSession(ch), "DF01EF0A", (ItemRef(0x37),), ReadAuth())
    assert not any(c.startswith("0020") for c in sent)
    with pytest.raises(RefusedError):
        read_file(DfSession(ch), "DF01EF0A", (ItemRef(0x37),), ReadAuth(pin=PIN))
    assert not any(c.startswith("0020000003") for c in sent)
    assert card.pin.tries == 1


def test_a_key_source_without_the_df_key_sends_nothing() -> None:
    _, ch, sent = _sim()
    only_ssse = KeyFile([r for r in builtin_key_file().roots if r.card_key_id < 0x100])
    with pytest.raises(RefusedError, match="RK1DF01"):
        read_file(DfSession(ch), "DF01EF0A", (ItemRef(0x37),),
                  ReadAuth(Method.KEY, keys=only_ssse))
    assert not any(c.startswith("0082") for c in sent)


def test_df07_is_read_with_its_key_only() -> None:
    _, ch, _ = _sim()
    with pytest.raises(RefusedError, match="RK1DF07"):
        read_file(DfSession(ch), "DF07EF05", (ItemRef(0xF0),), ReadAuth(pin=PIN))


def test_persona_values_and_sm4_card() -> None:
    data = {"extends": "v3", "df_records": {
        "include": ["DF05"],
        "DF01EF0A.37": "CHN", "DF01EF15.40:3": "300^070101^某某学院^",
        "DF02EF07": ["2010101^20200101^20221231^测试公司^"],
        "DF05EF05.A2": "A"}}
    persona = persona_from_mapping(data, "dfpersona")
    card = persona.build_card()
    assert bytes.fromhex("D15600000500") in card.apps
    from sbcard.apdu.channel import ApduChannel
    from sbcard.apdu.t0 import T0Layer
    from sbcard.transport.simulated import SimulatedTransport
    link = T0Layer(SimulatedTransport(card))
    link.connect()
    ch = ApduChannel(link)
    keys = builtin_key_file()
    s = DfSession(ch)
    assert read_file(s, "DF01EF15", (ItemRef(0x40, 3),),
                     ReadAuth(Method.KEY, keys=keys)).texts == ("300^070101^某某学院^",)
    assert read_file(s, "DF02EF07", (), ReadAuth(pin=PIN)).texts == (
        "2010101^20200101^20221231^测试公司^",)
    assert read_file(s, "DF05EF05", (ItemRef(0xA2),), ReadAuth()).texts == ("A",)


def test_persona_naming_a_file_the_card_lacks_is_refused() -> None:
    with pytest.raises(BadInputError, match="names no file"):
        persona_from_mapping({"extends": "demo", "df_records": {"DF05EF05.A2": "A"}}, "x")


def test_unknown_file_names_are_one_line_errors() -> None:
    with pytest.raises(BadInputError, match="DF01 has no file EF0B"):
        split_file_name("DF01EF0B")
    with pytest.raises(BadInputError, match="not a DF file name"):
        split_file_name("SSSEEF05")
    assert split_file_name("df04ef08")[1].structure is Structure.CYCLIC


def test_card_error_for_a_missing_record() -> None:
    _, ch, _ = _sim()
    with pytest.raises(CardError):
        read_file(DfSession(ch), "DF01EF15", (ItemRef(0x40, 4),), ReadAuth(pin=PIN))


def test_select_df_by_fid_is_scoped_to_the_ssse() -> None:
    card, _, _ = _sim()
    card.power_on()
    assert _apdu(card, "00A4000002DF01")[1] == SW.FILE_NOT_FOUND     # from the MF: not there
    _apdu(card, "00A404000F7378312E73682EC9E7BBE1B1A3D5CF")          # SSSE by name
    data, sw = _apdu(card, "00A4000002DF01")
    assert sw == SW.OK and data.hex().upper() == "6F088406D15600000500"


def test_each_simulated_card_has_its_own_df_records() -> None:
    """Empty records are encoded once per process (sbcard.sim.dfs._default_record is cached):
    every card still gets its own copy, so writing one card's DF record leaves the others."""
    persona = persona_from_mapping({"extends": "v3"}, "two cards")

    def records(card) -> dict:
        return {(bytes(name).hex(), fid): ef.records for name, df in card.apps.items()
                if df is not card.mf for fid, ef in df.efs.items() if ef.records}

    first, second = records(persona.build_card()), records(persona.build_card())
    assert first and first == second
    key = next(iter(first))
    first[key][0][-1] ^= 0xFF                           # a write on the first card only
    assert second[key][0] != first[key][0]
    assert second == records(persona.build_card())
