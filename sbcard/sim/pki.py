"""The SM2 material of a simulated third-generation card's PKI application (PKI.社会保障).

The application itself (files, PINs, commands) is :mod:`sbcard.sim.pki_app`, which loads this
module (SM2, X.509, asn1crypto) only when a PKI command or a read of EF 0012 / EF 0018 first
needs the card's key pair or certificate: a 3.0 card read with iReadCardBas never does
(issue 13, first call). What is made here:

* the card's SM2 key pair, derived deterministically from the persona (ATR, card number,
  region, holder ID) so every build of a persona is the same card; ``[extra.pki] key`` may
  give the private key in hex instead;
* the signature certificate of EF 0018, issued by the public **TEST** root CA shipped in
  ``sbcard/keys/material/``; validity from the persona's issue and expiry dates
  (``[extra.pki] not_before`` / ``not_after`` override them);
* the SM2 signatures of the authentication and signing commands (:func:`sign`).

The TEST root key is public: nothing signed by it proves anything outside the simulator.
"""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from sbcard.card.profiles.sections import Sm2AuthConfig
from sbcard.crypto import sm2, x509
from sbcard.crypto.symmetric import sm3
from sbcard.errors import BadInputError
from sbcard.keys.builtin_ca import make_test_root, test_root, write_test_root
from sbcard.sim.extras import PKI_SECTION
from sbcard.sim.pki_plan import CardPlan, persona_seed, pki_conf

if TYPE_CHECKING:
    from sbcard.sim.persona import Persona

__all__ = ["card_certificate", "card_key", "card_material", "issue_card_certificate",
           "make_test_root", "sign", "test_root", "write_test_root"]

CARD_ORG = "sbcard TEST card issuer (simulated)"


def card_key(persona: Persona) -> sm2.PrivateKey:
    """The card's SM2 signing key: ``[extra.pki] key`` (hex), else derived from the persona."""
    conf = pki_conf(persona)
    if conf.key is not None:
        try:
            return sm2.PrivateKey.from_bytes(conf.key)
        except BadInputError as exc:
            raise BadInputError(f"persona {persona.source}: [{PKI_SECTION}] key: {exc}") \
                from None
    digest = sm3(b"sbcard TEST PKI card signing key|" + persona_seed(persona))
    return sm2.PrivateKey(int.from_bytes(digest, "big") % (sm2.N - 2) + 1)


def issue_card_certificate(public_key: sm2.PublicKey, *, card_no: str, region: str,
                           serial: int, not_before: date | datetime,
                           not_after: date | datetime, ca_key: sm2.PrivateKey,
                           ca_cert: x509.Certificate) -> x509.Certificate:
    """A card signature certificate as the simulator issues it (reproducible bytes)."""
    end = not_after
    if isinstance(end, date) and not isinstance(end, datetime):
        end = datetime(end.year, end.month, end.day, 23, 59, 59, tzinfo=UTC)
    return _issue(public_key, card_no, region, serial, not_before, end, ca_key, ca_cert.der)


@functools.lru_cache(maxsize=64)
def _issue(public_key: sm2.PublicKey, card_no: str, region: str, serial: int,
           not_before: date | datetime, not_after: date | datetime, ca_key: sm2.PrivateKey,
           ca_der: bytes) -> x509.Certificate:
    ca_cert = x509.Certificate.from_der(ca_der, "issuing CA")
    subject = x509.Name.build(c="CN", o=CARD_ORG, ou=region or None,
                              cn=f"TEST card {card_no}".strip())
    return x509.build_certificate(
        subject=subject, public_key=public_key, issuer=ca_cert.subject, issuer_key=ca_key,
        serial=serial, not_before=not_before, not_after=not_after,
        key_usage=("digitalSignature", "nonRepudiation"), deterministic=True,
    )


def card_certificate(persona: Persona, key: sm2.PrivateKey) -> x509.Certificate:
    """The persona's signature certificate for ``key``, issued by the TEST root."""
    return _certificate(CardPlan.of(persona), key)


def _certificate(plan: CardPlan, key: sm2.PrivateKey) -> x509.Certificate:
    ca_key, ca_cert = test_root()
    not_before, not_after = plan.not_before, plan.not_after
    try:
        return issue_card_certificate(
            key.public_key, card_no=plan.card_no, region=plan.region, serial=plan.serial,
            not_before=not_before, not_after=not_after, ca_key=ca_key, ca_cert=ca_cert)
    except BadInputError as exc:
        raise BadInputError(f"persona {plan.persona.name}: PKI certificate: {exc}") from None


def card_material(plan: CardPlan) -> tuple[sm2.PrivateKey | None, x509.Certificate | None]:
    """The key pair and certificate a freshly built card holds (None where it has none)."""
    if not plan.key_pair:
        return None, None
    key = card_key(plan.persona)
    return key, _certificate(plan, key) if plan.issued else None


def generate_key() -> sm2.PrivateKey:
    """A new key pair, as the card's key generation command makes one."""
    return sm2.PrivateKey.generate()


def sign(conf: Sm2AuthConfig, key: sm2.PrivateKey, payload: bytes) -> bytes:
    """The signature the command ``conf`` answers for ``payload`` (already length-checked):
    over the digest the terminal sent (``send = digest``), or over the challenge's digest."""
    if conf.send == "digest":
        e = payload
    else:
        e = sm2.challenge_digest(key.public_key, payload, with_z=conf.hash == "sm3-z",
                                 user_id=conf.user_id)
    signature = sm2.sign_digest(key, e)
    return sm2.signature_to_der(signature) if conf.signature == "der" else signature
