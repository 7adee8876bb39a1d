"""``sbcard.keys.diversify``: which levels apply and every key on the way down.

Expected keys are computed with ``cryptography`` directly from the spec's formulas (§5.4:
SM4_K(F‖~F); 3DES_K(F)‖3DES_K(~F)), never with the code under test; the ATR, region and
root keys are the ones tests/test_cli_crypto.py uses.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from sbcard.crypto.symmetric import Algorithm
from sbcard.errors import BadInputError
from sbcard.keys.diversify import FactorChoiceError, diversify_root, level_factors

h = bytes.fromhex
KSM4 = h("00112233445566778899AABBCCDDEEFF")
K16 = h("0123456789ABCDEFFEDCBA9876543210")
ATR = h("3B6D0000008154484486845199C0666779")  # 13 historical bytes (T0=6D)
CARD_FACTOR = h("86845199C0666779")                # historical bytes 6-13 of ATR


def _not(data: bytes) -> bytes:
    return bytes(b ^ 0xFF for b in data)


def sm4_step(key: bytes, factor: bytes) -> bytes:
    enc = Cipher(algorithms.SM4(key), modes.ECB()).encryptor()
    return enc.update(factor + _not(factor)) + enc.finalize()


def des16_step(key: bytes, factor: bytes) -> bytes:
    enc = Cipher(TripleDES(key + key[:8]), modes.ECB()).encryptor()  # EDE2 as EDE3
    return enc.update(factor + _not(factor)) + enc.finalize()


def test_two_levels_sm4_city_then_card() -> None:
    result = diversify_root(Algorithm.SM4, KSM4, region="650100", atr=ATR)
    city_key = sm4_step(KSM4, b"650100sx")
    card_key = sm4_step(city_key, CARD_FACTOR)
    assert [(s.level, s.factor, s.key) for s in result.steps] == [
        ("city", b"650100sx", city_key), ("card", CARD_FACTOR, card_key)]
    assert result.key == card_key and result.complete and result.note is None
    assert result.levels == 2 and result.root == KSM4
    assert result.steps[0].factor_ascii == "650100sx" and result.steps[1].factor_ascii is None


def test_three_levels_des_zhejiang_and_explicit_factors_agree() -> None:
    result = diversify_root(Algorithm.DES, K16, region="330106", atr=ATR, levels=3)
    expected = K16
    for factor in (b"330000sh", b"330100sx", CARD_FACTOR):
        expected = des16_step(expected, factor)
    assert [s.factor for s in result.steps] == [b"330000sh", b"330100sx", CARD_FACTOR]
    assert result.key == expected
    explicit = diversify_root(Algorithm.DES, K16,
                              factors=[CARD_FACTOR, b"330100sx", b"330000sh"])
    assert explicit.key == expected and explicit.levels == 3
    assert [s.level for s in explicit.steps] == ["factor 3", "factor 2", "factor 1"]


def test_without_atr_stops_above_card_level() -> None:
    result = diversify_root(Algorithm.SM4, KSM4, region="650100")
    assert result.key == sm4_step(KSM4, b"650100sx")
    assert not result.complete and "not the card key" in (result.note or "")


def test_one_level_is_the_card_factor_only() -> None:
    steps, complete = level_factors(1, None, ATR)
    assert steps == [("card", CARD_FACTOR)] and complete
    assert diversify_root(Algorithm.SM4, KSM4, atr=ATR, levels=1).key == sm4_step(
        KSM4, CARD_FACTOR)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"levels": 1, "region": "650100"}, "--levels 1 uses the card factor only"),
        ({"levels": 3, "atr": ATR}, "--levels 3 needs --region"),
        ({"factors": [CARD_FACTOR], "region": "650100"}, "--factor replaces"),
        ({"factors": [CARD_FACTOR], "levels": 2}, "--factor replaces"),
        ({"levels": 4, "region": "650100"}, "levels must be 1..3"),
    ],
)
def test_choices_that_do_not_fit(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(FactorChoiceError, match=message):
        diversify_root(Algorithm.SM4, KSM4, **kwargs)  # type: ignore[arg-type]


def test_bad_root_and_region_are_bad_input() -> None:
    with pytest.raises(BadInputError, match="root key must be 8 or 16 bytes"):
        diversify_root(Algorithm.DES, bytes(24), factors=[CARD_FACTOR])
    with pytest.raises(BadInputError, match="region code must be 6 ASCII digits"):
        diversify_root(Algorithm.SM4, KSM4, region="6501", atr=ATR)
