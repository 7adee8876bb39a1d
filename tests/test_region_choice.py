"""The regional overlay chosen from the card's issuing region (card/profiles/regions.toml).

发卡地区行政区划代码 = the first 6 digits of 卡的识别码 (EF05 01; sscard-spec §3.3), GB/T 2260
(32 = 江苏省). Without --profile, ``record read/write`` read it first and take the overlay the
table gives; the choice is said on stderr and in ``--json`` (``profile``), never silent.
Personas: ``jiangsu`` (region 320899, synthetic) and ``demo`` (519900, no overlay).
"""

from __future__ import annotations

import json

import pytest

from sbcard.card.profiles import (
    RegionRule,
    _region_rules,
    choose_profile,
    load_profile,
    region_rules,
    rule_for_region,
)
from sbcard.errors import BadInputError
from tests.cli_runner import run_cli


@pytest.fixture(autouse=True)
def _no_env_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SBCARD_KEYS", raising=False)


def test_the_table_maps_jiangsu_and_nothing_else() -> None:
    assert [(r.prefix, r.overlay) for r in region_rules()] == [("32", "jiangsu")]
    assert rule_for_region("320899").overlay == "jiangsu"          # type: ignore[union-attr]
    assert rule_for_region("519900") is None
    assert rule_for_region("") is None and rule_for_region(None) is None
    rules = (RegionRule("32", "jiangsu", "a"), RegionRule("3201", "jiangsu", "b"))
    assert rule_for_region("320100", rules).source == "b"          # type: ignore[union-attr]
    assert rule_for_region("320899", rules).source == "a"          # type: ignore[union-attr]


def test_table_errors_are_one_line_in_the_profile_style() -> None:
    with pytest.raises(BadInputError, match=r"^card profile x: \[by_region\] 3: the key is"):
        _region_rules({"by_region": {"3": {"overlay": "jiangsu", "source": "s"}}}, "card profile x")
    with pytest.raises(BadInputError, match=r"\[by_region.32\] overlay: 'mars' is not a shipped"):
        _region_rules({"by_region": {"32": {"overlay": "mars", "source": "s"}}}, "card profile x")
    with pytest.raises(BadInputError, match=r"\[by_region.32\] source: missing"):
        _region_rules({"by_region": {"32": {"overlay": "jiangsu"}}}, "card profile x")
    with pytest.raises(BadInputError, match=r"unknown key\(s\) regions"):
        _region_rules({"regions": {}}, "card profile x")


def test_choice_named_region_default() -> None:
    named = choose_profile("mohrss-3.0", "320899")
    assert (named.how, named.profile.name) == ("named", "mohrss-3.0")   # the operator wins
    auto = choose_profile(None, "320899")
    assert (auto.how, auto.profile.name) == ("region", "mohrss-2.0+jiangsu")
    assert "320899" in auto.notice() and "overlay jiangsu" in auto.notice()
    other = choose_profile(None, "519900")
    assert (other.how, other.profile.name) == ("default", "mohrss-2.0")
    assert "no regional overlay" in other.notice()
    # a base that already has regional files gets no second overlay
    assert choose_profile(None, "320899", load_profile("mohrss-3.0+jiangsu")).how == "default"


def test_jiangsu_card_reads_ef0d_without_profile_and_says_so(capsys) -> None:
    code, out, err = run_cli(capsys, "--sim", "jiangsu", "record", "read", "SSSEEF0D", "EA",
                             "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["profile"] == "mohrss-2.0+jiangsu"
    assert data["items"][0]["text"] == "JS9900000012"
    assert "issuing region 320899 starts with 32 → overlay jiangsu" in err
    # the operator's --profile is taken as given: no notice, the profile in --json
    code, out, err = run_cli(capsys, "--sim", "jiangsu", "record", "read", "SSSEEF0D", "EA",
                             "--profile", "mohrss-3.0+jiangsu", "--json")
    assert code == 0 and json.loads(out)["profile"] == "mohrss-3.0+jiangsu"
    assert "overlay" not in err


def test_jiangsu_card_writes_ef0d_through_the_psam_without_profile(capsys) -> None:
    args = ("--sim", "jiangsu", "--psam", "sim:jiangsu", "--trace")
    code, out, err = run_cli(capsys, *args, "record", "write", "SSSEEF0D", "EA=JS9900000099",
                             "--json")
    assert code == 0, err
    assert json.loads(out)["profile"] == "mohrss-2.0+jiangsu"
    assert "BFDE481318" in err and "0082000D10" in err            # PSAM 48/13, card key 0D


def test_other_card_gets_no_overlay_and_is_told(capsys) -> None:
    code, out, err = run_cli(capsys, "--sim", "demo", "record", "read", "SSSEEF0D")
    assert code == 3
    assert "card profile mohrss-2.0: issuing region 519900, no regional overlay" in err
    assert "profile mohrss-2.0 knows the SSSE files SSSEEF07, SSSEEF08" in err
    code, out, err = run_cli(capsys, "--sim", "demo", "--keys", "test", "record", "read",
                             "DF01EF0A", "37", "--auth", "key", "--json")
    assert code == 0, err
    assert json.loads(out)["profile"] == "mohrss-2.0"
    assert "issuing region 519900" in err
