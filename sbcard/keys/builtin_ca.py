"""The TEST SM2 root CA shipped with sbcard (``--trust test``, ``--ca test``).

Package data in ``sbcard/keys/material/`` beside the TEST key file (:mod:`sbcard.keys.builtin`):
the simulated 3.0 cards' certificates chain to it. Nothing here is secret; nothing signed by
it proves anything outside the simulator.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from pathlib import Path

from sbcard.crypto import sm2, x509
from sbcard.crypto.symmetric import sm3
from sbcard.errors import BadInputError
from sbcard.keys.builtin import material

ROOT_CERT_FILE = "test-root-ca.pem"
ROOT_KEY_FILE = "test-root-ca-key.pem"

ROOT_SUBJECT = x509.Name.build(c="CN", o="sbcard TEST (public test material)",
                               cn="sbcard TEST SM2 Root CA - NOT FOR PRODUCTION")

_TEST_BANNER = (
    "# sbcard PUBLIC TEST MATERIAL - NOT SECRET, NOT FOR PRODUCTION.\n"
    "# Only simulated cards (sbcard --sim, sbcard sim serve) chain to this root.\n"
)


def test_root_pem() -> str:
    """The TEST root certificate as PEM (``--trust test``)."""
    return material().joinpath(ROOT_CERT_FILE).read_text("ascii")


@functools.cache
def test_root() -> tuple[sm2.PrivateKey, x509.Certificate]:
    """The shipped TEST root CA: (private key, certificate)."""
    key = sm2.PrivateKey.from_pem(material().joinpath(ROOT_KEY_FILE).read_text("ascii"))
    cert = x509.Certificate.from_pem(test_root_pem(), "TEST root certificate")
    if cert.public_key != key.public_key:
        raise BadInputError("sbcard/keys/material: the TEST root key does not match its "
                            "certificate")
    return key, cert


def make_test_root(key: sm2.PrivateKey | None = None) -> tuple[sm2.PrivateKey, x509.Certificate]:
    """A TEST root like the shipped one (new key unless given), valid 2020–2049."""
    key = key or sm2.PrivateKey.generate()
    cert = x509.build_certificate(
        subject=ROOT_SUBJECT, public_key=key.public_key, issuer=ROOT_SUBJECT, issuer_key=key,
        serial=int.from_bytes(sm3(b"sbcard TEST root" + key.public_key.to_bytes())[:8], "big")
        >> 1 | 1,
        not_before=datetime(2020, 1, 1, tzinfo=UTC),
        not_after=datetime(2049, 12, 31, 23, 59, 59, tzinfo=UTC),
        ca=True, path_length=1, deterministic=True,
    )
    return key, cert


def write_test_root(folder: str | Path, key: sm2.PrivateKey | None = None) -> None:
    """(Re)write the TEST root files; how ``sbcard/keys/material/`` was made. Changing the key
    invalidates every simulated card certificate's chain until the personas are rebuilt."""
    key, cert = make_test_root(key)
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    (out / ROOT_KEY_FILE).write_text(_TEST_BANNER + key.to_pem(), "ascii")
    (out / ROOT_CERT_FILE).write_text(_TEST_BANNER + cert.to_pem(), "ascii")
