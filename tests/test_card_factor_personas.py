"""Issue 11 item 1: the card factor is historical bytes 6-13 (part 9 §7.3.3), whatever frames them.

The ``classb`` and ``contactless`` personas end their ATRs in TCK, so the ATR's last 8 bytes
are not the factor. The expected card keys here are computed from bytes written out in the
test (historical bytes 6-13 by hand), not through sbcard's own factor function.
"""

from __future__ import annotations

import pytest

from sbcard.apdu.atr import Atr
from sbcard.card.filesystem import KEY_IRK
from sbcard.compose import SessionOptions, open_session
from sbcard.crypto import card_algos
from sbcard.crypto.symmetric import Algorithm
from sbcard.keys.base import CardContext
from sbcard.keys.builtin import builtin_key_file
from sbcard.ops.pin import Pin, reload_pin, unblock_pin, verify_pin
from sbcard.ops.read import read_card, read_context
from sbcard.sim.persona import load_persona

TCK_PERSONAS = ("classb", "contactless")
FACTOR = bytes.fromhex("86845199C0666779")   # T6..TD of 0081 544C96 8684 5199 C0666779


@pytest.mark.parametrize("name", TCK_PERSONAS)
def test_atr_ends_in_a_valid_tck_and_the_factor_is_not_its_tail(name: str) -> None:
    atr = Atr.parse(load_persona(name).atr)
    assert atr.tck is not None and not atr.warnings
    assert atr.historical.hex().upper() == "0081544C9686845199C0666779"
    assert atr.raw[-8:] != FACTOR
    assert CardContext(atr.raw, "519900", Algorithm.SM4).card_factor == FACTOR


@pytest.mark.parametrize("name", TCK_PERSONAS)
def test_card_keys_are_diversified_with_historical_bytes_6_to_13(name: str) -> None:
    persona = load_persona(name)
    card = persona.build_card()
    root = next(r for r in builtin_key_file().roots
                if r.card_key_id == KEY_IRK and r.algorithm is Algorithm.SM4)
    levels = [FACTOR, b"519900sx"][: root.levels]
    expected = card_algos.diversify_levels(Algorithm.SM4, root.value, levels)
    assert card.auth is not None and card.auth.keys[KEY_IRK].value == expected


@pytest.mark.parametrize("name", TCK_PERSONAS)
def test_internal_auth_rkssse_read_and_pin_reload_unblock(name: str) -> None:
    keys = builtin_key_file()
    with open_session(SessionOptions(sim=name)) as ch:
        data = read_card(ch, keys=keys).to_json()     # EF06 behind RKSSSE on 3.0
        assert data["name"] == "买买提·测试" and not data["warnings"]
        ctx = read_context(ch)
        reload_pin(ch, keys, ctx, Pin("739164"))
        verify_pin(ch, Pin("739164"))
        unblock_pin(ch, keys, ctx)


@pytest.mark.parametrize(("name", "protocol"), [("demo", "T=0"), ("v3", "T=0"),
                                                 ("classb", "T=0"), ("contactless", "T=1")])
def test_in_process_link_protocol_follows_the_atr(name: str, protocol: str) -> None:
    """Issue 11 item 8: a 3B6D0000 ATR says T=0 (part 2 §8.3); a contactless one offers T=1."""
    with open_session(SessionOptions(sim=name, raw=True)) as ch:
        assert ch.transport.protocol == protocol
