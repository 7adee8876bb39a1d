"""The national iReadCard / iWriteCard (+ HSM steps) on SSSE files other than EF05/EF06, and
the session's card profile (regional overlay, HSM key addresses).

Address form: Sichuan reader-interface spec §2.1.2 (4) — a file is "ADF 的文件标识符和 AEF 的
文件标识符" (``SSSEEF05``), a transparent file is named alone and read whole — so EF07 指纹 is
``SSSEEF07|$`` and Jiangsu's EF0D ``SSSEEF0D|EA|EB|$``. Key addresses: appendix B.1 (RKSSSE
004C 指纹和相片信息读取, UKSSSE 0094). Public code with the same strings: an ActiveX
``iReadCard_HSM_Step1`` answering ``SSSEEF07``/``SSSEEF08`` with ``004C0A``, a reader DLL's
file table with ``SSSEEF07``/``SSSEEF08`` as transparent (sbcard/national/dffiles.py).
HSM answers come from ``tests/national_hsm.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sbcard.card.dfs import KEY_BY_NAME
from sbcard.card.filesystem import KEY_RKSSSE
from sbcard.card.profiles import load_profile
from sbcard.keys.hsm import HsmStepSource, NationalHsmSource, hsm_address_map
from sbcard.keys.psam import PsamKeySource
from sbcard.national import codes
from sbcard.national.config import DriverConfig, from_mapping
from sbcard.national.driver import SSCardDriver
from sbcard.national.flows import ClassifiedKeys
from sbcard.national.lines import split_fields
from sbcard.national.pinsource import FixedPinSource
from sbcard.sim.persona import load_persona
from tests.national_hsm import national_answer
from tests.test_national import driver
from tests.test_regional import DF06_OVERLAY

#: The v3 persona's EF07 placeholder (sbcard/sim/personas/v3.toml), as iReadCard's hex.
FINGER_HEX = b"SBCARD SYNTHETIC FINGERPRINT TEMPLATE".hex().upper()


def _info(d: SSCardDriver) -> str:
    code, line = d.iReadCardBas(1)
    assert code == 0, line
    f = split_fields(line)
    return f"{f[3]}|{f[2]}|"


def _card(d: SSCardDriver) -> str:
    """The HSM's first line (区划|复位信息|算法标识|) from iReadCardBas_HSM_Step1."""
    code, step1 = d.iReadCardBas_HSM_Step1(1)
    assert code == 0, step1
    f = split_fields(step1)
    return f"{f[0]}|{f[1]}|{f[2]}|"


def test_ef07_by_its_national_name_transparent_whole() -> None:
    d = driver("v3")
    info = _info(d)
    code, out = d.iReadCard(1, 1, info, "SSSEEF07|$")    # RKSSSE whatever iAuthType
    assert code == 0 and out.startswith("SSSEEF07|" + FINGER_HEX) and out.endswith("|$")
    assert len(split_fields(out.removesuffix("$"))[1]) == 2 * 0x300      # the whole file
    assert d.iReadCard(1, 2, info, "SSSEEF07|01|$")[1] == out   # an item after it: ignored
    code, out = d.iReadCard(1, 2, info, "SSSEEF05|07|$SSSEEF07|$")
    assert code == 0 and out.startswith("SSSEEF05|C0000018X|$SSSEEF07|" + FINGER_HEX)
    assert driver("v3", key_source="none").iReadCard(1, 1, info, "SSSEEF07|$")[0] \
        == codes.NO_PSAM


def test_ef07_through_the_hsm_steps_at_appendix_b_addresses() -> None:
    d = driver("v3", key_source="none")
    info, card = _info(driver("v3")), _card(d)
    code, s1 = d.iReadCard_HSM_Step1(1, info, "SSSEEF07|$")
    assert code == 0 and split_fields(s1)[:2] == ["03", "004C"]          # RKSSSE v1
    code, out = d.iReadCard_HSM_Step2(national_answer(card, s1))
    assert code == 0 and out.startswith("SSSEEF07|" + FINGER_HEX)
    new = "AB" * 0x300
    code, s1 = d.iWriteCard_HSM_Step1(1, info, "SSSEEF07|$")
    assert code == 0 and split_fields(s1)[:2] == ["03", "0094"]          # UKSSSE v1
    assert d.iWriteCard_HSM_Step2(national_answer(card, s1), f"SSSEEF07|{new}|$") == (0, "")
    code, s1 = d.iReadCard_HSM_Step1(1, info, "SSSEEF07|$")       # same simulated card
    assert d.iReadCard_HSM_Step2(national_answer(card, s1)) == (0, f"SSSEEF07|{new}|$")


def test_jiangsu_card_gets_its_overlay_by_region_and_it_is_logged(tmp_path: Path) -> None:
    log = tmp_path / "driver.log"
    d = driver("jiangsu", log_file=str(log))
    info = _info(d)
    assert d.iReadCard(1, 1, info, "SSSEEF0D|EA|EB|$") == (
        0, "SSSEEF0D|JS9900000012|320899|$")
    assert "issuing region 320899 starts with 32 → overlay jiangsu" in d.profile_notes[-1]
    assert "card profile" in log.read_text("utf-8") and "overlay jiangsu" in log.read_text(
        "utf-8")
    assert d.iWriteCard(1, info, "SSSEEF0D|EA|$", "SSSEEF0D|JS9900000077|$") == (0, "")
    assert d.iReadCard(1, 1, info, "SSSEEF0D|EA|$") == (0, "SSSEEF0D|JS9900000077|$")
    assert d.iReadCard_HSM_Step1(1, info, "SSSEEF0D|EA|$")[0] == codes.HSM_NOT_NEEDED  # free
    # card key 0D has no public HSM address ([JSK] shows the PSAM only): −23, said why
    code, text = d.iWriteCard_HSM_Step1(1, info, "SSSEEF0D|EA|$")
    assert code == codes.BAD_DATA and "0D" in text and "无加密机密钥地址" in text
    # EF05/EF06 stay the issuer's (sbcard's choice): −23 before the card is touched
    assert d.iWriteCard(1, info, "SSSEEF06|09|$", "SSSEEF06|X|$")[0] == codes.BAD_DATA


def test_jiangsu_card_writes_ef0d_through_the_driver_psam_without_profile(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The driver opens its PSAM once for every card; the overlay chosen for this card by its
    # region (regions.toml "32" → jiangsu) reaches the PSAM key map for the call: card key
    # 0D → PSAM usage 48 ID 13 (region-jiangsu.toml, [JSK] BFDE481318). Before, this needed
    # driver.toml [card] profile (−2201 "has no key for key 0D" without it).
    d = driver("jiangsu", key_source="psam", psam="sim:jiangsu")
    info = _info(d)                                  # IRK through the PSAM: it is open now
    keys = d.key_source()
    assert isinstance(keys, ClassifiedKeys) and isinstance(keys.inner, PsamKeySource)
    psam = keys.inner
    sent: list[str] = []
    transmit = psam.channel.transport.transmit
    monkeypatch.setattr(psam.channel.transport, "transmit",
                        lambda apdu: sent.append(apdu.hex().upper()) or transmit(apdu))
    assert d.iWriteCard(1, info, "SSSEEF0D|EA|$", "SSSEEF0D|JS9900000077|$") == (0, "")
    assert any(apdu.startswith("BFDE481318") for apdu in sent)       # PSAM 48/13
    assert "overlay jiangsu" in d.profile_notes[-1]
    assert d.iReadCard(1, 1, info, "SSSEEF0D|EA|$") == (0, "SSSEEF0D|JS9900000077|$")
    assert d.iWriteCard(1, info, "SSSEEF0D|EA|$", "SSSEEF0D|JS9900000078|$") == (0, "")
    # one PSAM for every call, and the shared source keeps the default profile's map
    assert d.key_source() is keys and 0x0D not in psam.key_map
    # named in the configuration: the source opened with that map serves as it is
    named = driver("jiangsu", key_source="psam", psam="sim:jiangsu",
                   profile="mohrss-2.0+jiangsu")
    assert named.iWriteCard(1, info, "SSSEEF0D|EA|$", "SSSEEF0D|JS9900000079|$") == (0, "")
    named_keys = named.key_source()
    assert named_keys is not None
    assert named_keys.for_profile(load_profile("mohrss-2.0+jiangsu")) is named_keys


def test_other_card_has_no_ef0d_unless_the_config_names_the_overlay() -> None:
    d = driver("demo")
    info = _info(d)
    code, text = d.iReadCard(1, 1, info, "SSSEEF0D|EA|$")
    assert code == codes.BAD_DATA and "SSSEEF0D" in text
    assert "issuing region 519900, no regional overlay" in d.profile_notes[-1]
    named = driver("demo", profile="mohrss-2.0+jiangsu")
    assert named.iReadCard(1, 1, info, "SSSEEF0D|EA|$")[0] == -0x6A82   # the card lacks it
    assert named.profile_notes == []                                   # named: nothing chosen
    config = from_mapping({"card": {"profile": "mohrss-2.0+jiangsu"}}, "driver.toml")
    assert config.profile == "mohrss-2.0+jiangsu"
    with pytest.raises(Exception, match=r"^driver.toml: card.profile: no regional overlay"):
        from_mapping({"card": {"profile": "mohrss-2.0+mars"}}, "driver.toml")
    with pytest.raises(Exception, match=r"^driver.toml: \[card\] has no key 'profil'"):
        from_mapping({"card": {"profil": "mohrss-2.0+jiangsu"}}, "driver.toml")


def test_an_hsm_key_source_takes_the_card_profiles_addresses(tmp_path: Path) -> None:
    # The same per-card view as the PSAM's (KeySource.for_profile) for an HSM key source: a
    # region's [hsm_addresses] (here DF06's, invented as above) reach the source the driver
    # opened once with the default profile; the source itself keeps its addresses.
    overlay = tmp_path / "df06.toml"
    overlay.write_text(DF06_OVERLAY, "utf-8")
    base, regional = load_profile("mohrss-2.0"), load_profile(f"mohrss-2.0+{overlay}")
    rk1df06 = KEY_BY_NAME["RK1DF06"].ref
    for source in (HsmStepSource(lambda _request: {}, hsm_address_map(base)),
                   NationalHsmSource(lambda _text: "", hsm_address_map(base))):
        source.key_version = 1                      # the overlay gives v1–v3 addresses
        assert source.for_profile(base) is source
        view = source.for_profile(regional)
        assert view.has_key(rk1df06) and not source.has_key(rk1df06)
        assert view.has_key(KEY_RKSSSE) and source.has_key(KEY_RKSSSE)


def test_df06_keys_reach_the_hsm_steps_from_the_session_profile(tmp_path: Path) -> None:
    overlay = tmp_path / "df06.toml"
    overlay.write_text(DF06_OVERLAY, "utf-8")
    persona = tmp_path / "card.toml"
    persona.write_text('extends = "demo"\nname = "df06"\n[df_records]\ninclude = ["DF06"]\n'
                       '"DF06EF05.C2" = "123456789"\n', "utf-8")
    name = f"mohrss-2.0+{overlay}"
    profile = load_profile(name)
    d = SSCardDriver(DriverConfig(sim=str(persona), key_source="none", profile=name),
                     pin_source=FixedPinSource("123456"))
    info = _info(SSCardDriver(DriverConfig(sim=str(persona), key_source="keys", keys="test")))
    card = _card(d)
    code, s1 = d.iReadCard_HSM_Step1(1, info, "DF06EF05|C2|$")
    assert code == 0 and split_fields(s1)[1] == "00C0"                  # RK1DF06 v1
    assert d.iReadCard_HSM_Step2(national_answer(card, s1, profile)) == (
        0, "DF06EF05|123456789|$")
    code, s1 = d.iWriteCard_HSM_Step1(1, info, "DF06EF05|C2|$")
    assert code == 0 and split_fields(s1)[1] == "00C3"                  # UK1DF06 v1
    assert d.iWriteCard_HSM_Step2(national_answer(card, s1, profile),
                                  "DF06EF05|987654321|$") == (0, "")
    code, s1 = d.iReadCard_HSM_Step1(1, info, "DF06EF05|C2|$")
    assert d.iReadCard_HSM_Step2(national_answer(card, s1, profile)) == (
        0, "DF06EF05|987654321|$")
    # without the region's profile the national steps know no DF06 address: −23, said why
    bare = SSCardDriver(DriverConfig(sim=str(persona), key_source="none"))
    code, text = bare.iReadCard_HSM_Step1(1, info, "DF06EF05|C2|$")
    assert code == codes.BAD_DATA and "RK1DF06 无加密机密钥地址" in text
    assert load_persona(str(persona)).name == "df06"
