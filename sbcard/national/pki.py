"""The card work of the national PKI functions (3rd generation): PKI_SignData, PKI_VerifySign.

``SSCardDriver.PKI_SignData`` / ``PKI_VerifySign`` (docstrings there: the national format and
our assumptions) import this module when they are called, so SM2, X.509 and asn1crypto load
for a PKI call and never for the other national functions: a 2.0 card's first
``iReadCardBas`` from C (interpreter start included) stays light (issue 13, first call under
300 ms; tests/test_national_native.py). Each function takes ``card``, the driver's "power the
card of iType for one call", and returns the output string or raises ``NationalError``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from contextlib import AbstractContextManager

from sbcard.apdu.channel import ApduChannel
from sbcard.card.profiles import PKI_GENERATION, profile_for
from sbcard.crypto import sm2, x509
from sbcard.national import codes
from sbcard.national.codes import NationalError
from sbcard.ops import sm2auth

Card = Callable[[], AbstractContextManager[ApduChannel]]


def _user_pin(pUserPin: str) -> str:
    """pUserPin stripped; '' when none; −33 unless it is 4–16 ASCII digits."""
    pin = pUserPin.strip()
    if pin and not (pin.isascii() and pin.isdigit() and 4 <= len(pin) <= 16):
        raise NationalError(codes.PIN_LENGTH, f"{codes.message(codes.PIN_LENGTH)}"
                                              "（证书密码应为4-16位数字）")
    return pin


def sign_data(card: Card, pUserPin: str, pInData: str) -> str:
    """PKI_SignData's output: the card's r‖s over pInData's GBK bytes, 128 uppercase hex."""
    pin = _user_pin(pUserPin)
    config = sm2auth.sign_config(profile_for(PKI_GENERATION))
    with card() as channel:
        try:
            signed = sm2auth.sign_data(channel, config, pInData.encode("gbk"), pin or None)
        except sm2auth.PkiPinNeededError:
            raise NationalError(codes.PIN_LENGTH, f"{codes.message(codes.PIN_LENGTH)}"
                                                  "（该卡签名前须校验证书密码pUserPin）") from None
        except sm2auth.NoPkiApplicationError:
            raise _no_pki() from None
    return signed.signature.hex().upper()


def verify_sign(card: Card, pUserPin: str, pCert: str, pClearText: str,
                pSignature: str) -> str:
    """PKI_VerifySign: '' when the signature verifies, else −22 (NationalError)."""
    signature = _signature(pSignature)
    config = sm2auth.sign_config(profile_for(PKI_GENERATION))
    cert_text = pCert.strip()
    if cert_text:
        public = _certificate(cert_text).public_key
    else:
        pin = _user_pin(pUserPin)
        with card() as channel:
            try:
                if pin:
                    sm2auth.select_pki(channel, config)
                    sm2auth.verify_pki_user_pin(channel, config, pin)
                _, public = sm2auth.card_certificate(channel, config)
            except sm2auth.NoPkiApplicationError:
                raise _no_pki() from None
    if public is None or not sm2.verify(public, pClearText.encode("gbk"), signature,
                                        uid=config.user_id):
        raise NationalError(codes.CARD_MISMATCH, f"{codes.message(codes.CARD_MISMATCH)}"
                                                 "（签名验证失败）")
    return ""


def _signature(text: str) -> bytes:
    """PKI_VerifySign's pSignature: r‖s in 128 hex digits, or a DER SEQUENCE {r, s} in hex."""
    try:
        raw = bytes.fromhex(text.strip())
    except ValueError:
        raw = b""
    if len(raw) == 64:
        return raw
    if raw[:1] == b"\x30":
        try:
            return sm2.signature_from_der(raw)
        except Exception:           # any malformed DER is bad input
            pass
    raise NationalError(codes.BAD_DATA, f"{codes.message(codes.BAD_DATA)}"
                                        "（pSignature 应为128位十六进制 r‖s 或 DER）")


def _certificate(text: str) -> x509.Certificate:
    """PKI_VerifySign's pCert: PEM, or the DER certificate as hex or base64."""

    try:
        if text.startswith("-----BEGIN"):
            return x509.load_certificates(text, "pCert")[0]
        compact = "".join(text.split())
        try:
            der = bytes.fromhex(compact)
        except ValueError:
            der = base64.b64decode(compact, validate=True)
        return x509.Certificate.from_der(der, "pCert")
    except (x509.CertificateFormatError, binascii.Error, ValueError, IndexError):
        raise NationalError(codes.BAD_DATA, f"{codes.message(codes.BAD_DATA)}"
                                            "（pCert 不是证书：PEM，或DER的十六进制/Base64）") \
            from None


def _no_pki() -> NationalError:
    return NationalError(codes.CARD_TYPE, f"{codes.message(codes.CARD_TYPE)}"
                                          "（无PKI应用，非第三代社保卡）")
