"""Card authentication the third-generation way: the card signs a fresh challenge with SM2.

Flow (:func:`sm2_authenticate`): SELECT the PKI application (DDF ``PKI.社会保障``, then ADF
``SS.CERT.ADF1``), read the signature certificate (EF 0018) with READ BINARY, check it
against the trust store (roots given as PEM), send a fresh random challenge with the
profile's authentication command, and verify the card's signature with the certificate's
key. Nothing on the card changes and no PIN is needed.

The authentication APDU of real cards is not public (spec reference §6.2). Every byte of it
comes from the card profile's ``[sm2_auth]`` section (:class:`Sm2AuthConfig`): the default
in ``mohrss-3.0.toml`` is an ASSUMPTION (ISO 7816-4 INTERNAL AUTHENTICATE ``00 88 00 00``
with a 32-byte challenge, answered by raw ``r‖s`` over SM3(Z‖challenge)), and a region's
real command is described there without code changes (docs/sm2-authentication.md). The
simulator (``sbcard.sim.pki_app``) answers whatever the profile describes.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sbcard.apdu import commands as cmds
from sbcard.apdu.channel import ApduChannel
from sbcard.apdu.command import CommandApdu
from sbcard.apdu.sw import SW, CardError, SecurityStatusError, describe_sw
from sbcard.card.profiles import CardProfile
from sbcard.card.profiles.sections import SECTION, SIGN_SECTION, Sm2AuthConfig, sign_config
from sbcard.crypto import sm2, x509
from sbcard.crypto.card_algos import pki_pin_proof
from sbcard.errors import BadInputError, MismatchError
from sbcard.hexutil import to_hex
from sbcard.keys.builtin_ca import test_root_pem

__all__ = ["SECTION", "SIGN_SECTION", "Sm2AuthConfig", "Sm2AuthResult", "load_trust_roots",
           "read_certificate", "select_pki", "sign_config", "sm2_authenticate"]

#: ``--trust test``: the public TEST root (shipped as package data, ``sbcard.keys.builtin_ca``).
TEST_TRUST = "test"
#: Certificate files are about 1 KB; refuse to follow a DER header into absurd sizes.
MAX_CERT_FILE = 8 * 1024


# --------------------------------------------------------------------------- trust store


def load_trust_roots(spec: str) -> list[x509.Certificate]:
    """Roots from a PEM (or DER) file, or ``test`` for the simulator's TEST root.

    Malformed files raise BadInputError; a file without any SM2 certificate too.
    """
    if spec == TEST_TRUST:
        certs = x509.load_certificates(test_root_pem(), "built-in TEST root")
    else:
        certs = x509.read_certificates_file(spec, "trust store")
    roots = [c for c in certs if c.public_key is not None]
    if not roots:
        raise BadInputError(f"trust store {spec}: no SM2 certificate among its {len(certs)} "
                            "certificate(s)")
    return roots


# --------------------------------------------------------------------------- the command


def digest(config: Sm2AuthConfig, public_key: sm2.PublicKey, challenge: bytes) -> bytes:
    """e, the 32 bytes the card's signature is over."""
    return sm2.challenge_digest(public_key, challenge, with_z=config.hash == "sm3-z",
                                user_id=config.user_id)


def payload(config: Sm2AuthConfig, public_key: sm2.PublicKey, challenge: bytes) -> bytes:
    """The data field after ``data_prefix``: the challenge, or its digest e."""
    return digest(config, public_key, challenge) if config.send == "digest" else challenge


def decode_answer(config: Sm2AuthConfig, data: bytes) -> bytes:
    """The card's answer → raw r‖s; MismatchError when it is not a signature at all."""
    if not data.startswith(config.response_prefix):
        raise MismatchError(
            f"{config.name}: the card's answer does not start with "
            f"{to_hex(config.response_prefix)} as the profile says (got {to_hex(data[:8])}…)"
        )
    body = data[len(config.response_prefix):]
    try:
        if config.signature == "der":
            return sm2.signature_from_der(body)
        if len(body) != 64:
            raise BadInputError(f"{len(body)} bytes, expected 64 (r‖s)")
        return body
    except BadInputError as exc:
        raise MismatchError(
            f"{config.name}: the card's answer is not a {config.signature} SM2 signature "
            f"({exc})"
        ) from None


# --------------------------------------------------------------------------- the flow


@dataclass(frozen=True)
class Sm2AuthResult:
    certificate: x509.Certificate
    root: x509.Certificate
    challenge: bytes
    signature: bytes                      # raw r‖s as verified

    @property
    def subject(self) -> str:
        return str(self.certificate.subject)

    @property
    def serial(self) -> str:
        return self.certificate.serial_hex

    def to_json(self) -> dict[str, Any]:
        cert = self.certificate
        return {
            "subject": self.subject,
            "serial": self.serial,
            "issuer": str(cert.issuer),
            "not_before": cert.not_before.isoformat(),
            "not_after": cert.not_after.isoformat(),
            "root": str(self.root.subject),
            "certificate_sm3": cert.fingerprint_sm3,
        }


class NoPkiApplicationError(MismatchError):
    """The card has no PKI application: not a third-generation card."""


def select_pki(channel: ApduChannel, config: Sm2AuthConfig) -> None:
    """SELECT the DDF (if named), then the ADF by name or FID.

    A 6A82 on the DDF means the card has no PKI application: a clear MismatchError.
    """
    if config.ddf_name:
        r = channel.send(cmds.select_by_name(config.ddf_name))
        if r.sw == SW.FILE_NOT_FOUND:
            raise NoPkiApplicationError(
                f"the card has no PKI application {_gbk(config.ddf_name)} "
                f"({describe_sw(r.sw)}): SM2 authentication needs a third-generation (3.0) card"
            )
        if not r.ok:
            raise CardError.for_sw(r.sw, "SELECT PKI DDF", r.data)
    if config.adf_name:
        r = channel.send(cmds.select_by_name(config.adf_name))
        if r.sw == SW.FILE_NOT_FOUND:
            raise MismatchError(f"the card has no certificate application "
                                f"{_gbk(config.adf_name)} ({describe_sw(r.sw)})")
        if not r.ok:
            raise CardError.for_sw(r.sw, "SELECT PKI ADF", r.data)
    else:
        assert config.adf_fid is not None
        fid = config.adf_fid.to_bytes(2, "big")
        channel.check(CommandApdu(0x00, 0xA4, 0x00, 0x00, fid, 256,
                                  name=f"SELECT PKI ADF {config.adf_fid:04X}"))


def _gbk(name: bytes) -> str:
    try:
        return name.decode("gbk")
    except UnicodeDecodeError:
        return to_hex(name)


def read_certificate(channel: ApduChannel, config: Sm2AuthConfig) -> bytes:
    """SELECT EF ``cert_fid`` and READ BINARY it in chunks, as far as its DER header says."""
    fid = config.cert_fid
    r = channel.send(cmds.select_ef(fid, p1=config.select_p1))
    if r.sw == SW.FILE_NOT_FOUND:
        raise MismatchError(f"the PKI application has no certificate file {fid:04X} "
                            f"({describe_sw(r.sw)})")
    if not r.ok:
        raise CardError.for_sw(r.sw, f"SELECT EF {fid:04X}", r.data)
    data = bytearray()
    total: int | None = None
    while total is None or len(data) < total:
        want = config.read_chunk if total is None else min(config.read_chunk, total - len(data))
        r = channel.send(cmds.read_binary(len(data), want))
        if not r.ok and r.sw != SW.END_OF_FILE:
            raise CardError.for_sw(r.sw, f"READ BINARY EF {fid:04X} @{len(data)}", r.data)
        if not r.data:
            break
        data += r.data
        if total is None and len(data) >= 5:
            total = _der_length(bytes(data), fid)
        if r.sw == SW.END_OF_FILE:
            break
    if total is None:
        _der_length(bytes(data) + b"\x00" * 5, fid)       # says why: empty, not DER, …
    if total is None or len(data) < total:
        raise MismatchError(f"certificate file {fid:04X} ends after {len(data)} bytes, before "
                            "the certificate it announces is complete")
    return bytes(data[:total])


def _der_length(head: bytes, fid: int) -> int:
    """Total size of the DER SEQUENCE starting ``head``; MismatchError for anything else."""
    if set(head) <= {0x00} or set(head) <= {0xFF}:
        raise MismatchError(f"certificate file {fid:04X} is empty (card not personalised with "
                            "a certificate)")
    if head[:1] != b"\x30" or len(head) < 2:                # not a DER SEQUENCE
        raise MismatchError(f"certificate file {fid:04X} does not hold a DER certificate "
                            f"(starts {to_hex(head[:4])})")
    total = x509.encoded_length(head)
    if total is None:
        raise MismatchError(f"certificate file {fid:04X}: malformed DER length")
    if total > MAX_CERT_FILE:
        raise MismatchError(f"certificate file {fid:04X} announces {total} bytes: not a "
                            "certificate")
    return total


class PkiPinNeededError(SecurityStatusError):
    """6982 from the PKI application's signing command: the user PIN must be verified."""


def verify_pki_user_pin(channel: ApduChannel, config: Sm2AuthConfig, pin: str) -> None:
    """Prove the PKI user PIN to the selected PKI application (never sends the PIN itself).

    GET CHALLENGE (``pin_challenge_length``), then ``user_pin_verify`` ‖ 10 ‖
    SM4-ECB_{SM3(PIN as BCD)[0:16]}(challenge). 63Cx/6983 raise the usual PIN errors.
    """
    verify_pki_pin(channel, config.user_pin_verify, pin, config.pin_challenge_length,
                   "VERIFY PKI user PIN", "the PKI user PIN")


def verify_pki_pin(channel: ApduChannel, head: bytes, pin: str, challenge_length: int,
                   name: str, what: str) -> None:
    """The PKI application's PIN proof with the VERIFY header ``head`` (user ``00200181``,
    admin ``00200100``, public issuance code leithergit/Z390Kylin)."""
    if not (pin.isascii() and pin.isdigit() and 4 <= len(pin) <= 16):
        raise BadInputError(f"{what} is 4 to 16 digits")
    challenge = channel.check(cmds.get_challenge(challenge_length)).data
    block = bytes.fromhex(pin + ("F" if len(pin) % 2 else ""))
    proof = pki_pin_proof(block, challenge)
    channel.check(CommandApdu(head[0], head[1], head[2], head[3], proof, name=name))


def sm2_authenticate(channel: ApduChannel, profile: CardProfile | Sm2AuthConfig,
                     trust_roots: Sequence[x509.Certificate], *, now: datetime | None = None,
                     challenge: bytes | None = None,
                     user_pin: str | None = None) -> Sm2AuthResult:
    """Prove the card genuine with its SM2 key and certificate; see the module docstring.

    Raises MismatchError (exit 9) when the certificate is malformed, expired, not issued by
    a trusted root, or when the signature over the challenge does not verify; CardError when
    the card refuses a command (e.g. 6D00: the profile's command is not this card's).
    ``challenge`` fixes the challenge (tests only; a real check needs a fresh one).
    ``user_pin`` is verified before signing when given; a card that wants it and did not
    get it answers 6982, raised as :class:`PkiPinNeededError`.
    """
    config = profile if isinstance(profile, Sm2AuthConfig) else Sm2AuthConfig.from_profile(profile)
    if not trust_roots:
        raise BadInputError("no trusted root certificate given")
    now = now or datetime.now(UTC)
    with channel.exclusive():
        cert, public = card_certificate(channel, config)
        path = x509.verify_chain(cert, trust_roots, now=now)
        usage = cert.key_usage
        if usage is not None and not usage & {"digitalSignature", "nonRepudiation"}:
            raise x509.UntrustedCertificateError(
                f"card certificate {cert.describe()} is not for signatures (keyUsage "
                f"{', '.join(sorted(usage))})"
            )
        if user_pin is not None:
            verify_pki_user_pin(channel, config, user_pin)
        elif config.user_pin == "required":
            raise BadInputError(f"{config.origin}: the PKI application needs the user PIN "
                                "before signing (user_pin = \"required\"): give it")
        if challenge is None:
            challenge = secrets.token_bytes(config.challenge_length)
        response = channel.send(config.command(payload(config, public, challenge)))
        if response.sw == SW.SECURITY_NOT_SATISFIED and user_pin is None:
            raise PkiPinNeededError(
                SW.SECURITY_NOT_SATISFIED,
                f"{config.name}: PKI PIN needed — the card's PKI application signs only after "
                "its user PIN (give it with --pki-pin-stdin or at the prompt)")
        if not response.ok:
            raise CardError.for_sw(
                response.sw,
                f"{config.name} [{config.describe()}, from {config.origin}; the command is an "
                "assumption unless your profile names this card's real one]",
                response.data,
            )
        signature = decode_answer(config, response.data)
    e = digest(config, public, challenge)
    if not sm2.verify_digest(public, e, signature):
        raise MismatchError(
            f"SM2 authentication failed: the card's signature over the challenge does not "
            f"verify with the key of its certificate {cert.describe()} (not a genuine card, or "
            "a copied certificate)"
        )
    return Sm2AuthResult(cert, path[-1], challenge, signature)


# --------------------------------------------------------------------------- signing data


def card_certificate(channel: ApduChannel,
                     config: Sm2AuthConfig) -> tuple[x509.Certificate, sm2.PublicKey]:
    """SELECT the PKI application and read its signature certificate and key (no trust check)."""
    select_pki(channel, config)
    der = read_certificate(channel, config)
    try:
        cert = x509.Certificate.from_der(der, f"card certificate (EF {config.cert_fid:04X})")
    except x509.CertificateFormatError as exc:
        raise MismatchError(f"{exc} (malformed)") from None
    if cert.public_key is None:
        raise MismatchError(f"card certificate {cert.describe()} holds no SM2 key")
    return cert, cert.public_key


@dataclass(frozen=True)
class SignedData:
    """The card's SM2 signature over some data, and the certificate whose key made it."""

    certificate: x509.Certificate
    digest: bytes                         # e = SM3(Z‖data), what was signed
    signature: bytes                      # raw r‖s


def sign_data(channel: ApduChannel, config: Sm2AuthConfig, data: bytes,
              user_pin: str | None = None) -> SignedData:
    """Have the card's PKI application sign ``data`` (national PKI_SignData).

    SELECT the application, read the certificate (its key gives Z), verify ``user_pin`` when
    given, send e = SM3(Z‖data) with the profile's signing command, and check the answer
    with the certificate's key before returning it. No trust check: signing proves nothing to
    us, the relying party checks the chain. A card that wants the PIN and did not get it
    answers 6982: :class:`PkiPinNeededError`.
    """
    with channel.exclusive():
        cert, public = card_certificate(channel, config)
        if user_pin:
            verify_pki_user_pin(channel, config, user_pin)
        response = channel.send(config.command(payload(config, public, data)))
        if response.sw == SW.SECURITY_NOT_SATISFIED and not user_pin:
            raise PkiPinNeededError(
                SW.SECURITY_NOT_SATISFIED,
                f"{config.name}: PKI PIN needed — the card's PKI application signs only after "
                "its user PIN")
        if not response.ok:
            raise CardError.for_sw(
                response.sw, f"{config.name} [{config.describe()}, from {config.origin}]",
                response.data)
        signature = decode_answer(config, response.data)
    e = digest(config, public, data)
    if not sm2.verify_digest(public, e, signature):
        raise MismatchError(f"{config.name}: the card's signature does not verify with the key "
                            f"of its certificate {cert.describe()}")
    return SignedData(cert, e, signature)
