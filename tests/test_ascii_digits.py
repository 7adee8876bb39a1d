"""Digits are 0-9 only: ``str.isdigit`` also takes full-width (１２３) and other scripts'
digits, and ``int``/``strptime`` then read them as numbers (issue #10 §2, "ASCII-only number
checks"). One test per place that took outside input through ``isdigit``."""

from __future__ import annotations

import tomllib
from importlib.resources import files

import pytest

from sbcard.errors import BadInputError

FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


def test_full_width_digits_are_digits_to_python():
    # why the checks need isascii(): this is what they would otherwise let through
    assert "２０２６".isdigit() and int("２０２６") == 2026


def test_persona_bank_expiry_in_full_width_digits_is_refused():
    from sbcard.sim.persona import persona_from_mapping

    text = (files("sbcard.sim") / "personas" / "demo.toml").read_text(encoding="utf-8")
    data = tomllib.loads(text)
    persona_from_mapping(data, "demo").build_card()                  # as shipped: fine
    data["bank"]["expiry"] = data["bank"]["expiry"].translate(FULL_WIDTH)
    with pytest.raises(BadInputError, match="expiry"):
        persona_from_mapping(data, "demo").build_card()


def test_debit_time_in_full_width_digits_is_bad_data():
    from sbcard.national.codes import NationalError
    from sbcard.national.debit import parse_pay_info

    assert parse_pay_info("1.00|0.50|20261206101500|").time.hour == 10
    with pytest.raises(NationalError, match="交易时间应为YYYYMMDDHHMMSS"):
        parse_pay_info("1.00|0.50|" + "20261206101500".translate(FULL_WIDTH) + "|")


def test_national_version_leaves_full_width_text_as_it_is():
    from sbcard.national.lines import national_version

    assert national_version("3.0") == "3.00"
    assert national_version("３.０") == "３.０"          # not "3.０0"


def test_service_integer_parameter_in_full_width_digits_is_refused():
    from sbcard.service.functions import BadRequest, Param, coerce

    assert coerce(Param("iType", int), " 3 ", "iReadCardBas") == 3
    with pytest.raises(BadRequest, match="a whole number expected"):
        coerce(Param("iType", int), "３", "iReadCardBas")


def test_holder_ethnicity_hint_only_for_an_ascii_digit():
    from sbcard.ops.holders import excel_hint

    assert "write 01" in (excel_hint("ethnicity", "1") or "")
    assert excel_hint("ethnicity", "１") is None
    assert "write 20260101" in (excel_hint("issue_date", "2026/1/1") or "")
    assert excel_hint("issue_date", "２０２６/1/1") is None
