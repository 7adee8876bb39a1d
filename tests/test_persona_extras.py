"""Persona sections: the optional ones ([extra.pki], [extra.purse], [bank], [faults]) typed,
and every section validated once at load in one error style (``persona FILE: [section] key:
what is wrong``), the card profile loader's."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from sbcard.errors import BadInputError
from sbcard.sim.extras import BankPersona, FaultAnswer, FaultsPersona, PkiPersona, PursePersona
from sbcard.sim.persona import load_persona, persona_from_mapping

PAN = 'pan = "6217009999000000016"\nexpiry = "310630"\n'


def test_shipped_personas_carry_typed_sections() -> None:
    medical = load_persona("medical")
    assert medical.purse == PursePersona(cia=50000, pay_year=2026, key_index=1)
    assert medical.bank == BankPersona(pan="6217009999000000016", expiry="310630")
    pdol = load_persona("pdol").bank
    assert pdol is not None and (pdol.record_sfi, pdol.pdol_length) == (2, 1 + 6 + 2)
    blank3 = load_persona("blank3").pki
    assert blank3 == PkiPersona(issued=False, key_pair=False, user_pin="123456")
    assert load_persona("demo").pki is None and load_persona("demo").faults is None


def test_typed_values_reach_the_simulated_card() -> None:
    key = "11" * 32
    card = persona_from_mapping({"extends": "v3", "extra": {"pki": {
        "key": key, "not_before": date(2010, 1, 1), "not_after": "2011-06-30"}}}).build_card()
    assert card.pki.key.to_bytes().hex() == key
    assert card.pki.certificate.not_after.date() == date(2011, 6, 30)
    purse = persona_from_mapping({"extends": "medical", "extra": {"purse": {
        "cia": 7, "dpk": "00" * 16, "starting_day": "0401"}}}).build_card().purse
    assert (purse.cia, purse.dpk, purse.starting_day) == (7, bytes(16), b"\x04\x01")
    faults = persona_from_mapping({"extends": "demo", "faults": {
        "answer": [{"match": "00 b2", "sw": "6a83", "times": 2}]}}).faults
    assert faults == FaultsPersona(answer=(FaultAnswer(0x6A83, "00B2", b"", 2),))


def test_serve_options_add_to_the_persona_faults() -> None:
    base = FaultsPersona(tear_on="00DC", answer=(FaultAnswer(0x6A83, "00B2"),))
    more = FaultsPersona(tear_at=3, answer=(FaultAnswer(0x6581, "00A4"),))
    both = base.adding(more)
    assert (both.tear_at, both.tear_on) == (3, "00DC")
    assert [a.sw for a in both.answer] == [0x6A83, 0x6581]


@pytest.mark.parametrize(("text", "where", "what"), [
    # the core sections, in the same style
    ('holder = 3\n', "[holder]", "must be a table"),
    ('description = 3\n', "description", "must be text"),
    ('[pin]\ntries = 16\n', "[pin] tries", "must be a whole number 0-15"),
    ('[pin]\ntries = 3\nmax_tries = 2\n', "[pin] tries", "is more than max_tries"),
    ('[pin]\nvalue = 123456\n', "[pin] value", "must be 4-16 digits 0-9 as text"),
    ('[card]\ncolour = "red"\n', "[card] colour", "unknown field"),
    ('[card]\ncard_blocked = "yes"\n', "[card] card_blocked", "must be true or false"),
    ('[holder]\nsex = 1\n', "[holder] sex", "must be text (quoted)"),
    ('[behaviour]\nfast = true\n', "[behaviour]", "unknown key(s) fast"),
    ('[behaviour]\nmulti_record = "no"\n', "[behaviour] multi_record",
     "must be true or false"),
    ('[behaviour]\nsfi_refused_sw = 0x1234\n', "[behaviour] sfi_refused_sw",
     "must be a status word 0x6000..0x9FFF"),
    # [extra]
    ('[extra.bank]\npan = "1"\n', "[extra]", "unknown key(s) bank"),
    ('extra = 3\n', "[extra]", "must be a table"),
    # [extra.pki]
    ('[extra.pki]\nenabled = "no"\n', "[extra.pki] enabled", "must be true or false"),
    ('[extra.pki]\nkey = "11"\n', "[extra.pki] key", "must be 32 byte(s), got 1"),
    ('[extra.pki]\nkey = "' + "00" * 32 + '"\n', "[extra.pki] key", "SM2 private key"),
    ('[extra.pki]\nnot_before = "2020-13-01"\n', "[extra.pki] not_before",
     "must be a date YYYY-MM-DD"),
    ('[extra.pki]\nuser_pin = 123456\n', "[extra.pki] user_pin", "digits 0-9 as text"),
    ('[extra.pki]\nissued = true\nkey_pair = false\n', "[extra.pki] issued",
     "needs a key pair"),
    ('[extra.pki]\ncolour = "red"\n', "[extra.pki]", "unknown key(s) colour"),
    # [extra.purse]
    ('[extra.purse]\ncia = -1\n', "[extra.purse] cia", "must be an integer 0..4294967295"),
    ('[extra.purse]\ncia = "500"\n', "[extra.purse] cia", "must be an integer"),
    ('[extra.purse]\nseq = 65536\n', "[extra.purse] seq", "must be an integer 0..65535"),
    ('[extra.purse]\nstarting_day = "1301"\n', "[extra.purse] starting_day",
     "must be a day mmdd"),
    ('[extra.purse]\ndpk = "00"\n', "[extra.purse] dpk", "must be 16 byte(s)"),
    ('[extra.purse]\npurchase_type = "0606"\n', "[extra.purse] purchase_type",
     "must be 1 byte(s)"),
    ('[extra.purse]\nbalance = 1\n', "[extra.purse]", "unknown key(s) balance"),
    # [bank]
    ('[bank]\npan = "12"\nexpiry = "310630"\n', "[bank] pan", "12-19 digits"),
    ('[bank]\npan = "6217009999000000016"\n', "[bank] expiry", "must be 6 digits"),
    ('[bank]\n' + PAN + 'pdol = "9F"\n', "[bank] pdol", ""),
    ('[bank]\n' + PAN + 'record_sfi = 11\n', "[bank] record_sfi", "must be an integer 1..10"),
    ('[bank]\n' + PAN + 'gpo_sw = "69"\n', "[bank] gpo_sw", "must be 2 byte(s)"),
    ('[bank]\n' + PAN + 'aid = "A000"\n', "[bank] aid", "must be 5-16 bytes"),
    ('[bank]\n' + PAN + 'pse = 1\n', "[bank] pse", "must be true or false"),
    ('[bank]\n' + PAN + 'track = "x"\n', "[bank]", "unknown key(s) track"),
    # [faults]
    ('[faults]\ntear_at = "5"\n', "[faults] tear_at", "must be an integer"),
    ('[faults]\ntear_on = "00Z2"\n', "[faults] tear_on", "must be a command prefix in hex"),
    ('[faults]\ndelay_ms = -1\n', "[faults] delay_ms", "must be a number 0..60000"),
    ('[faults]\ndelay_ms = nan\n', "[faults] delay_ms", "must be a number 0..60000"),
    ('[faults]\nanswer = "00B2=6A83"\n', "[faults] answer", "must be a list of tables"),
    ('[[faults.answer]]\nmatch = "00B2"\n', "[faults.answer.1] sw", "missing"),
    ('[[faults.answer]]\nsw = "6A83"\n[[faults.answer]]\nsw = "6A8"\n',
     "[faults.answer.2] sw", "odd number of hex digits"),
    ('[[faults.answer]]\nsw = "6A83"\ntimes = 0\n', "[faults.answer.1] times",
     "must be an integer 1.."),
    ('[faults]\ntear_sometimes = 1\n', "[faults]", "unknown key(s) tear_sometimes"),
])
def test_each_section_refuses_bad_values_in_one_style(tmp_path: Path, text: str, where: str,
                                                      what: str) -> None:
    path = tmp_path / "odd.toml"
    path.write_text('extends = "v3"\nname = "odd"\n' + text, "utf-8")
    with pytest.raises(BadInputError) as exc:
        load_persona(str(path))
    message = str(exc.value)
    prefix = f"persona {path}: " + (f"{where}: " if where else "")
    assert message.startswith(prefix), message
    assert what in message and "\n" not in message
