"""Issue 11 item 5: the PKI user PIN before the card signs; 6982 reported as "PKI PIN needed".

Public bytes: leithergit/Z390Kylin Evolis_Z390_printer.cpp asks the card for SM3(PIN)
(80C4010305C103 <PIN> 00) and shows, in its comments, the answer for PIN 123456 and the
proof for one challenge: CTK = 3DE741F445DD357BEA4E6C3FE6437036 (SM3 of BCD 123456, first
16 bytes), RAM = 178CEDCF32C5D7990216632170C7CD37, SM4(CTK, RAM) =
358B51056B9B9EB2C96B20E7DB7A6B8F, sent as 0020018110 ‖ proof.
"""

from __future__ import annotations

import pytest

from sbcard.apdu.channel import ApduChannel
from sbcard.apdu.sw import AuthFailedError
from sbcard.crypto.card_algos import pki_pin_key, pki_pin_proof
from sbcard.ops.sm2auth import (
    PkiPinNeededError,
    Sm2AuthConfig,
    select_pki,
    sm2_authenticate,
    verify_pki_user_pin,
)
from sbcard.sim import pki as sim_pki
from sbcard.sim.card_os import SimCard
from sbcard.sim.persona import load_persona
from tests.cli_runner import run_cli
from tests.fakes import recorded_sim_card


def test_public_pin_vector() -> None:
    assert pki_pin_key(bytes.fromhex("123456")).hex().upper() == \
        "3DE741F445DD357BEA4E6C3FE6437036"
    proof = pki_pin_proof(bytes.fromhex("123456"),
                          bytes.fromhex("178CEDCF32C5D7990216632170C7CD37"))
    assert proof.hex().upper() == "358B51056B9B9EB2C96B20E7DB7A6B8F"


def _card(persona: str = "pkipin") -> tuple[SimCard, ApduChannel, list[str]]:
    return recorded_sim_card(persona)


def test_sign_without_the_user_pin_is_pki_pin_needed() -> None:
    card, ch, _ = _card()
    profile = load_persona("pkipin").profile
    with pytest.raises(PkiPinNeededError, match="PKI PIN needed") as err:
        sm2_authenticate(ch, profile, [sim_pki.test_root()[1]])
    assert err.value.sw == 0x6982
    assert card.pki is not None and card.pki.signatures == 0


def test_user_pin_then_signature_with_the_public_command_shape() -> None:
    _, ch, sent = _card()
    profile = load_persona("pkipin").profile
    result = sm2_authenticate(ch, profile, [sim_pki.test_root()[1]], user_pin="123456")
    assert result.certificate is not None
    i = sent.index("0084000010")                          # a 16-byte challenge, as public code
    assert sent[i + 1].startswith("0020018110") and len(sent[i + 1]) == 10 + 32
    assert "123456" not in "".join(sent)                  # only the proof travels


def test_wrong_user_pin_counts_down() -> None:
    card, ch, _ = _card()
    config = Sm2AuthConfig.from_profile(load_persona("pkipin").profile)
    select_pki(ch, config)
    with pytest.raises(AuthFailedError) as err:
        verify_pki_user_pin(ch, config, "654321")
    assert err.value.tries_left == 2 and card.pki is not None and card.pki.user_tries == 2


def test_card_without_user_pin_still_signs() -> None:
    _, ch, _ = _card("v3")
    sm2_authenticate(ch, load_persona("v3").profile, [sim_pki.test_root()[1]])


def test_cli_reports_pki_pin_needed_and_takes_the_pin(capsys) -> None:
    code, _, err = run_cli(capsys, "--sim", "pkipin", "verify", "card", "--sm2",
                           "--trust", "test")
    assert code == 5 and "PKI PIN needed" in err
    code, out, err = run_cli(capsys, "--sim", "pkipin", "verify", "card", "--sm2",
                             "--trust", "test", "--pki-pin-stdin", stdin="123456\n")
    assert code == 0, err
    assert "genuine" in out and "123456" not in out + err


def test_issue_with_the_one_apdu_export_option() -> None:
    """[sm2_issue] export_fetch = "": the export with Le 42 in one APDU (our former default;
    the profile's default is now public code's two-APDU form, tests/test_pki_issue.py)."""
    import dataclasses
    import datetime as dt

    from sbcard.card.profiles import load_profile
    from sbcard.ops.pki_issue import CertificateAuthority, issue_sm2

    base = load_profile("mohrss-3.0")
    assert base.sm2_issue is not None
    profile = dataclasses.replace(base, sm2_issue=dataclasses.replace(
        base.sm2_issue, export_fetch=b""))
    card, ch, sent = _card("blank3")
    issued = issue_sm2(ch, profile, CertificateAuthority.load("test"), admin_pin=None,
                       card_no="C0000018X", region="519900", not_before=dt.date(2024, 1, 1),
                       not_after=dt.date(2034, 1, 1))
    assert "80C9820008C0020012C202001342" in sent
    assert "80C9828000" not in sent
    assert card.pki is not None and card.pki.key is not None
    assert issued.generated and issued.certificate.public_key == card.pki.key.public_key
