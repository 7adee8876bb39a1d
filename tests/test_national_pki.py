"""PKI_SignData: the national 3rd-generation signing function on the SM2 path of the PKI app.

The signing APDU, what pInData is and the output format have no public source (only the
function's name and parameters: LD/T 6001.5-2023, spec reference [S22]); the assumptions are
written in mohrss-3.0.toml ``[pki_sign]`` and docs/national-interface.md. Here the signature
is checked as a relying party would: with the key of the certificate read from the card's
EF 0018, as the standard SM2 signature over SM3(Z‖data) with the GM/T 0009 default ID.
"""

from __future__ import annotations

from sbcard.apdu.channel import ApduChannel
from sbcard.apdu.command import CommandApdu
from sbcard.apdu.sw import SW
from sbcard.card.profiles import load_profile
from sbcard.crypto import sm2, x509
from sbcard.national import codes
from sbcard.national.config import DriverConfig
from sbcard.national.driver import SSCardDriver
from sbcard.ops.sm2auth import read_certificate, select_pki, sign_config
from sbcard.sim import pki as sim_pki
from sbcard.sim.persona import load_persona
from sbcard.transport.simulated import SimulatedTransport

DATA = "社保卡签名测试 sbcard 2026"


def card_certificate(persona: str) -> x509.Certificate:
    """The certificate in the persona card's EF 0018, read over APDUs like any terminal."""
    t = SimulatedTransport(load_persona(persona).build_card())
    t.connect()
    channel = ApduChannel(t)
    config = sign_config(load_profile("mohrss-3.0"))
    select_pki(channel, config)
    cert = x509.Certificate.from_der(read_certificate(channel, config))
    x509.verify_chain(cert, [sim_pki.test_root()[1]])      # a genuine (TEST) card certificate
    return cert


def test_sign_data_with_the_user_pin_verifies_with_the_card_certificate() -> None:
    d = SSCardDriver(DriverConfig(sim="pkipin"))
    code, out = d.PKI_SignData("123456", DATA, 1)
    assert code == 0, out
    assert len(out) == 128 and out == out.upper()
    public = card_certificate("pkipin").public_key
    assert public is not None
    assert sm2.verify(public, DATA.encode("gbk"), bytes.fromhex(out))
    assert not sm2.verify(public, b"other data", bytes.fromhex(out))
    # SM2 signatures are randomised: a second call differs and verifies too
    code2, out2 = d.PKI_SignData("123456", DATA, 3)
    assert code2 == 0 and out2 != out
    assert sm2.verify(public, DATA.encode("gbk"), bytes.fromhex(out2))


def test_card_without_user_pin_signs_with_an_empty_pin() -> None:
    code, out = SSCardDriver(DriverConfig(sim="v3")).PKI_SignData("", DATA, 1)
    assert code == 0, out
    public = card_certificate("v3").public_key
    assert public is not None and sm2.verify(public, DATA.encode("gbk"), bytes.fromhex(out))


def test_wrong_pin_counts_down_then_blocks() -> None:
    d = SSCardDriver(DriverConfig(sim="pkipin"))
    assert d.PKI_SignData("654321", DATA, 1) == (codes.PIN_WRONG, codes.pin_wrong_message(2))
    assert d.PKI_SignData("654321", DATA, 1) == (codes.PIN_WRONG, codes.pin_wrong_message(1))
    assert d.PKI_SignData("654321", DATA, 1)[0] == codes.PIN_LOCKED
    assert d.PKI_SignData("123456", DATA, 1)[0] == codes.PIN_LOCKED   # even the right one


def test_pin_needed_and_pin_format() -> None:
    d = SSCardDriver(DriverConfig(sim="pkipin"))
    code, text = d.PKI_SignData("", DATA, 1)
    assert code == codes.PIN_LENGTH and "pUserPin" in text
    assert d.PKI_SignData("12ab", DATA, 1)[0] == codes.PIN_LENGTH
    assert d.PKI_SignData("123456", DATA, 1)[0] == 0        # nothing was counted against it


def test_second_generation_card_is_the_wrong_card_type() -> None:
    code, text = SSCardDriver(DriverConfig(sim="demo")).PKI_SignData("123456", DATA, 1)
    assert code == codes.CARD_TYPE and "第三代" in text
    assert SSCardDriver(DriverConfig(sim="pkipin")).PKI_SignData("123456", DATA, 9)[0] == \
        codes.CARD_TYPE                                       # iType not 1-4


def test_simulator_signs_only_the_profile_command() -> None:
    card = load_persona("v3").build_card()
    t = SimulatedTransport(card)
    t.connect()
    channel = ApduChannel(t)
    config = sign_config(load_profile("mohrss-3.0"))
    assert (config.cla, config.ins, config.p1, config.p2) == (0x00, 0x2A, 0x9E, 0x9A)
    select_pki(channel, config)
    assert channel.send(CommandApdu.from_hex("002A9E9A10" + "00" * 16 + "00")).sw == SW.WRONG_LENGTH
    assert channel.send(CommandApdu.from_hex("002A9E9B20" + "11" * 32 + "00")).sw == SW.WRONG_P1P2
    r = channel.send(CommandApdu.from_hex("002A9E9A20" + "11" * 32 + "00"))
    assert r.ok and len(r.data) == 64
    assert sm2.verify_digest(sim_pki.card_key(load_persona("v3")).public_key, b"\x11" * 32,
                             r.data)


def test_verify_sign_with_the_card_certificate() -> None:
    """LD/T 6001.5-2023 §7's form: PKI_VerifySign(pUserPin, pCert, pClearText, pSignature,
    iType); an empty pCert means the card's own certificate (EF 0018)."""
    d = SSCardDriver(DriverConfig(sim="pkipin"))
    code, signature = d.PKI_SignData("123456", DATA, 1)
    assert code == 0
    assert d.PKI_VerifySign("", "", DATA, signature, 1) == (0, "")
    assert d.PKI_VerifySign("", "", DATA + "x", signature, 1)[0] == codes.CARD_MISMATCH
    forged = signature[:-2] + ("00" if signature[-2:] != "00" else "01")
    assert d.PKI_VerifySign("", "", DATA, forged, 1)[0] == codes.CARD_MISMATCH
    # pkipin is the v3 card plus a user PIN: same card, same key, so v3 verifies it too
    assert SSCardDriver(DriverConfig(sim="v3")).PKI_VerifySign("", "", DATA, signature, 1) \
        == (0, "")
    assert d.PKI_VerifySign("", "", DATA, "ABCD", 1)[0] == codes.BAD_DATA
    assert SSCardDriver(DriverConfig(sim="demo")).PKI_VerifySign("", "", DATA, signature,
                                                                 1)[0] == codes.CARD_TYPE


def test_verify_sign_with_a_given_certificate_and_der_signature() -> None:
    import base64

    from sbcard.crypto import sm2

    d = SSCardDriver(DriverConfig(sim="pkipin"))
    code, signature = d.PKI_SignData("123456", DATA, 1)
    assert code == 0
    cert = card_certificate("pkipin")
    der_sig = sm2.signature_to_der(bytes.fromhex(signature)).hex()
    nocard = SSCardDriver(DriverConfig(sim="demo"))       # pCert given: the card is not used
    for form in (cert.to_pem(), cert.der.hex().upper(), base64.b64encode(cert.der).decode()):
        assert nocard.PKI_VerifySign("", form, DATA, signature, 1) == (0, "")
        assert nocard.PKI_VerifySign("", form, DATA, der_sig, 1) == (0, "")
        assert nocard.PKI_VerifySign("", form, "other", signature, 1)[0] == codes.CARD_MISMATCH
    assert nocard.PKI_VerifySign("", "not a certificate", DATA, signature, 1)[0] == \
        codes.BAD_DATA


def test_verify_sign_checks_the_user_pin_when_given() -> None:
    d = SSCardDriver(DriverConfig(sim="pkipin"))
    code, signature = d.PKI_SignData("123456", DATA, 1)
    assert code == 0
    assert d.PKI_VerifySign("123456", "", DATA, signature, 1) == (0, "")
    code, text = d.PKI_VerifySign("000000", "", DATA, signature, 1)
    assert code == codes.PIN_WRONG and "2" in text
    assert d.PKI_VerifySign("12", "", DATA, signature, 1)[0] == codes.PIN_LENGTH
