"""The PKI application (PKI.社会保障) of a simulated third-generation card: SM2 authentication.

Installed on personas whose card profile has an ``[sm2_auth]`` section (``mohrss-3.0``):

* the DDF ``PKI.社会保障`` and the ADF ``SS.CERT.ADF1`` (also FID DF01), selectable by name
  as the profile names them; selecting either clears the SSSE security state like any other
  application switch (``SimCard.select_app``), and the PKI application never looks at it;
* the card's SM2 key pair, derived deterministically from the persona (ATR, card number,
  region, holder ID) so every build of a persona is the same card; ``[extra.pki] key`` may
  give the private key in hex instead;
* EF 0012, the signature public key as public issuance code reads it (``00A40000020012`` +
  ``00B0000042``: 2-byte header ‖ X ‖ Y, all zeros while the card holds no key pair;
  leithergit/Z390Kylin Evolis_Z390_printer.cpp ReadCard). ``[extra.pki] key_pair = false``
  (default: as ``issued``) is a card without a key pair yet; ``key_pair = true, issued =
  false`` a card that holds its key pair but no certificate;
* EF 0018, the signature certificate (DER, zero-padded to 2 KB, free READ BINARY), issued by
  the public **TEST** root CA shipped in ``sbcard/keys/material/``; validity from the persona's
  issue and expiry dates (``[extra.pki] not_before`` / ``not_after`` override them);
* the authentication command exactly as the profile describes it (:class:`Sm2AuthConfig`),
  answered with an SM2 signature under the card key. The command is registered for the
  profile's INS only while the ADF is selected; elsewhere the INS keeps its previous handler
  (00 88 stays the symmetric INTERNAL AUTHENTICATE of the SSSE).

``[extra.pki] enabled = false`` leaves the application off a persona. The TEST root key is
public: nothing signed by it proves anything outside the simulator.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from sbcard.apdu.command import CommandApdu
from sbcard.apdu.sw import SW
from sbcard.card.filesystem import Access, DfSpec, EfSpec, Structure
from sbcard.card.profiles.sections import Sm2AuthConfig
from sbcard.crypto import sm2, x509
from sbcard.crypto.card_algos import pki_pin_proof
from sbcard.crypto.symmetric import sm3
from sbcard.errors import BadInputError
from sbcard.keys.builtin_ca import make_test_root, test_root, write_test_root
from sbcard.sim.card_os import Reply, SimCard, SimDF, le_reply
from sbcard.sim.extras import PKI_SECTION, PkiPersona

if TYPE_CHECKING:
    from sbcard.sim.persona import Persona

__all__ = ["install", "issue_card_certificate", "make_test_root", "test_root",
           "write_test_root"]

CERT_FILE_SIZE = 0x800
#: EF 0012: header ‖ X ‖ Y, read with Le 42 by public issuance code (Z390 ReadCard).
KEY_FILE_ID = 0x0012
#: ASSUMPTION: the 2-byte header before X ‖ Y (public code strips 2 bytes without looking).
KEY_HEADER = b"\x00\x40"
#: Security-status marker for "admin PIN verified in the PKI application" (not a card key
#: ID; cleared like every security state when another application is selected).
ADMIN_MARK = 0x1AD
#: … and "user PIN verified" (P2=81 of VERIFY, as public issuance code sends it).
USER_MARK = 0x1A1
DEFAULT_ADF_FID = 0xDF01

CARD_ORG = "sbcard TEST card issuer (simulated)"

# --------------------------------------------------------------------------- card material


def _persona_seed(persona: Persona) -> bytes:
    card = persona.card
    parts = [persona.atr.hex(), str(card.get("card_no", "")), str(card.get("region", "")),
             str(card.get("serial", "")), str(persona.holder.get("ssn", ""))]
    return "|".join(parts).encode("utf-8")


def card_key(persona: Persona) -> sm2.PrivateKey:
    """The card's SM2 signing key: ``[extra.pki] key`` (hex), else derived from the persona."""
    conf = _conf(persona)
    if conf.key is not None:
        try:
            return sm2.PrivateKey.from_bytes(conf.key)
        except BadInputError as exc:
            raise BadInputError(f"persona {persona.source}: [{PKI_SECTION}] key: {exc}") \
                from None
    digest = sm3(b"sbcard TEST PKI card signing key|" + _persona_seed(persona))
    return sm2.PrivateKey(int.from_bytes(digest, "big") % (sm2.N - 2) + 1)


def _date(value: Any, what: str, persona: Persona) -> date | datetime:
    if isinstance(value, datetime | date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise BadInputError(f"persona {persona.name}: {what} {value!r} is not YYYY-MM-DD") \
            from None


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
    conf = _conf(persona)
    card = persona.card
    ca_key, ca_cert = test_root()
    not_before = conf.not_before or _date(card.get("issue_date", "2020-01-01"),
                                          "certificate not_before", persona)
    not_after = conf.not_after or _date(card.get("expiry_date", "2049-12-31"),
                                        "certificate not_after", persona)
    serial = int.from_bytes(sm3(b"serial|" + _persona_seed(persona))[:10], "big") >> 1 | 1
    try:
        return issue_card_certificate(
            key.public_key, card_no=str(card.get("card_no", card.get("serial", ""))),
            region=str(card.get("region", "")), serial=serial, not_before=not_before,
            not_after=not_after, ca_key=ca_key, ca_cert=ca_cert)
    except BadInputError as exc:
        raise BadInputError(f"persona {persona.name}: PKI certificate: {exc}") from None


def _conf(persona: Persona) -> PkiPersona:
    """``[extra.pki]`` as the persona loader validated it (all defaults when absent)."""
    return persona.pki or PkiPersona()


# --------------------------------------------------------------------------- on the card


def _fci(name: bytes) -> bytes:
    body = bytes((0x84, len(name))) + name + b"\xa5\x00"
    return bytes((0x6F, len(body))) + body


@dataclass
class PkiState:
    """What the PKI application holds; tests may swap the key or the certificate."""

    config: Sm2AuthConfig
    ddf: SimDF | None
    adf: SimDF
    key: sm2.PrivateKey | None        # None: no key pair yet (EF 0012 all zeros)
    certificate: x509.Certificate | None
    signatures: int = 0
    admin_pin: str = "12345678"
    admin_tries: int = 3
    user_pin: str | None = None       # set: the signing command needs it verified first
    user_tries: int = 3
    sign_config: Sm2AuthConfig | None = None    # the profile's [pki_sign] command, if any

    @property
    def cert_ef(self):
        return self.adf.efs[self.config.cert_fid]

    @property
    def key_ef(self):
        return self.adf.efs[KEY_FILE_ID]

    def set_key(self, key: sm2.PrivateKey | None) -> None:
        """The card's key pair; EF 0012 shows its public half (zeros when there is none)."""
        self.key = key
        self.key_ef.data[:] = (KEY_HEADER + key.public_key.to_bytes(prefix=False)
                               if key is not None else bytes(len(KEY_HEADER) + 64))

    def set_certificate(self, der: bytes) -> None:
        """Write raw bytes (a certificate, or anything) into EF 0018, zero-padded."""
        if len(der) > CERT_FILE_SIZE:
            raise BadInputError(f"certificate of {len(der)} bytes does not fit EF "
                                f"{self.config.cert_fid:04X} ({CERT_FILE_SIZE} bytes)")
        self.cert_ef.data[:] = bytes(der) + b"\x00" * (CERT_FILE_SIZE - len(der))

    # -- issuance (personalisation), spec §6.2; the command bytes are the profile's --------
    def verify_admin(self, card: SimCard, cmd: CommandApdu) -> Reply:
        """00 20 01 00 10 E (admin) / 00 20 01 81 10 E (user, public issuance code
        leithergit/Z390Kylin Evolis_Z390_printer.cpp): E = SM4_{SM3(PIN)[:16]}(challenge,
        00-padded to 16) proves the PIN; the PIN itself never travels."""
        if cmd.p1 != 0x01 or cmd.p2 not in (0x00, 0x81):
            return b"", SW.WRONG_P1P2
        user = cmd.p2 == 0x81
        value = self.user_pin if user else self.admin_pin
        if value is None:
            return b"", SW.KEY_NOT_FOUND
        if len(cmd.data) != 16:
            return b"", SW.WRONG_LENGTH
        tries = self.user_tries if user else self.admin_tries
        if tries == 0:
            return b"", SW.AUTH_BLOCKED
        challenge, card.challenge = card.challenge, None
        if challenge is None:
            return b"", SW.NO_CHALLENGE
        pin = value + ("F" if len(value) % 2 else "")
        if cmd.data != pki_pin_proof(bytes.fromhex(pin), challenge):
            tries -= 1
            if user:
                self.user_tries = tries
            else:
                self.admin_tries = tries
            return b"", SW.AUTH_BLOCKED if tries == 0 else SW.VERIFY_FAILED | tries
        if user:
            self.user_tries = 3
        else:
            self.admin_tries = 3
        card.authenticated.add(USER_MARK if user else ADMIN_MARK)
        return b"", SW.OK

    def generate_key_pair(self, card: SimCard, cmd: CommandApdu) -> Reply:
        """80 40 00 00 08 C0020012 C2020013: a new key pair; the old certificate is void.

        Needs the user PIN: public issuance code verifies it (00 20 01 81 10 …) right before
        this command and no other PIN (leithergit/Z390Kylin Evolis_Z390_printer.cpp ReadCard).
        """
        if cmd.cla != 0x80:
            return b"", SW.CLA_NOT_SUPPORTED
        if USER_MARK not in card.authenticated:
            return b"", SW.SECURITY_NOT_SATISFIED
        if cmd.data != bytes.fromhex("C0020012C2020013"):
            return b"", SW.WRONG_DATA
        self.set_key(sm2.PrivateKey.generate())
        self.certificate = None
        self.cert_ef.data[:] = b"\x00" * CERT_FILE_SIZE
        return b"", SW.OK

    def export_public_key(self, card: SimCard, cmd: CommandApdu) -> Reply:
        """80 C9 82 00 08 C0020012 C2020013: header 0040 ‖ X ‖ Y of the signature key. Sent
        without Le it only prepares the answer, which ``80 C9 82 80 00`` then fetches — the
        two-APDU form of public issuance code (leithergit/Z390Kylin)."""
        if self.key is None:
            return b"", SW.KEY_NOT_FOUND
        if cmd.cla == 0x80 and (cmd.p1, cmd.p2) == (0x82, 0x80) and not cmd.data:
            return le_reply(card, cmd, b"\x00\x40" + self.key.public_key.to_bytes(prefix=False),
                            le_zero_rule=False)
        if cmd.cla != 0x80 or (cmd.p1, cmd.p2) != (0x82, 0x00):
            return b"", SW.WRONG_P1P2
        if cmd.le is None and cmd.data == bytes.fromhex("C0020012C2020013"):
            return b"", SW.OK
        if cmd.data != bytes.fromhex("C0020012C2020013"):
            return b"", SW.WRONG_DATA
        return le_reply(card, cmd, b"\x00\x40" + self.key.public_key.to_bytes(prefix=False),
                            le_zero_rule=False)

    def authenticate(self, card: SimCard, cmd: CommandApdu) -> Reply:
        return self._sign(self.config, card, cmd)

    def sign_data(self, card: SimCard, cmd: CommandApdu) -> Reply:
        """The profile's ``[pki_sign]`` command: sign the 32-byte e the terminal sends.

        ASSUMPTION written in mohrss-3.0.toml (no public source has the APDU): the same
        rules as the authentication command, user PIN included (6982 until it is verified).
        """
        assert self.sign_config is not None
        return self._sign(self.sign_config, card, cmd)

    def _sign(self, conf: Sm2AuthConfig, card: SimCard, cmd: CommandApdu) -> Reply:
        if cmd.cla != conf.cla:
            return b"", SW.CLA_NOT_SUPPORTED
        if self.key is None:
            return b"", SW.KEY_NOT_FOUND
        if self.user_pin is not None and USER_MARK not in card.authenticated:
            return b"", SW.SECURITY_NOT_SATISFIED
        if (cmd.p1, cmd.p2) != (conf.p1, conf.p2):
            return b"", SW.WRONG_P1P2
        if not cmd.data.startswith(conf.data_prefix):
            return b"", SW.WRONG_DATA
        payload = cmd.data[len(conf.data_prefix):]
        if conf.send == "digest":
            if len(payload) != 32:
                return b"", SW.WRONG_LENGTH
            e = payload
        else:
            if len(payload) != conf.challenge_length:
                return b"", SW.WRONG_LENGTH
            e = sm2.challenge_digest(self.key.public_key, payload,
                                     with_z=conf.hash == "sm3-z", user_id=conf.user_id)
        signature = sm2.sign_digest(self.key, e)
        self.signatures += 1
        if conf.signature == "der":
            signature = sm2.signature_to_der(signature)
        return le_reply(card, cmd, conf.response_prefix + signature, le_zero_rule=False)


def install(card: SimCard, persona: Persona) -> None:
    config = persona.profile.sm2_auth
    if config is None:
        return
    conf = _conf(persona)
    if not conf.enabled:
        return
    cert_ef = EfSpec(f"EF{config.cert_fid:04X}", config.cert_fid, None, Structure.TRANSPARENT,
                     "签名证书", "signature certificate", read=Access(),
                     write=Access.parse(f"key:{ADMIN_MARK:X}"), size=CERT_FILE_SIZE)
    key_ef = EfSpec(f"EF{KEY_FILE_ID:04X}", KEY_FILE_ID, None, Structure.TRANSPARENT,
                    "签名公钥", "signature public key", read=Access(), write=Access(never=True),
                    size=len(KEY_HEADER) + 64)
    adf_fid = config.adf_fid if config.adf_fid is not None else DEFAULT_ADF_FID
    adf = SimDF.build(DfSpec("SS.CERT.ADF1", adf_fid, config.adf_name, "证书应用",
                             "certificate application (ADF)", children=(key_ef, cert_ef)),
                      None, _fci(config.adf_name))
    ddf = None
    if config.ddf_name:
        ddf = SimDF.build(DfSpec("PKI", None, config.ddf_name, "PKI.社会保障",
                                 "PKI application (DDF)"), None, _fci(config.ddf_name))
        card.apps[config.ddf_name] = ddf
    card.apps[config.adf_name] = adf
    key = card_key(persona) if conf.key_pair else None
    state = PkiState(config, ddf, adf, key,
                     card_certificate(persona, key) if key is not None and conf.issued
                     else None,
                     admin_pin=conf.admin_pin, user_pin=conf.user_pin,
                     sign_config=persona.profile.pki_sign)
    state.set_key(key)
    if state.certificate is not None:
        state.set_certificate(state.certificate.der)
    card.pki = state
    in_adf = {config.ins: state.authenticate, 0x20: state.verify_admin,
              0x40: state.generate_key_pair, 0xC9: state.export_public_key}
    if state.sign_config is not None:
        in_adf[state.sign_config.ins] = state.sign_data
    for ins, method in in_adf.items():
        card.handlers[ins] = _adf_only(method, card.handlers.get(ins))


def _adf_only(method, previous):
    """Route an INS to the PKI application while its ADF is selected, elsewhere as before."""
    def handler(c: SimCard, cmd: CommandApdu) -> Reply:
        st = c.pki
        if st is not None and c.current_df is st.adf:
            return method(c, cmd)
        if previous is not None:
            return previous(c, cmd)
        return b"", SW.INS_NOT_SUPPORTED
    return handler
