"""Issuing a 3.0 card's SM2 signature key pair and certificate (personalisation, spec §6.2).

The card generates its key pair itself (the private key never leaves it); sbcard exports the
public key, has the configured SM2 CA issue a certificate for it, writes it into EF 0018,
reads it back, and finally lets the card sign a fresh challenge that is checked against the
new certificate — the same check ``sbcard verify card --sm2`` makes. The command bytes come
from the card profile's ``[sm2_issue]`` and ``[sm2_auth]`` sections (assumptions stated there).
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from pathlib import Path

from sbcard.apdu import commands as cmds
from sbcard.apdu.channel import ApduChannel
from sbcard.apdu.command import CommandApdu
from sbcard.card.profiles import CardProfile
from sbcard.card.profiles.sections import ISSUE_SECTION, IssueConfig
from sbcard.crypto import sm2, x509
from sbcard.errors import BadInputError, MismatchError
from sbcard.keys.builtin_ca import test_root
from sbcard.ops.sm2auth import (
    Sm2AuthConfig,
    read_certificate,
    select_pki,
    sm2_authenticate,
    verify_pki_pin,
)

SECTION = ISSUE_SECTION


@dataclass(frozen=True)
class CertificateAuthority:
    """The SM2 CA that signs card certificates (a bureau's issuing CA, or the TEST root)."""

    key: sm2.PrivateKey
    certificate: x509.Certificate

    @classmethod
    def load(cls, spec: str) -> CertificateAuthority:
        """``test`` (the simulator's public TEST root) or ``CERT.pem,KEY.pem``."""
        if spec == "test":
            key, cert = test_root()
            return cls(key, cert)
        cert_path, sep, key_path = spec.partition(",")
        if not sep:
            raise BadInputError("--ca takes `test` or `CERT.pem,KEY.pem`")
        try:
            cert = x509.Certificate.from_pem(Path(cert_path).read_text("ascii"), cert_path)
            key = sm2.load_private_key(Path(key_path).read_bytes())
        except FileNotFoundError as exc:
            raise BadInputError(f"--ca: no such file {exc.filename}") from None
        if cert.public_key != key.public_key:
            raise BadInputError("--ca: the key does not belong to the certificate")
        return cls(key, cert)


def _apdu(header_and_data: bytes, le: int | None, name: str) -> CommandApdu:
    cmd = CommandApdu.parse(header_and_data)
    return CommandApdu(cmd.cla, cmd.ins, cmd.p1, cmd.p2, cmd.data, le, name=name)


def read_card_key(channel: ApduChannel, conf: IssueConfig,
                  auth: Sm2AuthConfig) -> sm2.PublicKey | None:
    """The key pair the card already holds (EF ``key_fid``), or None when the EF is all zeros.

    Public issuance code reads ``00A40000020012`` + ``00B0000042`` and generates only when
    the answer is all zeros (leithergit/Z390Kylin Evolis_Z390_printer.cpp, ReadCard).
    """
    assert conf.key_fid is not None
    channel.check(cmds.select_ef(conf.key_fid, p1=auth.select_p1))
    data = channel.check(cmds.read_binary(0, conf.key_read_le)).data
    if not any(data):
        return None
    point = data[conf.export_header:conf.export_header + 64]
    if len(point) != 64:
        raise MismatchError(f"EF {conf.key_fid:04X} holds {len(data)} bytes, not a public key "
                            f"({conf.export_header} + 64)")
    return sm2.PublicKey.from_bytes(point)


def _generate(channel: ApduChannel, conf: IssueConfig) -> sm2.PublicKey:
    channel.check(_apdu(conf.generate, None, "GENERATE SM2 KEY PAIR"))
    if conf.export_fetch:
        channel.check(_apdu(conf.export, None, "EXPORT SM2 PUBLIC KEY"))
        fetch = CommandApdu.parse(conf.export_fetch)
        answer = channel.check(CommandApdu(fetch.cla, fetch.ins, fetch.p1, fetch.p2,
                                           fetch.data, fetch.le or 256,
                                           name="FETCH SM2 PUBLIC KEY")).data
    else:
        answer = channel.check(_apdu(conf.export, conf.export_le,
                                     "EXPORT SM2 PUBLIC KEY")).data
    point = answer[conf.export_header:conf.export_header + 64]
    if len(point) != 64:
        raise MismatchError(f"the card exported {len(answer)} bytes, not a public key "
                            f"({conf.export_header} + 64)")
    return sm2.PublicKey.from_bytes(point)


@dataclass(frozen=True)
class Issued:
    """What :func:`issue_sm2` did: the certificate, and whether the card made a new key."""

    certificate: x509.Certificate
    generated: bool


def issue_sm2(channel: ApduChannel, profile: CardProfile, ca: CertificateAuthority, *,
              admin_pin: str | None, card_no: str, region: str,
              not_before: dt.date, not_after: dt.date,
              user_pin: str | None = None) -> Issued:
    """Certify the card's key pair (generated on the card unless it holds one), write the
    certificate, read it back, and prove it with a signature.

    The order is public issuance code's (leithergit/Z390Kylin): read EF 0012; when it is
    empty, VERIFY the user PIN, generate and export; VERIFY the user (if not yet) and the
    admin PIN; write EF 0018.
    """
    conf = IssueConfig.from_profile(profile)
    auth = Sm2AuthConfig.from_profile(profile)
    upin = user_pin or conf.default_user_pin
    with channel.exclusive():
        select_pki(channel, auth)
        public = read_card_key(channel, conf, auth) if conf.key_fid is not None else None
        generated = public is None
        if conf.user_verify:
            verify_pki_pin(channel, conf.user_verify, upin, auth.pin_challenge_length,
                           "VERIFY user PIN (PKI)", "the PKI user PIN")
        if public is None:
            public = _generate(channel, conf)
        verify_pki_pin(channel, conf.admin_verify, admin_pin or conf.default_admin_pin,
                       auth.pin_challenge_length, "VERIFY admin PIN (PKI)",
                       "the PKI admin PIN")
        subject = x509.Name.build(c="CN", o=ca.certificate.subject.get(x509.OID_O) or "issuer",
                                  ou=region or None, cn=f"card {card_no}")
        cert = x509.build_certificate(
            subject=subject, public_key=public, issuer=ca.certificate.subject,
            issuer_key=ca.key, serial=secrets.randbits(63) | 1, not_before=not_before,
            not_after=not_after, key_usage=("digitalSignature", "nonRepudiation"))
        channel.check(cmds.select_ef(auth.cert_fid, p1=auth.select_p1))
        der = cert.der
        for offset in range(0, len(der), conf.cert_chunk):
            channel.check(cmds.update_binary(offset, der[offset:offset + conf.cert_chunk]))
        if read_certificate(channel, auth) != der:
            raise MismatchError("the certificate read back from the card differs from the one "
                                "written")
        sm2_authenticate(channel, auth, [ca.certificate],
                         user_pin=upin if conf.user_verify else None)
    return Issued(cert, generated)
