"""Minimal X.509 v3 certificates for SM2 (GM/T 0015-2012, RFC 5280 subset).

Enough to check a social security card's certificate and to issue the simulator's TEST ones:

* **build** — :func:`build_certificate`: subject/issuer names (C, O, OU, CN), validity,
  serial, subjectPublicKeyInfo (id-ecPublicKey on curve 1.2.156.10197.1.301), and the
  extensions basicConstraints, keyUsage, subjectKeyIdentifier and authorityKeyIdentifier;
  signed SM2-with-SM3 (1.2.156.10197.1.501) with the default user ID ``1234567812345678``.
* **parse** — :meth:`Certificate.from_der` / :meth:`Certificate.from_pem`: the TBS bytes,
  names, validity, public key, extensions and signature. Certificates with other key types
  parse too (``public_key`` is then ``None``) so a trust store may hold mixed roots.
* **verify** — :meth:`Certificate.verify_signature` and :func:`verify_chain` (card
  certificate → optional intermediates → a trusted root, with validity dates, CA flags and
  key usage).

Errors: malformed input raises :class:`CertificateFormatError` (a ``BadInputError``); a
certificate that is well formed but must not be trusted raises a subclass of
:class:`CertificateInvalidError` (a ``MismatchError``: exit code 9), each with a one-line
message saying which certificate and why.

asn1crypto parses and builds the DER, held to DER by :mod:`sbcard.crypto._asn1` (non-minimal
lengths and trailing bytes are refused, as X.509 requires); the trust decisions (chain, CA
flags, key usage, validity, critical extensions) are this module's own code.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

from asn1crypto import core, pem
from asn1crypto import keys as akeys
from asn1crypto import x509 as ax

from sbcard.crypto import _asn1, sm2
from sbcard.crypto.symmetric import sm3
from sbcard.errors import BadInputError, MismatchError

__all__ = [
    "OID_SM2_SM3",
    "Certificate",
    "CertificateExpiredError",
    "CertificateFormatError",
    "CertificateInvalidError",
    "CertificateSignatureError",
    "Extension",
    "Name",
    "UntrustedCertificateError",
    "build_certificate",
    "load_certificates",
    "verify_chain",
]

OID_SM2_SM3 = "1.2.156.10197.1.501"       # SM2 signature with SM3 (GM/T 0006)
OID_EC_PUBLIC_KEY = sm2.EC_PUBLIC_KEY_OID
OID_SM2_CURVE = sm2.CURVE_OID              # 1.2.156.10197.1.301

OID_C = "2.5.4.6"
OID_O = "2.5.4.10"
OID_OU = "2.5.4.11"
OID_CN = "2.5.4.3"
OID_SERIAL_NUMBER = "2.5.4.5"
OID_ST = "2.5.4.8"
OID_L = "2.5.4.7"

EXT_SKI = "2.5.29.14"
EXT_KEY_USAGE = "2.5.29.15"
EXT_BASIC_CONSTRAINTS = "2.5.29.19"
EXT_AKI = "2.5.29.35"
EXT_EXT_KEY_USAGE = "2.5.29.37"
EXT_CERT_POLICIES = "2.5.29.32"
EXT_CRL_DP = "2.5.29.31"
EXT_AIA = "1.3.6.1.5.5.7.1.1"
EXT_SAN = "2.5.29.17"
#: Extensions whose meaning we know; an unknown one marked critical makes a certificate unusable
#: (RFC 5280 §4.2).
KNOWN_EXTENSIONS = frozenset({EXT_SKI, EXT_KEY_USAGE, EXT_BASIC_CONSTRAINTS, EXT_AKI,
                              EXT_EXT_KEY_USAGE, EXT_CERT_POLICIES, EXT_CRL_DP, EXT_AIA,
                              EXT_SAN})

ATTRIBUTE_NAMES = {OID_C: "C", OID_ST: "ST", OID_L: "L", OID_O: "O", OID_OU: "OU",
                   OID_CN: "CN", OID_SERIAL_NUMBER: "serialNumber"}

#: keyUsage bit numbers (RFC 5280 §4.2.1.3).
KEY_USAGE_BITS = ("digitalSignature", "nonRepudiation", "keyEncipherment", "dataEncipherment",
                  "keyAgreement", "keyCertSign", "cRLSign", "encipherOnly", "decipherOnly")

_PRINTABLE = re.compile(r"^[A-Za-z0-9 '()+,\-./:=?]*$")
#: String types a name attribute may have (X.520 DirectoryString, PrintableString, IA5String).
_STRING_TYPES = (core.UTF8String, core.PrintableString, core.IA5String, core.TeletexString,
                 core.BMPString, core.UniversalString)
#: keyUsage bits: RFC 5280 names ↔ asn1crypto's.
_KEY_USAGE_ASN1 = dict(zip(KEY_USAGE_BITS, ("digital_signature", "non_repudiation",
                                            "key_encipherment", "data_encipherment",
                                            "key_agreement", "key_cert_sign", "crl_sign",
                                            "encipher_only", "decipher_only"), strict=True))

#: Longest certificate accepted (a card file is about 1 KB; this is a sanity bound).
MAX_CERT_SIZE = 16 * 1024
#: The last certificates parsed, by their exact DER bytes (a parse is a pure function of
#: them and a Certificate never changes): see ``Certificate.from_der``.
_RECENT: dict[bytes, Certificate] = {}
_RECENT_MAX = 16
_RECENT_LOCK = threading.Lock()                  # batches run one thread per reader


def _remember(der: bytes, cert: Certificate) -> None:
    with _RECENT_LOCK:
        if len(_RECENT) >= _RECENT_MAX:
            _RECENT.pop(next(iter(_RECENT)))         # the oldest
        _RECENT[der] = cert


# --------------------------------------------------------------------------- errors


class CertificateFormatError(BadInputError):
    """The bytes are not a certificate we can read (the message says where)."""


class CertificateInvalidError(MismatchError):
    """A well-formed certificate that must not be trusted."""


class UntrustedCertificateError(CertificateInvalidError):
    """No trusted root (or intermediate) issued this certificate."""


class CertificateSignatureError(CertificateInvalidError):
    """The issuer's name matches but its key does not verify the certificate's signature."""


class CertificateExpiredError(CertificateInvalidError):
    """Now is outside the certificate's validity period (expired or not yet valid)."""


# --------------------------------------------------------------------------- names


@dataclass(frozen=True)
class Name:
    """An X.501 distinguished name: (OID, value) pairs in certificate order, plus its DER."""

    attributes: tuple[tuple[str, str], ...]
    der: bytes = field(repr=False, compare=False)

    @classmethod
    def build(cls, *, cn: str | None = None, o: str | None = None, ou: str | None = None,
              c: str | None = None) -> Name:
        """C, O, OU, CN in that order (the usual most-significant-first layout)."""
        attrs = tuple((oid, value) for oid, value in
                      ((OID_C, c), (OID_O, o), (OID_OU, ou), (OID_CN, cn)) if value)
        if not attrs:
            raise BadInputError("a certificate name needs at least one of CN, O, OU, C")
        if c is not None and (len(c) != 2 or not _PRINTABLE.match(c)):
            raise BadInputError(f"country must be two letters, got {c!r}")
        names = {"country_name": c, "organization_name": o, "organizational_unit_name": ou,
                 "common_name": cn}
        built = ax.Name.build({k: v for k, v in names.items() if v})  # C printable, rest UTF-8
        return cls(attrs, built.dump())

    @classmethod
    def parse(cls, name: ax.Name, what: str) -> Name:
        attrs: list[tuple[str, str]] = []
        for rdn in name.chosen:
            for atv in rdn:
                value = atv["value"]
                inner = value.chosen if isinstance(value, core.Choice) else value
                if isinstance(inner, core.Any):
                    inner = inner.parsed
                if not isinstance(inner, _STRING_TYPES):
                    raise CertificateFormatError(
                        f"{what}: attribute value {type(inner).__name__} is not a supported "
                        "string type")
                text = _asn1.native(inner, what)
                assert isinstance(text, str)
                attrs.append((atv["type"].dotted, text))
        return cls(tuple(attrs), name.dump())

    def get(self, oid: str) -> str | None:
        for a_oid, value in self.attributes:
            if a_oid == oid:
                return value
        return None

    @property
    def common_name(self) -> str | None:
        return self.get(OID_CN)

    def matches(self, other: Name) -> bool:
        """Same DER, or the same attributes compared case-insensitively with spaces folded
        (the simplified RFC 5280 §7.1 comparison)."""
        if self.der == other.der:
            return True
        return self._normal() == other._normal()

    def _normal(self) -> tuple[tuple[str, str], ...]:
        return tuple((oid, " ".join(v.split()).casefold()) for oid, v in self.attributes)

    def __str__(self) -> str:
        return ", ".join(f"{ATTRIBUTE_NAMES.get(oid, oid)}={value}"
                         for oid, value in self.attributes)


# --------------------------------------------------------------------------- time


def _as_datetime(value: datetime | date) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return datetime.combine(value, time(0, 0, 0), tzinfo=UTC)


def _encode_time(value: datetime) -> ax.Time:
    """UTCTime for 1950–2049, GeneralizedTime otherwise (RFC 5280 §4.1.2.5)."""
    value = _as_datetime(value).replace(microsecond=0)
    return ax.Time({"utc_time" if 1950 <= value.year <= 2049 else "general_time": value})


def _parse_time(value: ax.Time, what: str) -> datetime:
    """RFC 5280 §4.1.2.5: whole seconds, in UTC (``Z``)."""
    text = value.chosen.contents.decode("ascii", "replace")
    pattern = r"\d{12}Z" if value.name == "utc_time" else r"\d{14}Z"
    if not re.fullmatch(pattern, text):
        raise CertificateFormatError(
            f"{what}: time {text!r} is not UTCTime YYMMDDHHMMSSZ or GeneralizedTime "
            "YYYYMMDDHHMMSSZ"
        )
    parsed = _asn1.native(value, what)
    assert isinstance(parsed, datetime)
    return parsed.astimezone(UTC)


# --------------------------------------------------------------------------- extensions


@dataclass(frozen=True)
class Extension:
    oid: str
    critical: bool
    value: bytes          # the DER inside the extnValue OCTET STRING


def _key_usage(names: Iterable[str]) -> ax.KeyUsage:
    """keyUsage DER (a named-bit BIT STRING, trailing zero bits dropped: X.690 §11.2.2)."""
    chosen = set()
    for name in names:
        if name not in KEY_USAGE_BITS:
            raise BadInputError(f"unknown key usage {name!r} (one of {', '.join(KEY_USAGE_BITS)})")
        chosen.add(_KEY_USAGE_ASN1[name])
    if not chosen:
        raise BadInputError("keyUsage needs at least one usage")
    return ax.KeyUsage(chosen)


def _parse_key_usage(data: bytes, what: str) -> frozenset[str]:
    bits = _asn1.native(_asn1.load_der(ax.KeyUsage, data, what), what)
    assert isinstance(bits, set)
    return frozenset(name for name, asn1_name in _KEY_USAGE_ASN1.items() if asn1_name in bits)


def _key_identifier(public_key: sm2.PublicKey) -> bytes:
    """RFC 5280 §4.2.1.2 method (1): SHA-1 of the subjectPublicKey bits (as OpenSSL does)."""
    return hashlib.sha1(public_key.to_bytes(), usedforsecurity=False).digest()


# --------------------------------------------------------------------------- certificate


def _signature_algorithm() -> ax.SignedDigestAlgorithm:
    # GM/T 0015 and OpenSSL leave the parameters absent for SM2-with-SM3.
    return ax.SignedDigestAlgorithm({"algorithm": OID_SM2_SM3})


def _algorithm_oid(algorithm: Any, what: str) -> str:
    oid = algorithm["algorithm"].dotted
    if oid == OID_SM2_SM3 and algorithm["parameters"].native is not None:
        raise CertificateFormatError(f"{what}: SM2-with-SM3 takes no parameters")
    return str(oid)


@dataclass(frozen=True)
class Certificate:
    """A parsed certificate. ``der`` is exactly what was read; ``tbs`` is what was signed."""

    der: bytes = field(repr=False)
    tbs: bytes = field(repr=False)
    version: int                         # 1, 2 or 3
    serial: int
    signature_algorithm: str             # OID
    issuer: Name
    subject: Name
    not_before: datetime
    not_after: datetime
    key_algorithm: str                   # OID of the subjectPublicKeyInfo algorithm
    public_key: sm2.PublicKey | None     # None when the key is not SM2
    signature: bytes = field(repr=False)  # contents of signatureValue (DER r,s for SM2)
    extensions: tuple[Extension, ...] = field(default=(), repr=False)

    # -- loading ----------------------------------------------------------------------------
    @classmethod
    def from_der(cls, data: bytes, what: str = "certificate") -> Certificate:
        """Parsed, DER checked strictly. The same bytes parse to the same (immutable)
        certificate: the last few are kept, so a certificate built, written to a card and
        read back to be proved is parsed once, not twice (each parse re-encodes to check
        DER; a tenth of a 3.0 personalisation)."""
        data = bytes(data)
        if len(data) > MAX_CERT_SIZE:
            raise CertificateFormatError(f"{what}: {len(data)} bytes is too large for a "
                                         "certificate")
        known = _RECENT.get(data)
        if known is not None:
            return known
        try:
            cert = cls._parse(data, what)
            _ = cert.is_ca, cert.key_usage        # malformed extensions fail here, not later
            _remember(data, cert)
            return cert
        except CertificateFormatError:
            raise
        except BadInputError as exc:  # DerError and friends
            raise CertificateFormatError(str(exc)) from None

    @classmethod
    def _built(cls, der: bytes, tbs: ax.TbsCertificate, **fields: Any) -> Certificate:
        """A certificate ``build_certificate`` has just encoded, made from what it encoded
        instead of parsed back: parsing it (with the DER round-trip check that input gets)
        cost as much as building it, a fifth of a 3.0 card's personalisation. asn1crypto
        encodes what it builds in DER; tests/test_x509_build.py holds every kind of
        certificate built here to the strict check and to the parsed form."""
        extensions = tuple(Extension(e["extn_id"].dotted, bool(e["critical"].native),
                                     e["extn_value"].contents) for e in tbs["extensions"])
        cert = cls(der=der, tbs=tbs.dump(), version=3, signature_algorithm=OID_SM2_SM3,
                   key_algorithm=OID_SM2_CURVE, extensions=extensions, **fields)
        _remember(der, cert)
        return cert

    @classmethod
    def _parse(cls, data: bytes, what: str) -> Certificate:
        cert = _asn1.load_der(ax.Certificate, data, what)
        tbs = cert["tbs_certificate"]
        version_name = _asn1.native(tbs["version"], f"{what} version")
        if version_name not in ("v1", "v2", "v3"):
            raise CertificateFormatError(f"{what}: unknown version {version_name}")
        version = int(str(version_name)[1:])
        outer_alg = _algorithm_oid(cert["signature_algorithm"], f"{what} signatureAlgorithm")
        inner_alg = _algorithm_oid(tbs["signature"], f"{what} signature")
        if inner_alg != outer_alg:
            raise CertificateFormatError(
                f"{what}: signature algorithm {outer_alg} differs from the one inside the "
                f"signed part ({inner_alg})"
            )
        signature = cert["signature_value"]
        if signature.unused_bits:
            raise CertificateFormatError(f"{what} signatureValue: BIT STRING must have 0 unused "
                                         "bits")
        if tbs["extensions"].native is not None and version != 3:
            raise CertificateFormatError(f"{what}: extensions in a version {version} "
                                         "certificate")
        extensions = tuple(Extension(e["extn_id"].dotted, bool(e["critical"].native),
                                     e["extn_value"].contents) for e in tbs["extensions"])
        seen = [e.oid for e in extensions]
        if len(seen) != len(set(seen)):
            raise CertificateFormatError(f"{what}: an extension appears twice")
        key_algorithm, public_key = _parse_spki(tbs["subject_public_key_info"],
                                                f"{what} subjectPublicKeyInfo")
        return cls(data, tbs.dump(), version, tbs["serial_number"].native, outer_alg,
                   Name.parse(tbs["issuer"], f"{what} issuer"),
                   Name.parse(tbs["subject"], f"{what} subject"),
                   _parse_time(tbs["validity"]["not_before"], f"{what} notBefore"),
                   _parse_time(tbs["validity"]["not_after"], f"{what} notAfter"),
                   key_algorithm, public_key, signature.contents[1:], extensions)

    @classmethod
    def from_pem(cls, text: str | bytes, what: str = "certificate") -> Certificate:
        certs = load_certificates(text, what)
        if len(certs) != 1:
            raise CertificateFormatError(f"{what}: expected one certificate, found {len(certs)}")
        return certs[0]

    def to_pem(self) -> str:
        return pem.armor("CERTIFICATE", self.der).decode("ascii")

    # -- fields -----------------------------------------------------------------------------
    @property
    def serial_hex(self) -> str:
        """The serial number as OpenSSL shows it without colons (upper-case hex)."""
        n = self.serial
        if n < 0:
            return "-" + format(-n, "X")
        text = format(n, "X")
        return text if len(text) % 2 == 0 else "0" + text

    @property
    def fingerprint_sm3(self) -> str:
        return sm3(self.der).hex().upper()

    def extension(self, oid: str) -> Extension | None:
        for ext in self.extensions:
            if ext.oid == oid:
                return ext
        return None

    @property
    def is_ca(self) -> bool | None:
        """basicConstraints cA; ``None`` when the extension is absent."""
        ext = self.extension(EXT_BASIC_CONSTRAINTS)
        if ext is None:
            return None
        what = "basicConstraints"
        return bool(_asn1.load_der(ax.BasicConstraints, ext.value, what)["ca"].native)

    @property
    def key_usage(self) -> frozenset[str] | None:
        """Names of the keyUsage bits; ``None`` when the extension is absent (no limit)."""
        ext = self.extension(EXT_KEY_USAGE)
        return None if ext is None else _parse_key_usage(ext.value, "keyUsage")

    @property
    def self_issued(self) -> bool:
        return self.subject.matches(self.issuer)

    def describe(self) -> str:
        """One line for messages: the CN (or whole subject) and the serial."""
        return f"{self.subject.common_name or self.subject} (serial {self.serial_hex})"

    # -- checks -----------------------------------------------------------------------------
    def verify_signature(self, issuer_key: sm2.PublicKey) -> bool:
        """True if ``issuer_key`` signed this certificate (SM2-with-SM3, default user ID).

        The signature value is DER ``SEQUENCE {r, s}`` as GM/T 0015 specifies; a bare 64-byte
        ``r‖s`` (seen in some non-conforming certificates) is accepted too.
        """
        if self.signature_algorithm != OID_SM2_SM3:
            return False
        try:
            return sm2.verify(issuer_key, self.tbs, self.signature, uid=sm2.DEFAULT_ID,
                              encoding=sm2.SignatureEncoding.DER)
        except BadInputError:
            if len(self.signature) != 64:
                return False
        try:
            return sm2.verify(issuer_key, self.tbs, self.signature, uid=sm2.DEFAULT_ID,
                              encoding=sm2.SignatureEncoding.RAW)
        except BadInputError:
            return False

    def check_validity(self, now: datetime | None = None, role: str = "certificate") -> None:
        """Raise :class:`CertificateExpiredError` unless ``now`` is inside the validity period."""
        now = _as_datetime(now) if now is not None else datetime.now(UTC)
        if now > self.not_after:
            raise CertificateExpiredError(
                f"{role} {self.describe()} expired on {self.not_after:%Y-%m-%d %H:%M:%S} UTC "
                f"(now {now:%Y-%m-%d})"
            )
        if now < self.not_before:
            raise CertificateExpiredError(
                f"{role} {self.describe()} is not valid before "
                f"{self.not_before:%Y-%m-%d %H:%M:%S} UTC (now {now:%Y-%m-%d}; check the clock)"
            )

    def unknown_critical_extensions(self) -> list[str]:
        return [e.oid for e in self.extensions if e.critical and e.oid not in KNOWN_EXTENSIONS]


def _parse_spki(info: akeys.PublicKeyInfo, what: str) -> tuple[str, sm2.PublicKey | None]:
    alg_oid = info["algorithm"]["algorithm"].dotted
    params = info["algorithm"]["parameters"]
    curve = (params.chosen.dotted if isinstance(params, akeys.ECDomainParameters)
             and params.name == "named" else None)
    # Standard form: id-ecPublicKey with the SM2 curve; some issuers put the SM2 OID itself.
    is_sm2 = (alg_oid == OID_EC_PUBLIC_KEY and curve == OID_SM2_CURVE) or alg_oid == OID_SM2_CURVE
    if not is_sm2:
        return alg_oid if curve is None else f"{alg_oid}/{curve}", None
    bits = info["public_key"]
    if bits.unused_bits:
        raise CertificateFormatError(f"{what}: BIT STRING must have 0 unused bits")
    try:
        return OID_SM2_CURVE, sm2.PublicKey.from_bytes(bits.contents[1:])
    except BadInputError as exc:
        raise CertificateFormatError(f"{what}: {exc}") from None


_CERT_LABELS = ("CERTIFICATE", "TRUSTED CERTIFICATE")


def load_certificates(data: str | bytes, what: str = "certificate file") -> list[Certificate]:
    """Every certificate in PEM text (``CERTIFICATE`` blocks, other blocks ignored) or one DER
    certificate. Raises :class:`CertificateFormatError` naming the bad block."""
    raw = data.encode("utf-8", "replace") if isinstance(data, str) else bytes(data)
    if not pem.detect(raw):
        if raw[:1] == b"\x30":
            return [Certificate.from_der(raw, what)]
        if isinstance(data, str):
            raise CertificateFormatError(f"{what}: no -----BEGIN CERTIFICATE----- block found")
        raise CertificateFormatError(f"{what}: neither PEM text nor a DER certificate")
    certs = []
    blocks = pem.unarmor(raw, multiple=True)
    n = 0
    while True:
        try:
            label, _, der = next(blocks)
        except StopIteration:
            break
        except ValueError:
            raise CertificateFormatError(f"{what}: certificate #{n + 1} is not valid base64") \
                from None
        if label not in _CERT_LABELS:
            continue
        n += 1
        if label == "TRUSTED CERTIFICATE":   # OpenSSL's form: cert ‖ trust info
            der = der[:_asn1.outer_length(der) or len(der)]
        certs.append(Certificate.from_der(der, f"{what} #{n}"))
    if not certs:
        raise CertificateFormatError(f"{what}: no -----BEGIN CERTIFICATE----- block found")
    return certs


# --------------------------------------------------------------------------- building


def _deterministic_k(key: sm2.PrivateKey, message: bytes) -> int:
    """A nonce from the key and the message (the idea of RFC 6979, with SM3): the same
    certificate is issued byte for byte again, and no two messages share a k."""
    seed = sm3(b"sbcard x509 nonce" + key.to_bytes() + sm3(message))
    return int.from_bytes(seed + sm3(seed), "big") % (sm2.N - 1) + 1


def build_certificate(
    *,
    subject: Name,
    public_key: sm2.PublicKey,
    issuer: Name,
    issuer_key: sm2.PrivateKey,
    serial: int,
    not_before: datetime | date,
    not_after: datetime | date,
    ca: bool = False,
    path_length: int | None = None,
    key_usage: Sequence[str] | None = None,
    deterministic: bool = False,
) -> Certificate:
    """Issue an X.509 v3 certificate signed SM2-with-SM3 by ``issuer_key``.

    A self-signed root: ``issuer=subject`` and ``issuer_key`` the subject's own key. ``ca``
    sets basicConstraints (critical, cA TRUE); end-entity certificates get a non-critical
    ``CA:FALSE``. ``key_usage`` defaults to keyCertSign+cRLSign for a CA and
    digitalSignature otherwise. ``deterministic`` derives the signature nonce from the key
    and the certificate (for reproducible TEST material).
    """
    if not 0 < serial < 1 << 159:
        raise BadInputError("certificate serial must be positive and at most 20 bytes")
    start, end = _as_datetime(not_before), _as_datetime(not_after)
    if end < start:
        raise BadInputError("certificate notAfter is before notBefore")
    if key_usage is None:
        key_usage = ("keyCertSign", "cRLSign") if ca else ("digitalSignature",)
    basic = (ax.BasicConstraints({"ca": True, "path_len_constraint": path_length}) if ca
             else ax.BasicConstraints.load(b"\x30\x00"))           # cA FALSE is the default
    extensions = [
        {"extn_id": "basic_constraints", "critical": ca, "extn_value": basic},
        {"extn_id": "key_usage", "critical": True, "extn_value": _key_usage(key_usage)},
        {"extn_id": "key_identifier", "extn_value": _key_identifier(public_key)},
        {"extn_id": "authority_key_identifier",
         "extn_value": {"key_identifier": _key_identifier(issuer_key.public_key)}},
    ]
    start, end = start.replace(microsecond=0), end.replace(microsecond=0)   # as encoded
    tbs = ax.TbsCertificate({
        "version": "v3",
        "serial_number": serial,
        "signature": _signature_algorithm(),
        "issuer": ax.Name.load(issuer.der),
        "validity": {"not_before": _encode_time(start), "not_after": _encode_time(end)},
        "subject": ax.Name.load(subject.der),
        "subject_public_key_info": akeys.PublicKeyInfo.load(public_key.to_der()),
        "extensions": extensions,
    })
    tbs_der = tbs.dump()
    k = _deterministic_k(issuer_key, tbs_der) if deterministic else None
    signature = sm2.sign(issuer_key, tbs_der, uid=sm2.DEFAULT_ID,
                         encoding=sm2.SignatureEncoding.DER, k=k)
    der = ax.Certificate({"tbs_certificate": ax.TbsCertificate.load(tbs_der),
                          "signature_algorithm": _signature_algorithm(),
                          "signature_value": signature}).dump()
    return Certificate._built(der, tbs, serial=serial, issuer=issuer, subject=subject,
                              not_before=start, not_after=end, public_key=public_key,
                              signature=signature)


# --------------------------------------------------------------------------- chains


def _check_issuer(cert: Certificate, role: str) -> None:
    if cert.version == 3 and cert.is_ca is not True:
        raise UntrustedCertificateError(
            f"{role} {cert.describe()} is not a CA certificate (basicConstraints cA is not "
            "TRUE), so it cannot issue certificates"
        )
    usage = cert.key_usage
    if usage is not None and "keyCertSign" not in usage:
        raise UntrustedCertificateError(
            f"{role} {cert.describe()} may not sign certificates (keyUsage lacks keyCertSign)"
        )


def _check_critical(cert: Certificate, role: str) -> None:
    unknown = cert.unknown_critical_extensions()
    if unknown:
        raise UntrustedCertificateError(
            f"{role} {cert.describe()} has critical extension(s) sbcard does not understand: "
            f"{', '.join(unknown)}"
        )


def verify_chain(
    leaf: Certificate,
    roots: Sequence[Certificate],
    *,
    intermediates: Sequence[Certificate] = (),
    now: datetime | None = None,
    max_depth: int = 4,
) -> list[Certificate]:
    """Check that ``leaf`` chains to one of ``roots``; return the path leaf → … → root.

    Each link: the issuer's subject matches the child's issuer name and the issuer's SM2 key
    verifies the child's signature. Then every certificate on the path must be valid at
    ``now`` (default: the current time), every issuer must be a CA allowed to sign
    certificates, and no certificate may carry a critical extension we do not understand.
    Raises :class:`UntrustedCertificateError`, :class:`CertificateSignatureError` or
    :class:`CertificateExpiredError`.
    """
    sm2_roots = [r for r in roots if r.public_key is not None]
    if not sm2_roots:
        raise UntrustedCertificateError("the trust store holds no SM2 root certificate")
    if leaf.public_key is None:
        raise UntrustedCertificateError(
            f"certificate {leaf.describe()} does not hold an SM2 key ({leaf.key_algorithm})"
        )
    if leaf.signature_algorithm != OID_SM2_SM3:
        raise UntrustedCertificateError(
            f"certificate {leaf.describe()} is not signed SM2-with-SM3 "
            f"({leaf.signature_algorithm})"
        )
    path = [leaf]
    if any(r.der == leaf.der for r in sm2_roots):       # the leaf itself is trusted
        leaf.check_validity(now, "certificate")
        return path
    current = leaf
    while True:
        issuer = _find_issuer(current, sm2_roots, "root")
        trusted = issuer is not None
        if issuer is None and len(path) <= max_depth:
            issuer = _find_issuer(current, [c for c in intermediates
                                            if c.public_key is not None and c not in path],
                                  "intermediate")
        if issuer is None:
            raise UntrustedCertificateError(
                f"certificate {current.describe()} is issued by \"{current.issuer}\", which is "
                "not in the trust store (untrusted)"
            )
        path.append(issuer)
        if trusted:
            break
        current = issuer
    for n, cert in enumerate(path):
        role = "certificate" if n == 0 else ("root" if n == len(path) - 1 else "intermediate")
        _check_critical(cert, role)
        if n:
            _check_issuer(cert, f"{role} certificate")
        cert.check_validity(now, "root certificate" if role == "root" else role)
    return path


def _find_issuer(child: Certificate, pool: Sequence[Certificate],
                 role: str) -> Certificate | None:
    named = [c for c in pool if c.subject.matches(child.issuer)]
    for candidate in named:
        assert candidate.public_key is not None
        if child.verify_signature(candidate.public_key):
            return candidate
    if named:
        raise CertificateSignatureError(
            f"the signature of certificate {child.describe()} does not verify with the key of "
            f"{role} \"{named[0].subject}\" (forged or corrupted certificate)"
        )
    return None


def encoded_length(head: bytes) -> int | None:
    """Total size of the certificate whose first bytes are ``head``, from its DER header
    (for reading a card file chunk by chunk); None when ``head`` is not a SEQUENCE header."""
    if head[:1] != bytes((_asn1.SEQUENCE_TAG,)):
        return None
    return _asn1.outer_length(head)


def read_certificates_file(path: str | Path, what: str = "trust store") -> list[Certificate]:
    """:func:`load_certificates` from a file, with a one-line error when it cannot be read."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise BadInputError(f"{what} {p}: cannot read ({exc.strerror or exc})") from None
    return load_certificates(data, f"{what} {p}")
