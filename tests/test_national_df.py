"""The national iReadCard / iWriteCard (+ HSM steps) on the DF01–DF07 files.

Address and output forms: Sichuan reader-interface spec §2.1.2 (``DF01EF0A|37|$`` →
``DF01EF0A|CHN|$``; ``DF01EF15|2A|40:2|$``), §3.1.2 (``DF01EF07|1|$`` writes 就业状态; a cyclic
file appends), §3.2 (HSM step 1: ``算法标识|外部认证密钥地址|过程因子|原始信息|``), appendix B
(key addresses: UK6DF01 0052, RK1DF02 0064)."""

from __future__ import annotations

import pytest

from sbcard.card.dfs import KEY_BY_NAME
from sbcard.crypto.symmetric import Algorithm
from sbcard.keys.base import CardContext
from sbcard.keys.builtin import builtin_key_file
from sbcard.national import codes
from sbcard.national.lines import split_fields
from sbcard.sim.persona import load_persona
from tests.test_national import driver
from tests.test_national_native import c_call, native  # noqa: F401  (fixture)


def _info(d) -> str:
    code, line = d.iReadCardBas(1)
    assert code == 0, line
    f = split_fields(line)
    return f"{f[3]}|{f[2]}|"


def test_write_then_read_mirrors_the_address() -> None:
    d = driver()
    info = _info(d)
    assert d.iWriteCard(1, info, "DF01EF07|29|$DF02EF07|$",
                        "DF01EF07|1|$DF02EF07|2010101^20200101^20221231^测试公司^|$") == (0, "")
    code, out = d.iReadCard(1, 1, info, "DF01EF07|29|$SSSEEF05|07|$DF02EF07|$")
    assert (code, out) == (0, "DF01EF07|1|$SSSEEF05|A00000011|$"
                              "DF02EF07|2010101^20200101^20221231^测试公司^|$")


def test_read_by_rk_key_spends_no_pin() -> None:
    d = driver(pins=())                       # a PIN request would fail: none to give
    info = _info(d)
    assert d.iWriteCard(1, info, "DF01EF15|2A|40:2|$", "DF01EF15|7|400^080901^测试大学^|$")[0] == 0
    assert d.iReadCard(1, 2, info, "DF01EF15|2A|40:2|$") == (
        0, "DF01EF15|7|400^080901^测试大学^|$")


def test_cyclic_records_by_number_newest_first() -> None:
    d = driver()
    info = _info(d)
    for i in range(3):
        assert d.iWriteCard(1, info, "DF04EF15|$", f"DF04EF15|000{i}^1^|$")[0] == 0
    assert d.iReadCard(1, 1, info, "DF04EF15|1|3|$") == (0, "DF04EF15|0002^1^|0000^1^|$")


def test_refusals_are_national_codes() -> None:
    d = driver()
    info = _info(d)
    code, text = d.iWriteCard(1, info, "DF04EF08|$", "DF04EF08|0001^1^|$")
    assert code == codes.BAD_DATA and "不允许" in text              # table 7: 不允许改写
    assert d.iWriteCard(1, info, "SSSEEF05|07|$", "SSSEEF05|X|$")[0] == codes.BAD_DATA
    assert d.iReadCard(1, 1, info, "DF01EF15|40:4|$")[0] == codes.BAD_DATA   # only 3
    assert d.iWriteCard(1, info, "DF01EF0A|37|38|$", "DF01EF0A|CHN|$")[0] == codes.BAD_DATA
    assert d.iReadCard(1, 1, "X|Y|", "DF01EF0A|37|$")[0] != 0
    no_keys = driver(key_source="none")
    assert no_keys.iWriteCard(1, info, "DF01EF0A|37|$", "DF01EF0A|CHN|$")[0] == codes.NO_PSAM
    assert no_keys.iReadCard(1, 2, info, "DF01EF0A|37|$")[0] == codes.NO_PSAM


def test_wrong_pin_is_minus_51_with_tries() -> None:
    d = driver(pins=("999999",))
    info = _info(d)
    code, text = d.iReadCard(1, 1, info, "DF01EF0A|37|$")
    assert code == codes.PIN_WRONG and "2" in text


def _hsm_answer(step1: str, ref: int) -> str:
    """What the HSM computes: A = E(session key of the card key, 原始信息) ‖ 原始信息."""
    alg, _, factor, original = split_fields(step1)[:4]
    persona = load_persona("demo")
    ctx = CardContext(persona.atr, "519900", Algorithm.from_id(int(alg, 16)))
    a = builtin_key_file().auth_data(ctx, ref, bytes.fromhex(factor), bytes.fromhex(original))
    return (a + bytes.fromhex(original)).hex().upper()


def test_hsm_write_and_read_steps() -> None:
    d = driver()
    info = _info(d)
    code, step1 = d.iWriteCard_HSM_Step1(1, info, "DF01EF15|2A|$")
    assert code == 0 and split_fields(step1)[:2] == ["01", "0052"]     # DES, UK6DF01
    pkey = _hsm_answer(step1, KEY_BY_NAME["UK6DF01"].ref)
    assert d.iWriteCard_HSM_Step2(pkey, "DF01EF15|5|$") == (0, "")
    code, step1 = d.iReadCard_HSM_Step1(1, info, "DF01EF15|2A|$")
    assert code == 0 and split_fields(step1)[1] == "004F"              # RK1DF01
    pkey = _hsm_answer(step1, KEY_BY_NAME["RK1DF01"].ref)
    assert d.iReadCard_HSM_Step2(pkey) == (0, "DF01EF15|5|$")
    assert d.iReadCard_HSM_Step1(1, info, "DF04EF08|$")[0] == codes.HSM_NOT_NEEDED   # PIN only


def test_hsm_step2_with_a_wrong_answer_fails_on_the_card() -> None:
    d = driver()
    info = _info(d)
    code, step1 = d.iWriteCard_HSM_Step1(1, info, "DF02EF07|$")
    assert code == 0 and split_fields(step1)[1] == "00A3"              # UK3DF02 (B.2)
    code, _ = d.iWriteCard_HSM_Step2("00" * 8 + split_fields(step1)[3],
                                     "DF02EF07|2010101^20200101^^x^|$")
    assert code < 0 and code != codes.UNKNOWN


@pytest.mark.usefixtures("native")
def test_c_library_writes_and_reads_df_files(native) -> None:  # noqa: F811
    info = _info(driver())
    lines = c_call(native, "writeread", info, "DF01EF0A|37|$DF02EF16|$",
                   "DF01EF0A|CHN|$DF02EF16|001^20240101^20240101^20241231^519900^|$",
                   SBCARD_SIM="demo", SBCARD_KEYS="test")
    assert lines[:2] == ["0", "DF01EF0A|CHN|$DF02EF16|001^20240101^20240101^20241231^519900^|$"]
    lines = c_call(native, "iWriteCard", "1", info, "DF04EF08|$", "DF04EF08|1^|$",
                   SBCARD_SIM="demo", SBCARD_KEYS="test")
    assert lines[0] == str(codes.BAD_DATA)


@pytest.mark.parametrize("persona", ["demo", "v3"])
def test_psam_key_source_holds_the_df_keys(persona: str) -> None:
    """The simulated PSAM carries each DF key under the usage/ID of the reader-interface
    spec's appendix B (e.g. RK1DF01 07/2E, UK5DF01 08/44); DES and SM4 cards."""
    d = driver(sim=persona, key_source="psam", psam="sim")
    info = _info(d)
    assert d.iWriteCard(1, info, "DF01EF0A|37|$", "DF01EF0A|CHN|$") == (0, "")
    assert d.iReadCard(1, 2, info, "DF01EF0A|37|$DF07EF06|F5|$") == (
        0, "DF01EF0A|CHN|$DF07EF06||$")
