"""The PKI application (PKI.社会保障) of a simulated third-generation card: SM2 authentication.

Installed on personas whose card profile has an ``[sm2_auth]`` section (``mohrss-3.0``):

* the DDF ``PKI.社会保障`` and the ADF ``SS.CERT.ADF1`` (also FID DF01), selectable by name
  as the profile names them; selecting either clears the SSSE security state like any other
  application switch (``SimCard.select_app``), and the PKI application never looks at it;
* the card's SM2 key pair, derived deterministically from the persona (ATR, card number,
  region, holder ID) so every build of a persona is the same card; ``[extra.pki] key`` may
  give the private key in hex instead (made by :mod:`sbcard.sim.pki`, see "Lazy material");
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

Lazy material (issue 13, first call < 300 ms): building the card installs the files and
commands only. The key pair and the certificate (and the SM2, X.509 and asn1crypto modules of
:mod:`sbcard.sim.pki` that make them) come the first time anything needs them: a PKI command,
any access to the content of EF 0012 / EF 0018 (READ/UPDATE BINARY, ``sbcard --sim-state``),
or ``PkiState.key`` / ``.certificate``. They are the values the card built them eagerly would
hold, made once under a lock when threads share the card. What making them could refuse
(a persona's bad dates, an ``[extra.pki] key`` out of range) is still refused at card build.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from types import ModuleType
from typing import TYPE_CHECKING

from sbcard.apdu.command import CommandApdu
from sbcard.apdu.sw import SW
from sbcard.card.filesystem import Access, DfSpec, EfSpec, Structure
from sbcard.card.profiles.sections import Sm2AuthConfig
from sbcard.crypto.card_algos import pki_pin_proof
from sbcard.errors import BadInputError
from sbcard.sim.card_os import Reply, SimCard, SimDF, SimEF, le_reply
from sbcard.sim.pki_plan import CardPlan, pki_conf

if TYPE_CHECKING:
    from sbcard.crypto import sm2, x509
    from sbcard.sim.persona import Persona

__all__ = ["PkiState", "install"]

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

# --------------------------------------------------------------------------- card material


def _material() -> ModuleType:
    """:mod:`sbcard.sim.pki`: SM2, X.509 and asn1crypto load here, at the first need."""
    from sbcard.sim import pki

    return pki


def _check(plan: CardPlan) -> None:
    """Refuse now, at card build, what making the material would refuse later."""
    if not plan.key_pair:
        return
    if pki_conf(plan.persona).key is not None:
        _material().card_key(plan.persona)     # its range: only a persona giving a key
    if plan.issued and (_utc(plan.not_after, time(23, 59, 59))
                        < _utc(plan.not_before, time(0, 0, 0))):
        raise BadInputError(f"persona {plan.persona.name}: PKI certificate: certificate "
                            "notAfter is before notBefore")


def _utc(value: date | datetime, end_of_day: time) -> datetime:
    """A validity bound as the certificate holds it (x509._as_datetime; a date that ends the
    validity is its last second, ``pki.issue_card_certificate``)."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return datetime.combine(value, end_of_day, tzinfo=UTC)


# --------------------------------------------------------------------------- on the card


def _fci(name: bytes) -> bytes:
    body = bytes((0x84, len(name))) + name + b"\xa5\x00"
    return bytes((0x6F, len(body))) + body


class _MaterialEF(SimEF):
    """EF 0012 / EF 0018: any access to the content first makes the card's key material
    (``PkiState.materialise``); ``fill`` is None once it is made."""

    fill: Callable[[], None] | None = None

    @property
    def data(self) -> bytearray:
        if self.fill is not None:
            self.fill()
        return self.raw

    @data.setter
    def data(self, value: bytearray) -> None:
        if self.fill is not None:
            self.fill()
        self.raw = value


@dataclass
class PkiState:
    """What the PKI application holds; tests may swap the key or the certificate.

    ``key`` (None: no key pair yet, EF 0012 all zeros) and ``certificate`` are made from
    ``plan`` at the first need (:meth:`materialise`); setting either makes them first, so a
    later need never overwrites what was set.
    """

    config: Sm2AuthConfig
    ddf: SimDF | None
    adf: SimDF
    plan: CardPlan | None             # None: the material is made (or was given)
    signatures: int = 0
    admin_pin: str = "12345678"
    admin_tries: int = 3
    user_pin: str | None = None       # set: the signing command needs it verified first
    user_tries: int = 3
    sign_config: Sm2AuthConfig | None = None    # the profile's [pki_sign] command, if any
    _key: sm2.PrivateKey | None = field(default=None, repr=False)
    _certificate: x509.Certificate | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def materialise(self) -> None:
        """Make the key pair and certificate of ``plan`` and write EF 0012 / EF 0018, once:
        threads sharing the card wait for the first one and then see the same values."""
        if self.plan is None:
            return
        with self._lock:
            plan = self.plan
            if plan is None:
                return
            key, certificate = _material().card_material(plan)
            self.key_ef.raw[:] = _key_file(key)
            if certificate is not None:
                self.cert_ef.raw[:] = _cert_file(certificate.der, self.config.cert_fid)
            self._key, self._certificate = key, certificate
            self.key_ef.fill = self.cert_ef.fill = None
            self.plan = None

    @property
    def key(self) -> sm2.PrivateKey | None:
        self.materialise()
        return self._key

    @key.setter
    def key(self, key: sm2.PrivateKey | None) -> None:
        self.materialise()
        self._key = key

    @property
    def certificate(self) -> x509.Certificate | None:
        self.materialise()
        return self._certificate

    @certificate.setter
    def certificate(self, certificate: x509.Certificate | None) -> None:
        self.materialise()
        self._certificate = certificate

    @property
    def cert_ef(self) -> _MaterialEF:
        ef = self.adf.efs[self.config.cert_fid]
        assert isinstance(ef, _MaterialEF)
        return ef

    @property
    def key_ef(self) -> _MaterialEF:
        ef = self.adf.efs[KEY_FILE_ID]
        assert isinstance(ef, _MaterialEF)
        return ef

    def set_key(self, key: sm2.PrivateKey | None) -> None:
        """The card's key pair; EF 0012 shows its public half (zeros when there is none)."""
        self.key = key
        self.key_ef.data[:] = _key_file(key)

    def set_certificate(self, der: bytes) -> None:
        """Write raw bytes (a certificate, or anything) into EF 0018, zero-padded."""
        self.cert_ef.data[:] = _cert_file(der, self.config.cert_fid)

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
        self.set_key(_material().generate_key())
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
        if len(payload) != (32 if conf.send == "digest" else conf.challenge_length):
            return b"", SW.WRONG_LENGTH
        signature = _material().sign(conf, self.key, payload)
        self.signatures += 1
        return le_reply(card, cmd, conf.response_prefix + signature, le_zero_rule=False)


def _key_file(key: sm2.PrivateKey | None) -> bytes:
    """EF 0012's content: header ‖ X ‖ Y of the public key, all zeros without a key pair."""
    if key is None:
        return bytes(len(KEY_HEADER) + 64)
    return KEY_HEADER + key.public_key.to_bytes(prefix=False)


def _cert_file(der: bytes, fid: int) -> bytes:
    """EF 0018's content: the bytes, zero-padded to the file size."""
    if len(der) > CERT_FILE_SIZE:
        raise BadInputError(f"certificate of {len(der)} bytes does not fit EF "
                            f"{fid:04X} ({CERT_FILE_SIZE} bytes)")
    return bytes(der) + b"\x00" * (CERT_FILE_SIZE - len(der))


def install(card: SimCard, persona: Persona) -> None:
    config = persona.profile.sm2_auth
    if config is None:
        return
    conf = pki_conf(persona)
    if not conf.enabled:
        return
    plan = CardPlan.of(persona)
    _check(plan)
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
    state = PkiState(config, ddf, adf, plan, admin_pin=conf.admin_pin, user_pin=conf.user_pin,
                     sign_config=persona.profile.pki_sign)
    for fid in (KEY_FILE_ID, config.cert_fid):        # zeros until the material is made
        built = adf.efs[fid]
        lazy = _MaterialEF(built.spec, built.read, built.write, data=built.data)
        lazy.fill = state.materialise
        adf.efs[fid] = lazy
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
