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
from sbcard.crypto.card_algos import pki_pin_proof
from sbcard.errors import BadInputError, MismatchError
from sbcard.keys.builtin import test_root
from sbcard.ops.sm2auth import Sm2AuthConfig, read_certificate, select_pki, sm2_authenticate

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


def issue_sm2(channel: ApduChannel, profile: CardProfile, ca: CertificateAuthority, *,
              admin_pin: str | None, card_no: str, region: str,
              not_before: dt.date, not_after: dt.date) -> x509.Certificate:
    """Generate on the card, certify, write, read back, and prove with a signature."""
    conf = IssueConfig.from_profile(profile)
    auth = Sm2AuthConfig.from_profile(profile)
    pin = admin_pin or conf.default_admin_pin
    with channel.exclusive():
        select_pki(channel, auth)
        challenge = channel.check(cmds.get_challenge(8)).data
        block = bytes.fromhex(pin + ("F" if len(pin) % 2 else ""))
        proof = pki_pin_proof(block, challenge)
        channel.check(_apdu(conf.admin_verify + bytes((len(proof),)) + proof, None,
                            "VERIFY admin PIN (PKI)"))
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
        public = sm2.PublicKey.from_bytes(answer[conf.export_header:conf.export_header + 64])
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
        sm2_authenticate(channel, auth, [ca.certificate])
    return cert
