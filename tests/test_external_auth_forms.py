"""EXTERNAL AUTHENTICATE data: 鉴别数据 ‖ 原始信息 (part 5 §6.4.3 table 13: bytes 1–8 the
authentication data, 9–16 "鉴别所需的原始信息", 17 an optional key version), 鉴别数据 =
E(session key from the card's challenge, 原始信息) (part 4 §9.2–9.3). Nothing there fixes
what the 原始信息 is, so the two public forms are the same command:

- sbcard's library (``ops/auth.py``): X = a fresh terminal random, the session key from the
  card's challenge R;
- sbcard's national HSM steps, as the reader spec says (Sichuan §2.2.2 (4): 过程因子 and
  原始信息 both "从卡片获得的随机数") and the public HSM trace shows (gdgly/SI_3rdCard
  ``docs/加密机方式指令流.txt``): two GET CHALLENGEs, X = the first, R = the second;
- the Jiangsu kiosk code ([JSK], JSCardKiosks CardWriteRead): one GET CHALLENGE R,
  ``0082000D10 E(R) ‖ R`` — X = R.

A card following part 4/5 recomputes E_SK(X) from the data it is sent, so it accepts both;
the simulator does, and no profile option is needed (docs/spec-uncertainties.md).
"""

from __future__ import annotations

from sbcard.crypto.symmetric import Algorithm
from sbcard.keys.base import CardContext
from sbcard.keys.builtin import builtin_key_file
from sbcard.sim.persona import load_persona
from tests.test_sim_card import SELECT_SSSE, card_link, tx

KEY_EF0D = 0x0D
WRITE_EA = "00DC01040EEA0C" + b"JS9900000055".hex().upper()


def _ctx() -> CardContext:
    persona = load_persona("jiangsu")
    return CardContext(persona.atr, "320899", Algorithm.from_id(0x01))


def test_kiosk_form_cryptogram_of_the_challenge_then_the_challenge() -> None:
    _, t = card_link("jiangsu")
    assert tx(t, SELECT_SSSE).endswith("9000")
    r = bytes.fromhex(tx(t, "0084000008")[:-4])
    a = builtin_key_file().auth_data(_ctx(), KEY_EF0D, r, r)
    assert tx(t, "0082000D10" + (a + r).hex()) == "9000"
    assert tx(t, "00A4000002EF0D") == "9000"
    assert tx(t, WRITE_EA) == "9000"


def test_hsm_step_form_first_challenge_as_original_information() -> None:
    _, t = card_link("jiangsu")
    assert tx(t, SELECT_SSSE).endswith("9000")
    x = bytes.fromhex(tx(t, "0084000008")[:-4])
    r = bytes.fromhex(tx(t, "0084000008")[:-4])
    a = builtin_key_file().auth_data(_ctx(), KEY_EF0D, r, x)
    assert tx(t, "0082000D10" + (a + x).hex()) == "9000"
    # the cryptogram must be of the 原始信息 sent: A of X with R as 原始信息 is refused
    r2 = bytes.fromhex(tx(t, "0084000008")[:-4])
    wrong = builtin_key_file().auth_data(_ctx(), KEY_EF0D, r2, x)
    assert tx(t, "0082000D10" + (wrong + r2).hex()).startswith("63C")
