"""The simulated card OS, command by command, through the in-process transport."""

import pytest

from sbcard.apdu.t0 import T0Layer
from sbcard.card.filesystem import SSSE_NAME
from sbcard.errors import BadInputError, CardRemovedError, NoCardError
from sbcard.sim.persona import load_persona, persona_from_mapping
from sbcard.transport.base import CardTornError
from sbcard.transport.simulated import SimulatedTransport

SELECT_SSSE = "00A404000F" + SSSE_NAME.hex() + "00"


def card_link(persona="demo", *, raw=False):
    """The card behind the T=0 layer, as sessions build it (``raw``: the bare exchange, for
    tests of the 61xx/6Cxx answers themselves)."""
    card = load_persona(persona).build_card()
    t = SimulatedTransport(card)
    if not raw:
        t = T0Layer(t)
    t.connect()
    return card, t


def tx(t, apdu: str) -> str:
    return t.transmit(bytes.fromhex(apdu)).hex().upper()


def test_select_ssse_returns_fci_with_algorithm():
    _, t = card_link("v3")
    fci = tx(t, SELECT_SSSE)
    assert fci.startswith("6F1C840F" + SSSE_NAME.hex().upper())
    assert "9F0C03860103" in fci and fci.endswith("9000")


def test_select_unknown_name_and_file():
    _, t = card_link()
    assert tx(t, "00A4040005A00000000100") == "6A82"
    tx(t, SELECT_SSSE)
    assert tx(t, "00A4020002EF0C") == "6A82"
    assert tx(t, "00A4020002EF05")[-4:] == "9000"


@pytest.mark.parametrize(
    ("apdu", "expect_prefix"),
    [
        ("00B2070400", "0709"),        # record number 7 of current EF (after SELECT EF05)
        ("00B2070000", "0709"),        # first record with identifier 07
        ("00B2072C00", "0709"),        # record number 7 of SFI 5
        ("00B2072800", "0709"),        # identifier 07 in SFI 5
        ("00B2010540", "0110"),        # records 1..last, Le = 0x40 exactly
    ],
)
def test_read_record_every_p2_mode(apdu, expect_prefix):
    _, t = card_link()
    tx(t, SELECT_SSSE)
    tx(t, "00A4020002EF05")
    answer = tx(t, apdu)
    assert answer.startswith(expect_prefix) and answer.endswith("9000")


def test_read_record_last_to_first_and_next_previous():
    _, t = card_link()
    tx(t, SELECT_SSSE)
    assert tx(t, "00B2052E00").startswith("0709")            # mode 110: last..5, so 07 first
    assert tx(t, "00B2022800").startswith("0201")            # id 02 (first)
    assert tx(t, "00B2032A00").startswith("0304")            # next occurrence of 03 after ptr
    assert tx(t, "00B2022B00").startswith("0201")            # previous occurrence of 02
    assert tx(t, "00B2032A00").startswith("0304")
    assert tx(t, "00B2032A00") == "6A83"                     # no further 03


def test_read_record_wrong_le_gives_6cxx():
    _, t = card_link(raw=True)
    tx(t, SELECT_SSSE)
    assert tx(t, "00B2072C05") == "6C0B"
    assert tx(t, "00B2072C0B").endswith("9000")


def _builtin_personas() -> list[str]:
    from sbcard.sim.persona import builtin_personas

    return builtin_personas()


@pytest.mark.parametrize("persona", _builtin_personas())
def test_every_persona_answers_a_wrong_le_with_6cxx(persona):
    """Part 5 §6.10.4 (READ RECORD): "当 Le=00 时，应以 6Cxx 返回可读的实际长度", and a wrong
    Le gets the actual length the same way (ISO 7816-3 §10.3.3, 6Cxx). EF05 record 07 (卡号,
    an 9: ``07 09`` ‖ 9 characters) is 0x0B bytes on every card. Read after SELECT EF (P2 04,
    the current EF), which every persona takes (``selectef`` refuses SFI reads)."""
    _, t = card_link(persona, raw=True)
    selected = tx(t, SELECT_SSSE)
    if persona == "appblocked":        # a blocked application answers 9303 before any Le rule
        assert selected == "9303" and tx(t, "00B2072C00") == "9303"
        return
    assert selected[-4:] in ("9000", "611E"), selected
    assert tx(t, "00A4020002EF05")[-4:] == "9000"
    for wrong in ("00", "05", "0A", "0C", "FF"):
        assert tx(t, "00B20704" + wrong) == "6C0B", wrong
    answer = tx(t, "00B207040B")
    assert answer.startswith("0709") and answer.endswith("9000") and len(answer) == 2 * 13


def test_le_zero_6c_quirk_and_no_multi_record():
    _, t = card_link("t0quirks", raw=True)
    tx(t, SELECT_SSSE)
    tx(t, "00C0000000")
    assert tx(t, "00B2072C00") == "6C0B"
    assert tx(t, "00B2012D00") == "6A86"


def test_t0_get_response_flow():
    _, t = card_link("t0quirks", raw=True)
    first = tx(t, SELECT_SSSE)
    assert first == "611E"
    part = tx(t, "00C0000010")
    assert part.endswith("610E") and len(part) == 2 * (16 + 2)
    assert tx(t, "00C000000F") == "6C0E"
    assert tx(t, "00C000000E").endswith("9000")
    assert tx(t, "00C0000010") == "6985"                     # nothing pending any more


def test_missing_record_and_no_current_ef():
    _, t = card_link()
    tx(t, SELECT_SSSE)
    assert tx(t, "00B2010400") == "6986"
    assert tx(t, "00B2402C00") == "6A83"
    assert tx(t, "00B2012400") == "6A82"                     # SFI 4 does not exist


def test_access_rules_ef06_on_v3_and_photo():
    _, t = card_link("v3")
    tx(t, SELECT_SSSE)
    assert tx(t, "00B2083000") == "6982"                     # EF06 needs RKSSSE on 3.0
    assert tx(t, "00B0880000") == "6982"                     # EF08 photo needs RKSSSE
    _, t2 = card_link("demo")
    tx(t2, SELECT_SSSE)
    assert tx(t2, "00B2083000").startswith("0812")


def test_update_record_needs_ukssse():
    card, t = card_link()
    tx(t, SELECT_SSSE)
    assert tx(t, "00DC0A30030A0132") == "6982"
    card.authenticated.add(0x04)                             # as after EXTERNAL AUTH with key 04
    assert tx(t, "00DC0A30030A0132") == "9000"
    assert tx(t, "00B20A3000") == "0A01329000"
    assert tx(t, "00DC0A30030B0101") == "6A80"               # tag ≠ record identifier
    assert tx(t, "00DC0A3003" + "0A0501") == "6A85"          # not one SIMPLE-TLV


def test_read_and_update_binary():
    card, t = card_link()
    tx(t, SELECT_SSSE)
    card.authenticated.update({0x04, 0x0A})
    assert tx(t, "00D6880004CAFEBABE") == "9000"             # SFI 8 (EF08), offset 0
    assert tx(t, "00B0880004") == "CAFEBABE9000"
    assert tx(t, "00B00FFE04") == "00009000" or tx(t, "00B00FFE04").endswith("6282")
    assert tx(t, "00B0110000") == "6B00"                     # offset past the 4 KiB file


def test_get_challenge_lengths():
    card, t = card_link()
    for le in (4, 8, 16):
        answer = t.transmit(bytes([0, 0x84, 0, 0, le]))
        assert len(answer) == le + 2 and answer[-2:] == b"\x90\x00"
        assert card.challenge == answer[:-2]
    assert tx(t, "0084000005") == "6700"


def test_verify_counts_down_and_query_spends_nothing():
    card, t = card_link()
    tx(t, SELECT_SSSE)
    assert tx(t, "0020000000") == "63C3"
    assert tx(t, "0020000003999999") == "63C2"
    assert tx(t, "0020000000") == "63C2"
    assert tx(t, "0020000003123456") == "9000"
    assert card.pin.tries == 3
    for expected in ("63C2", "63C1", "6983", "6983"):
        assert tx(t, "0020000003000000") == expected
    assert tx(t, "0020000003123456") == "6983"               # blocked even with the right PIN
    assert tx(t, "0020000000") == "6983"


def test_change_pin():
    card, t = card_link()
    tx(t, SELECT_SSSE)
    assert tx(t, "805E010007111111FF654321") == "63C2"
    assert tx(t, "805E010007123456FF654321") == "9000"
    assert card.pin.value == "654321"
    assert tx(t, "0020000003654321") == "9000"
    assert tx(t, "805E0100041234FF") == "6700"               # too short to hold two PINs
    assert tx(t, "805E010007123456EE654321") == "6A80"       # no FF separator


def test_application_and_card_block():
    card, t = card_link()
    card.apps[SSSE_NAME].blocked = True
    assert tx(t, SELECT_SSSE) == "9303"
    assert tx(t, "00B2072C00") == "9303"
    card.card_blocked = True
    assert tx(t, "00A40000023F00") == "6A81"


def test_unknown_instruction_class_and_garbage():
    _, t = card_link()
    assert tx(t, "00FF0000") == "6D00"
    assert tx(t, "A0A40000") == "6E00"
    assert tx(t, "00A4040005AABB") == "6700"


def test_security_state_cleared_on_power_off():
    card, t = card_link()
    tx(t, SELECT_SSSE)
    tx(t, "0020000003123456")
    assert card.pin_verified
    t.reset()
    assert not card.pin_verified and card.current_df is card.mf


def test_torn_card_surfaces_as_card_removed():
    card, t = card_link()

    def torn(_raw):
        raise CardTornError()

    card.process = torn
    with pytest.raises(CardRemovedError):
        t.transmit(bytes.fromhex("00A40000"))
    with pytest.raises(NoCardError):
        t.transmit(bytes.fromhex("00A40000"))


def test_v1_layout_has_no_name_extension():
    _, t = card_link("v1")
    tx(t, SELECT_SSSE)
    assert tx(t, "00B24E3000") == "6A83"
    assert tx(t, "00B2033400").startswith("0A01")           # record 3 of EF06 is 性别 on 1.0


@pytest.mark.parametrize("digits", [4, 12, 13, 16])
def test_persona_pin_value_takes_4_to_16_digits(digits):
    """Part 5 §6.14: VERIFY Lc 02–08 (cn), so a PIN is 4–16 digits: a persona can hold any
    PIN the card can (was 4–12), and the simulated card verifies it."""
    pin = "1357924680135792"[:digits]
    card = persona_from_mapping({"name": "p", "card": {"region": "110000",
                                                      "card_no": "D2143569X"},
                                 "pin": {"value": pin}}, "p").build_card()
    t = T0Layer(SimulatedTransport(card))
    t.connect()
    tx(t, SELECT_SSSE)
    block = pin + "F" * (digits % 2)
    assert tx(t, f"00200000{len(block) // 2:02X}{block}") == "9000"


@pytest.mark.parametrize("value", ["123", "12345678901234567", "１２３４５６", 123456])
def test_persona_pin_value_outside_4_to_16_ascii_digits_is_refused(value):
    with pytest.raises(BadInputError, match=r"\[pin\] value: must be 4-16 digits 0-9 as text"):
        persona_from_mapping({"name": "p", "pin": {"value": value}}, "p")


def test_persona_errors_are_clear(tmp_path):
    with pytest.raises(BadInputError, match="no persona 'nope'"):
        load_persona("nope")
    with pytest.raises(BadInputError, match=r"\[holder\] shoe_size: unknown field"):
        persona_from_mapping({"holder": {"shoe_size": 42}})
    with pytest.raises(BadInputError, match=r"persona x: .*姓名"):
        persona_from_mapping({"name": "x", "holder": {"name": "测试\U00020000"}}, "x")
    bad = tmp_path / "bad.toml"
    bad.write_text("name = [", encoding="utf-8")
    with pytest.raises(BadInputError, match=r"bad\.toml"):
        load_persona(str(bad))


def test_persona_from_json_file(tmp_path):
    f = tmp_path / "p.json"
    f.write_text('{"name": "j", "card": {"region": "110000", "card_no": "D2143569X"}}',
                 encoding="utf-8")
    card = load_persona(str(f)).build_card()
    t = T0Layer(SimulatedTransport(card))
    t.connect()
    tx(t, SELECT_SSSE)
    assert bytes.fromhex(tx(t, "00B2072C00")[4:-4]) == b"D2143569X"


def test_a_failing_handler_answers_6f00_and_is_logged(caplog):
    """sim/os_base.py: a card answers whatever happens inside it (6F00, no diagnosis) and the
    failure reaches the ``sbcard.sim.os_base`` logger (imported only on this path)."""
    card = load_persona("demo").build_card()

    def broken(c, cmd):
        raise RuntimeError("handler bug")

    card.handlers[0xB0] = broken
    card.handlers[0xB2] = lambda c, cmd: (b"", 0x1234)     # not a status word
    card.power_on()
    with caplog.at_level("ERROR", logger="sbcard.sim.os_base"):
        assert card.process(bytes.fromhex("00B0000010")).hex().upper() == "6F00"
        assert card.process(bytes.fromhex("00B2010C00")).hex().upper() == "6F00"
    messages = [r.getMessage() for r in caplog.records if r.name == "sbcard.sim.os_base"]
    assert messages == ["simulated card OS failed on 00B00000; answering 6F00",
                        "simulated card OS gave status word 4660 to 00B2010C; answering 6F00"]
    assert caplog.records[0].exc_info is not None
