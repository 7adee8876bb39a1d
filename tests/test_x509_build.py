"""Certificates sbcard builds: ``build_certificate`` makes the Certificate from what it
encoded instead of parsing its output back with the strict DER round-trip check that input
certificates get (that parse cost a fifth of a 3.0 card's personalisation,
docs/benchmarks.md), so every kind it builds is held here to that check and to the parsed
form, field by field."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from asn1crypto import x509 as ax

from sbcard.crypto import _asn1, sm2, x509

ISSUER_KEY = sm2.PrivateKey(0x1234567)
SUBJECT_KEY = sm2.PrivateKey(0x7654321)
CA = x509.Name.build(c="CN", o="社保测试 CA", cn="TEST root")

KINDS = {
    "root CA": dict(ca=True, subject=CA, public_key=ISSUER_KEY.public_key),
    "CA, path length 0": dict(ca=True, path_length=0),
    "CA, path length 2": dict(ca=True, path_length=2),
    "card (personalisation)": dict(key_usage=("digitalSignature", "nonRepudiation"),
                                   subject=x509.Name.build(c="CN", o="社保测试 CA",
                                                           ou="519900", cn="card C0000018X")),
    "end entity, default usage": dict(),
    "deterministic": dict(deterministic=True),
    "serial 1": dict(serial=1),
    "serial 2**158": dict(serial=1 << 158),
    "serial with high bit": dict(serial=0x80),
    "GeneralizedTime (2050 on)": dict(not_before=date(2049, 12, 31),
                                      not_after=datetime(2060, 1, 1, 12, tzinfo=UTC)),
}


def build(**kw) -> x509.Certificate:
    args = dict(subject=x509.Name.build(cn="leaf"), public_key=SUBJECT_KEY.public_key,
                issuer=CA, issuer_key=ISSUER_KEY, serial=0x1F2E3D4C5B6A7988,
                not_before=date(2024, 1, 1), not_after=date(2034, 1, 1))
    return x509.build_certificate(**{**args, **kw})


@pytest.mark.parametrize("kind", KINDS)
def test_built_certificate_passes_the_strict_der_check_and_parses_the_same(kind: str) -> None:
    cert = build(**KINDS[kind])
    _asn1.load_der(ax.Certificate, cert.der, kind)          # raises DerError if not DER
    strict = x509.Certificate._parse(cert.der, kind)
    assert strict == cert
    assert strict.is_ca == cert.is_ca and strict.key_usage == cert.key_usage
    assert cert.verify_signature(ISSUER_KEY.public_key)


def test_built_certificate_read_back_is_the_same_object() -> None:
    """Written to a card and read back (same bytes), it is not parsed again."""
    cert = build(serial=4242)
    assert x509.Certificate.from_der(bytes(cert.der)) is cert


def test_input_certificates_are_still_held_to_der() -> None:
    der = bytearray(build(serial=77).der)
    der[1:4] = b"\x83\x00" + der[2:4]            # long-form length with a leading zero byte
    with pytest.raises(x509.CertificateFormatError):
        x509.Certificate.from_der(bytes(der))
