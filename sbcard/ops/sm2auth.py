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
simulator (``sbcard.sim.pki``) answers whatever the profile describes.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from sbcard.apdu import commands as cmds
from sbcard.apdu.channel import ApduChannel
from sbcard.apdu.command import CommandApdu
from sbcard.apdu.sw import SW, CardError, SecurityStatusError, describe_sw
from sbcard.card.profiles import CardProfile
from sbcard.crypto import sm2, x509
from sbcard.crypto.card_algos import pki_pin_proof
from sbcard.crypto.symmetric import sm3
from sbcard.errors import BadInputError, MismatchError
from sbcard.hexutil import parse_hex, to_hex

#: Where the built-in profiles keep this feature's settings.
SECTION = "sm2_auth"
#: The data-signing command (national PKI_SignData): keys over ``[sm2_auth]``'s.
SIGN_SECTION = "pki_sign"
#: ``--trust test``: the simulator's public TEST root (shipped as package data).
TEST_TRUST = "test"
TEST_ROOT_RESOURCE = ("pki", "test-root-ca.pem")

_SEND_MODES = ("challenge", "digest")
_HASH_MODES = ("sm3-z", "sm3")
#: Certificate files are about 1 KB; refuse to follow a DER header into absurd sizes.
MAX_CERT_FILE = 8 * 1024


# --------------------------------------------------------------------------- profile data


def _hex_field(section: dict[str, Any], key: str, default: str, size: int | None,
               origin: str) -> bytes:
    value = section.get(key, default)
    if not isinstance(value, str):
        raise BadInputError(f"{origin}: [{SECTION}] {key} must be a hex string")
    raw = parse_hex(value, f"{origin} [{SECTION}] {key}")
    if size is not None and len(raw) != size:
        raise BadInputError(f"{origin}: [{SECTION}] {key} must be {size} byte(s), "
                            f"got {len(raw)}")
    return raw


def _byte(section: dict[str, Any], key: str, default: str, origin: str) -> int:
    return _hex_field(section, key, default, 1, origin)[0]


def _int(section: dict[str, Any], key: str, default: int, low: int, high: int,
         origin: str) -> int:
    value = section.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise BadInputError(f"{origin}: [{SECTION}] {key} must be an integer {low}..{high}, "
                            f"got {value!r}")
    return value


def _choice(section: dict[str, Any], key: str, default: str, choices: Sequence[str],
            origin: str) -> str:
    value = str(section.get(key, default)).lower()
    if value not in choices:
        raise BadInputError(f"{origin}: [{SECTION}] {key} must be one of "
                            f"{', '.join(choices)}, got {value!r}")
    return value


_KNOWN_KEYS = {"ddf_name", "adf_name", "adf_fid", "cert_fid", "read_chunk", "cla", "ins", "p1",
               "p2", "data_prefix", "challenge_length", "send", "hash", "user_id",
               "user_id_hex", "le", "signature", "response_prefix", "name", "user_pin",
               "user_pin_verify", "pin_challenge_length", "select_p1"}
_USER_PIN_MODES = ("on-demand", "required")


@dataclass(frozen=True)
class Sm2AuthConfig:
    """The PKI application's names, the certificate file and the authentication command.

    Read from a profile's ``[sm2_auth]`` section (:meth:`from_profile`); the defaults here are
    the ones documented in ``mohrss-3.0.toml``.
    """

    ddf_name: bytes = bytes.fromhex("504B492EC9E7BBE1B1A3D5CF")     # PKI.社会保障 (GBK)
    adf_name: bytes = bytes.fromhex("53532E434552542E41444631")     # SS.CERT.ADF1
    adf_fid: int | None = None            # select the ADF by FID (e.g. DF01) when no name
    cert_fid: int = 0x0018                # signature certificate
    read_chunk: int = 0xE0                # READ BINARY Le
    cla: int = 0x00
    ins: int = 0x88                       # INTERNAL AUTHENTICATE (ASSUMPTION)
    p1: int = 0x00
    p2: int = 0x00
    data_prefix: bytes = b""              # bytes before the challenge/digest (e.g. a key ref)
    challenge_length: int = 32
    send: str = "challenge"               # "challenge": the card hashes; "digest": we send e
    hash: str = "sm3-z"                   # e = SM3(Z‖challenge) ("sm3": SM3(challenge), no Z)
    user_id: bytes = sm2.DEFAULT_ID       # the ID in Z
    le: int | None = 256                  # Le of the command (256 = 00); None = no Le
    signature: sm2.SignatureEncoding = sm2.SignatureEncoding.RAW
    response_prefix: bytes = b""          # fixed bytes before the signature in the answer
    name: str = "INTERNAL AUTHENTICATE (SM2)"
    # The PKI user PIN (national API PKI_SignData(pUserPin, …)): "on-demand" = sign without
    # it and report 6982 as "PKI PIN needed"; "required" = verify it before signing. The
    # proof is SM4-ECB_{SM3(PIN as BCD)[0:16]}(challenge) in ``00 20 01 81 10`` after a
    # 16-byte GET CHALLENGE (leithergit/Z390Kylin Evolis_Z390_printer.cpp: 80C4010305C103
    # <PIN> gives SM3(PIN), 0084000010, 0020018110 <SM4 of the challenge>).
    user_pin: str = "on-demand"
    user_pin_verify: bytes = bytes.fromhex("00200181")
    pin_challenge_length: int = 16
    #: SELECT of the PKI EFs (0012, 0018, 0019): P1=00 as both public code bases send it
    #: (``00A40000020018``: leithergit/Z390Kylin Evolis_Z390_printer.cpp, [S12]).
    select_p1: int = 0x00
    origin: str = field(default="built-in defaults", compare=False)

    @classmethod
    def from_profile(cls, profile: CardProfile) -> Sm2AuthConfig:
        section = profile.extra.get(SECTION)
        if section is None:
            raise BadInputError(
                f"card profile {profile.name} has no [{SECTION}] section: it describes no PKI "
                "application (SM2 authentication needs a third-generation card profile)"
            )
        return cls.from_mapping(section, f"card profile {profile.name}")

    @classmethod
    def from_mapping(cls, section: dict[str, Any], origin: str = "sm2_auth") -> Sm2AuthConfig:
        if not isinstance(section, dict):
            raise BadInputError(f"{origin}: [{SECTION}] must be a table")
        unknown = set(section) - _KNOWN_KEYS
        if unknown:
            raise BadInputError(f"{origin}: [{SECTION}] has unknown key(s) "
                                f"{', '.join(sorted(unknown))}")
        d = cls()
        ddf = _hex_field(section, "ddf_name", to_hex(d.ddf_name), None, origin)
        adf = _hex_field(section, "adf_name", to_hex(d.adf_name), None, origin)
        adf_fid = (int.from_bytes(_hex_field(section, "adf_fid", "", 2, origin), "big")
                   if section.get("adf_fid") else None)
        if not adf and adf_fid is None:
            raise BadInputError(f"{origin}: [{SECTION}] needs adf_name or adf_fid")
        for label, name in (("ddf_name", ddf), ("adf_name", adf)):
            if len(name) > 16:
                raise BadInputError(f"{origin}: [{SECTION}] {label} is longer than 16 bytes")
        send = _choice(section, "send", d.send, _SEND_MODES, origin)
        hash_mode = _choice(section, "hash", d.hash, _HASH_MODES, origin)
        if "user_id_hex" in section:
            uid = _hex_field(section, "user_id_hex", "", None, origin)
        else:
            uid_text = section.get("user_id", d.user_id.decode("ascii"))
            if not isinstance(uid_text, str):
                raise BadInputError(f"{origin}: [{SECTION}] user_id must be a string")
            uid = uid_text.encode("utf-8")
        le_value = section.get("le", "00")
        if le_value in ("", "none", None):
            le = None
        else:
            le_byte = _byte(section, "le", "00", origin)
            le = le_byte or 256
        challenge_length = _int(section, "challenge_length", d.challenge_length, 1, 255, origin)
        config = cls(
            ddf_name=ddf,
            adf_name=adf,
            adf_fid=adf_fid,
            cert_fid=int.from_bytes(_hex_field(section, "cert_fid", "0018", 2, origin), "big"),
            read_chunk=_int(section, "read_chunk", d.read_chunk, 8, 256, origin),
            cla=_byte(section, "cla", "00", origin),
            ins=_byte(section, "ins", "88", origin),
            p1=_byte(section, "p1", "00", origin),
            p2=_byte(section, "p2", "00", origin),
            data_prefix=_hex_field(section, "data_prefix", "", None, origin),
            challenge_length=challenge_length,
            send=send,
            hash=hash_mode,
            user_id=uid,
            le=le,
            signature=sm2.SignatureEncoding(_choice(section, "signature", "raw",
                                                    ("raw", "der"), origin)),
            response_prefix=_hex_field(section, "response_prefix", "", None, origin),
            user_pin=_choice(section, "user_pin", d.user_pin, _USER_PIN_MODES, origin),
            user_pin_verify=_hex_field(section, "user_pin_verify", "00200181", 4, origin),
            pin_challenge_length=_int(section, "pin_challenge_length", 16, 8, 16, origin),
            select_p1=_byte(section, "select_p1", "00", origin),
            name=str(section.get("name", d.name if _byte(section, "ins", "88", origin) == 0x88
                                  else "SM2 authentication command")),
            origin=origin,
        )
        payload = 32 if send == "digest" else challenge_length
        if len(config.data_prefix) + payload > 255:
            raise BadInputError(f"{origin}: [{SECTION}] data_prefix + challenge exceed 255 bytes")
        if len(uid) > 0x1FFF:
            raise BadInputError(f"{origin}: [{SECTION}] user_id is too long")
        return config

    # -- the command and its answer ------------------------------------------------------
    def digest(self, public_key: sm2.PublicKey, challenge: bytes) -> bytes:
        """e, the 32 bytes the card's signature is over."""
        if self.hash == "sm3":
            return sm3(challenge)
        return sm2.message_digest(public_key, challenge, self.user_id)

    def payload(self, public_key: sm2.PublicKey, challenge: bytes) -> bytes:
        """The data field after ``data_prefix``: the challenge, or its digest e."""
        return self.digest(public_key, challenge) if self.send == "digest" else challenge

    def command(self, public_key: sm2.PublicKey, challenge: bytes) -> CommandApdu:
        return CommandApdu(self.cla, self.ins, self.p1, self.p2,
                           self.data_prefix + self.payload(public_key, challenge), self.le,
                           name=self.name)

    def encode_answer(self, raw_signature: bytes) -> bytes:
        """What the card returns for a raw r‖s signature (used by the simulator)."""
        if self.signature is sm2.SignatureEncoding.DER:
            return self.response_prefix + sm2.signature_to_der(raw_signature)
        return self.response_prefix + raw_signature

    def decode_answer(self, data: bytes) -> bytes:
        """The card's answer → raw r‖s; MismatchError when it is not a signature at all."""
        if not data.startswith(self.response_prefix):
            raise MismatchError(
                f"{self.name}: the card's answer does not start with {to_hex(self.response_prefix)}"
                f" as the profile says (got {to_hex(data[:8])}…)"
            )
        body = data[len(self.response_prefix):]
        try:
            if self.signature is sm2.SignatureEncoding.DER:
                return sm2.signature_from_der(body)
            if len(body) != 64:
                raise BadInputError(f"{len(body)} bytes, expected 64 (r‖s)")
            return body
        except BadInputError as exc:
            raise MismatchError(
                f"{self.name}: the card's answer is not a {self.signature.value} SM2 signature "
                f"({exc})"
            ) from None

    def describe(self) -> str:
        """The command as a technician writes it: ``00 88 00 00 Lc prefix‖challenge32 00``."""
        payload = "e32" if self.send == "digest" else f"challenge{self.challenge_length}"
        prefix = f"{to_hex(self.data_prefix)}‖" if self.data_prefix else ""
        le = "" if self.le is None else f" {self.le & 0xFF:02X}"
        return (f"{self.cla:02X} {self.ins:02X} {self.p1:02X} {self.p2:02X} Lc "
                f"{prefix}{payload}{le}")


# --------------------------------------------------------------------------- trust store


def sim_test_root_pem() -> str:
    """The simulator's TEST root certificate (public; only simulated cards chain to it)."""
    return resources.files("sbcard.sim").joinpath(*TEST_ROOT_RESOURCE).read_text("ascii")


def load_trust_roots(spec: str) -> list[x509.Certificate]:
    """Roots from a PEM (or DER) file, or ``test`` for the simulator's TEST root.

    Malformed files raise BadInputError; a file without any SM2 certificate too.
    """
    if spec == TEST_TRUST:
        certs = x509.load_certificates(sim_test_root_pem(), "built-in TEST root")
    else:
        certs = x509.read_certificates_file(spec, "trust store")
    roots = [c for c in certs if c.public_key is not None]
    if not roots:
        raise BadInputError(f"trust store {spec}: no SM2 certificate among its {len(certs)} "
                            "certificate(s)")
    return roots


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
    if not (pin.isascii() and pin.isdigit() and 4 <= len(pin) <= 16):
        raise BadInputError("the PKI user PIN is 4 to 16 digits")
    challenge = channel.check(cmds.get_challenge(config.pin_challenge_length)).data
    block = bytes.fromhex(pin + ("F" if len(pin) % 2 else ""))
    proof = pki_pin_proof(block, challenge)
    head = config.user_pin_verify
    channel.check(CommandApdu(head[0], head[1], head[2], head[3], proof,
                              name="VERIFY PKI user PIN"))


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
        select_pki(channel, config)
        der = read_certificate(channel, config)
        try:
            cert = x509.Certificate.from_der(der, f"card certificate (EF {config.cert_fid:04X})")
        except x509.CertificateFormatError as exc:
            raise MismatchError(f"{exc} (malformed)") from None
        path = x509.verify_chain(cert, trust_roots, now=now)
        usage = cert.key_usage
        if usage is not None and not usage & {"digitalSignature", "nonRepudiation"}:
            raise x509.UntrustedCertificateError(
                f"card certificate {cert.describe()} is not for signatures (keyUsage "
                f"{', '.join(sorted(usage))})"
            )
        public = cert.public_key
        assert public is not None                      # verify_chain insists on SM2
        if user_pin is not None:
            verify_pki_user_pin(channel, config, user_pin)
        elif config.user_pin == "required":
            raise BadInputError(f"{config.origin}: the PKI application needs the user PIN "
                                "before signing (user_pin = \"required\"): give it")
        if challenge is None:
            challenge = secrets.token_bytes(config.challenge_length)
        response = channel.send(config.command(public, challenge))
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
        signature = config.decode_answer(response.data)
    e = config.digest(public, challenge)
    if not sm2.verify_digest(public, e, signature):
        raise MismatchError(
            f"SM2 authentication failed: the card's signature over the challenge does not "
            f"verify with the key of its certificate {cert.describe()} (not a genuine card, or "
            "a copied certificate)"
        )
    return Sm2AuthResult(cert, path[-1], challenge, signature)


# --------------------------------------------------------------------------- signing data


def sign_config(profile: CardProfile) -> Sm2AuthConfig:
    """The profile's data-signing command: ``[pki_sign]`` keys over ``[sm2_auth]``'s.

    The application names and the certificate file are shared; ``[pki_sign]`` names the
    command. It must send the digest (``send = "digest"``): data of any length is hashed here
    into e = SM3(Z‖data), and the card signs e.
    """
    base = profile.extra.get(SECTION)
    sign = profile.extra.get(SIGN_SECTION)
    if not isinstance(base, dict) or not isinstance(sign, dict):
        raise BadInputError(f"card profile {profile.name} has no [{SECTION}] and [{SIGN_SECTION}]"
                            " sections: it describes no PKI signing command (a 3.0 profile does)")
    config = Sm2AuthConfig.from_mapping({**base, **sign},
                                        f"card profile {profile.name} [{SIGN_SECTION}]")
    if config.send != "digest":
        raise BadInputError(f"card profile {profile.name}: [{SIGN_SECTION}] send must be "
                            "\"digest\" (data of any length is signed through its digest)")
    return config


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
        response = channel.send(config.command(public, data))
        if response.sw == SW.SECURITY_NOT_SATISFIED and not user_pin:
            raise PkiPinNeededError(
                SW.SECURITY_NOT_SATISFIED,
                f"{config.name}: PKI PIN needed — the card's PKI application signs only after "
                "its user PIN")
        if not response.ok:
            raise CardError.for_sw(
                response.sw, f"{config.name} [{config.describe()}, from {config.origin}]",
                response.data)
        signature = config.decode_answer(response.data)
    e = config.digest(public, data)
    if not sm2.verify_digest(public, e, signature):
        raise MismatchError(f"{config.name}: the card's signature does not verify with the key "
                            f"of its certificate {cert.describe()}")
    return SignedData(cert, e, signature)
