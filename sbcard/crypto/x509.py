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

The DER decoder is the strict one of :mod:`sbcard.crypto._der`: non-minimal lengths and
trailing bytes are refused, as X.509 requires.
"""

from __future__ import annotations

import binascii
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path

from sbcard.crypto import _der, sm2
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

BOOLEAN = 0x01
UTF8_STRING = 0x0C
PRINTABLE_STRING = 0x13
T61_STRING = 0x14
IA5_STRING = 0x16
UTC_TIME = 0x17
GENERALIZED_TIME = 0x18
BMP_STRING = 0x1E
SET = 0x31
CONTEXT_3 = 0xA3
CONTEXT_PRIM_0 = 0x80

_STRING_TAGS = {UTF8_STRING: "utf-8", PRINTABLE_STRING: "ascii", IA5_STRING: "ascii",
                T61_STRING: "latin-1", BMP_STRING: "utf-16-be"}
_PRINTABLE = re.compile(r"^[A-Za-z0-9 '()+,\-./:=?]*$")

#: Longest certificate accepted (a card file is about 1 KB; this is a sanity bound).
MAX_CERT_SIZE = 16 * 1024


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
        rdns = []
        for oid, value in attrs:
            if oid == OID_C and (len(value) != 2 or not _PRINTABLE.match(value)):
                raise BadInputError(f"country must be two letters, got {value!r}")
            tag = PRINTABLE_STRING if oid == OID_C else UTF8_STRING
            atv = _der.sequence(_der.oid(oid), _der.tlv(tag, value.encode("utf-8")))
            rdns.append(_der.tlv(SET, atv))
        return cls(attrs, _der.sequence(*rdns))

    @classmethod
    def parse(cls, element: _der.Element, what: str) -> Name:
        element.expect(_der.SEQUENCE, what)
        attrs: list[tuple[str, str]] = []
        for rdn in element.children(what):
            rdn.expect(SET, what)
            for atv in rdn.children(what):
                parts = atv.expect(_der.SEQUENCE, what).children(what)
                if len(parts) != 2:
                    raise CertificateFormatError(f"{what}: attribute is not (type, value)")
                attrs.append((parts[0].as_oid(what), _string(parts[1], what)))
        return cls(tuple(attrs), _der.tlv(_der.SEQUENCE, element.value))

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


def _string(element: _der.Element, what: str) -> str:
    codec = _STRING_TAGS.get(element.tag)
    if codec is None:
        raise CertificateFormatError(f"{what}: attribute value tag 0x{element.tag:02X} is not "
                                     "a supported string type")
    try:
        return element.value.decode(codec)
    except UnicodeDecodeError:
        raise CertificateFormatError(f"{what}: attribute value is not valid {codec}") from None


# --------------------------------------------------------------------------- time


def _as_datetime(value: datetime | date) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return datetime.combine(value, time(0, 0, 0), tzinfo=UTC)


def _encode_time(value: datetime) -> bytes:
    """UTCTime for 1950–2049, GeneralizedTime otherwise (RFC 5280 §4.1.2.5)."""
    value = _as_datetime(value).replace(microsecond=0)
    if 1950 <= value.year <= 2049:
        return _der.tlv(UTC_TIME, value.strftime("%y%m%d%H%M%SZ").encode("ascii"))
    return _der.tlv(GENERALIZED_TIME, value.strftime("%Y%m%d%H%M%SZ").encode("ascii"))


def _parse_time(element: _der.Element, what: str) -> datetime:
    try:
        text = element.value.decode("ascii")
    except UnicodeDecodeError:
        raise CertificateFormatError(f"{what}: time is not ASCII") from None
    if element.tag == UTC_TIME and re.fullmatch(r"\d{12}Z", text):
        year = int(text[:2])
        year += 1900 if year >= 50 else 2000
        text = f"{year}{text[2:]}"
    elif not (element.tag == GENERALIZED_TIME and re.fullmatch(r"\d{14}Z", text)):
        raise CertificateFormatError(
            f"{what}: time {text!r} is not UTCTime YYMMDDHHMMSSZ or GeneralizedTime "
            "YYYYMMDDHHMMSSZ"
        )
    try:
        return datetime.strptime(text, "%Y%m%d%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise CertificateFormatError(f"{what}: time {text!r} is not a valid date") from None


# --------------------------------------------------------------------------- extensions


@dataclass(frozen=True)
class Extension:
    oid: str
    critical: bool
    value: bytes          # the DER inside the extnValue OCTET STRING

    def to_der(self) -> bytes:
        items = [_der.oid(self.oid)]
        if self.critical:
            items.append(_der.tlv(BOOLEAN, b"\xff"))
        items.append(_der.octet_string(self.value))
        return _der.sequence(*items)


def _named_bits(names: Iterable[str]) -> bytes:
    """A DER BIT STRING of named bits: trailing zero bits dropped (X.690 §11.2.2)."""
    numbers = set()
    for name in names:
        if name not in KEY_USAGE_BITS:
            raise BadInputError(f"unknown key usage {name!r} (one of {', '.join(KEY_USAGE_BITS)})")
        numbers.add(KEY_USAGE_BITS.index(name))
    if not numbers:
        raise BadInputError("keyUsage needs at least one usage")
    length = max(numbers) + 1
    size = (length + 7) // 8
    value = 0
    for n in numbers:
        value |= 1 << (size * 8 - 1 - n)
    return _der.tlv(_der.BIT_STRING, bytes((size * 8 - length,)) + value.to_bytes(size, "big"))


def _parse_named_bits(data: bytes, what: str) -> frozenset[str]:
    element = _der.decode(data, what).expect(_der.BIT_STRING, what)
    v = element.value
    if not v or v[0] > 7 or (len(v) == 1 and v[0]):
        raise CertificateFormatError(f"{what}: malformed BIT STRING")
    bits = len(v[1:]) * 8 - v[0]
    value = int.from_bytes(v[1:], "big") if len(v) > 1 else 0
    total = len(v[1:]) * 8
    return frozenset(name for n, name in enumerate(KEY_USAGE_BITS)
                     if n < bits and value >> (total - 1 - n) & 1)


def _key_identifier(public_key: sm2.PublicKey) -> bytes:
    """RFC 5280 §4.2.1.2 method (1): SHA-1 of the subjectPublicKey bits (as OpenSSL does)."""
    return hashlib.sha1(public_key.to_bytes(), usedforsecurity=False).digest()


# --------------------------------------------------------------------------- certificate


def _signature_algorithm() -> bytes:
    # GM/T 0015 and OpenSSL leave the parameters absent for SM2-with-SM3.
    return _der.sequence(_der.oid(OID_SM2_SM3))


def _algorithm_oid(element: _der.Element, what: str) -> str:
    parts = element.expect(_der.SEQUENCE, what).children(what)
    if not parts or len(parts) > 2:
        raise CertificateFormatError(f"{what}: malformed AlgorithmIdentifier")
    oid = parts[0].as_oid(what)
    if len(parts) == 2 and parts[1].tag != _der.NULL and oid == OID_SM2_SM3:
        raise CertificateFormatError(f"{what}: SM2-with-SM3 takes no parameters")
    return oid


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
        data = bytes(data)
        if len(data) > MAX_CERT_SIZE:
            raise CertificateFormatError(f"{what}: {len(data)} bytes is too large for a "
                                         "certificate")
        try:
            cert = cls._parse(data, what)
            _ = cert.is_ca, cert.key_usage        # malformed extensions fail here, not later
            return cert
        except CertificateFormatError:
            raise
        except BadInputError as exc:  # DerError and friends
            raise CertificateFormatError(str(exc)) from None

    @classmethod
    def _parse(cls, data: bytes, what: str) -> Certificate:
        outer = _der.decode(data, what).expect(_der.SEQUENCE, what).children(what)
        if len(outer) != 3:
            raise CertificateFormatError(f"{what}: expected SEQUENCE {{tbsCertificate, "
                                         "signatureAlgorithm, signatureValue}")
        tbs_el, alg_el, sig_el = outer
        tbs = _der.tlv(_der.SEQUENCE, tbs_el.expect(_der.SEQUENCE, what).value)
        outer_alg = _algorithm_oid(alg_el, f"{what} signatureAlgorithm")
        signature = sig_el.as_bits(f"{what} signatureValue")
        fields = tbs_el.children(f"{what} tbsCertificate")
        pos = 0
        version = 1
        if fields and fields[0].tag == _der.CONTEXT_0:
            inner = fields[0].children(f"{what} version")
            if len(inner) != 1:
                raise CertificateFormatError(f"{what}: malformed version")
            version = inner[0].as_integer(f"{what} version") + 1
            if version not in (2, 3):
                raise CertificateFormatError(f"{what}: unknown version {version}")
            pos = 1
        if len(fields) < pos + 6:
            raise CertificateFormatError(f"{what}: tbsCertificate is missing fields")
        serial_el = fields[pos].expect(_der.INTEGER, f"{what} serialNumber")
        if not serial_el.value:
            raise CertificateFormatError(f"{what}: empty serial number")
        serial = int.from_bytes(serial_el.value, "big", signed=True)
        inner_alg = _algorithm_oid(fields[pos + 1], f"{what} signature")
        if inner_alg != outer_alg:
            raise CertificateFormatError(
                f"{what}: signature algorithm {outer_alg} differs from the one inside the "
                f"signed part ({inner_alg})"
            )
        issuer = Name.parse(fields[pos + 2], f"{what} issuer")
        validity = fields[pos + 3].expect(_der.SEQUENCE, f"{what} validity").children(what)
        if len(validity) != 2:
            raise CertificateFormatError(f"{what}: validity must be (notBefore, notAfter)")
        not_before = _parse_time(validity[0], f"{what} notBefore")
        not_after = _parse_time(validity[1], f"{what} notAfter")
        subject = Name.parse(fields[pos + 4], f"{what} subject")
        key_algorithm, public_key = _parse_spki(fields[pos + 5], f"{what} subjectPublicKeyInfo")
        extensions: list[Extension] = []
        for extra in fields[pos + 6:]:
            if extra.tag in (0x81, 0x82, 0xA1, 0xA2):  # issuer/subject unique IDs
                continue
            if extra.tag != CONTEXT_3 or version != 3:
                raise CertificateFormatError(f"{what}: unexpected field tag 0x{extra.tag:02X}")
            extensions.extend(_parse_extensions(extra, f"{what} extensions"))
        seen = [e.oid for e in extensions]
        if len(seen) != len(set(seen)):
            raise CertificateFormatError(f"{what}: an extension appears twice")
        return cls(data, tbs, version, serial, outer_alg, issuer, subject, not_before,
                   not_after, key_algorithm, public_key, signature, tuple(extensions))

    @classmethod
    def from_pem(cls, text: str | bytes, what: str = "certificate") -> Certificate:
        certs = load_certificates(text, what)
        if len(certs) != 1:
            raise CertificateFormatError(f"{what}: expected one certificate, found {len(certs)}")
        return certs[0]

    def to_pem(self) -> str:
        b64 = binascii.b2a_base64(self.der, newline=False).decode("ascii")
        lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
        return "\n".join(["-----BEGIN CERTIFICATE-----", *lines, "-----END CERTIFICATE-----",
                          ""])

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
        parts = _der.decode(ext.value, what).expect(_der.SEQUENCE, what).children(what)
        return bool(parts and parts[0].tag == BOOLEAN and parts[0].value not in (b"", b"\x00"))

    @property
    def key_usage(self) -> frozenset[str] | None:
        """Names of the keyUsage bits; ``None`` when the extension is absent (no limit)."""
        ext = self.extension(EXT_KEY_USAGE)
        return None if ext is None else _parse_named_bits(ext.value, "keyUsage")

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


def _parse_spki(element: _der.Element, what: str) -> tuple[str, sm2.PublicKey | None]:
    parts = element.expect(_der.SEQUENCE, what).children(what)
    if len(parts) != 2:
        raise CertificateFormatError(f"{what}: expected (algorithm, subjectPublicKey)")
    alg = parts[0].expect(_der.SEQUENCE, what).children(what)
    if not alg:
        raise CertificateFormatError(f"{what}: empty algorithm")
    alg_oid = alg[0].as_oid(what)
    curve = alg[1].as_oid(what) if len(alg) > 1 and alg[1].tag == _der.OID else None
    # Standard form: id-ecPublicKey with the SM2 curve; some issuers put the SM2 OID itself.
    is_sm2 = (alg_oid == OID_EC_PUBLIC_KEY and curve == OID_SM2_CURVE) or alg_oid == OID_SM2_CURVE
    if not is_sm2:
        return alg_oid if curve is None else f"{alg_oid}/{curve}", None
    bits = parts[1].as_bits(what)
    try:
        return OID_SM2_CURVE, sm2.PublicKey.from_bytes(bits)
    except BadInputError as exc:
        raise CertificateFormatError(f"{what}: {exc}") from None


def _parse_extensions(element: _der.Element, what: str) -> list[Extension]:
    inner = element.children(what)
    if len(inner) != 1:
        raise CertificateFormatError(f"{what}: malformed [3] wrapper")
    out = []
    for ext in inner[0].expect(_der.SEQUENCE, what).children(what):
        parts = ext.expect(_der.SEQUENCE, what).children(what)
        if len(parts) not in (2, 3):
            raise CertificateFormatError(f"{what}: extension is not (id, critical?, value)")
        oid = parts[0].as_oid(what)
        critical = False
        if len(parts) == 3:
            flag = parts[1].expect(BOOLEAN, what).value
            if flag not in (b"\x00", b"\xff"):
                raise CertificateFormatError(f"{what}: BOOLEAN is not DER")
            critical = flag == b"\xff"
        out.append(Extension(oid, critical, parts[-1].as_octets(what)))
    return out


_PEM_CERT = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.DOTALL)


def load_certificates(data: str | bytes, what: str = "certificate file") -> list[Certificate]:
    """Every certificate in PEM text (``CERTIFICATE`` blocks, other blocks ignored) or one DER
    certificate. Raises :class:`CertificateFormatError` naming the bad block."""
    if isinstance(data, bytes | bytearray):
        raw = bytes(data)
        if raw[:1] == b"\x30":
            return [Certificate.from_der(raw, what)]
        try:
            data = raw.decode("ascii")
        except UnicodeDecodeError:
            raise CertificateFormatError(f"{what}: neither PEM text nor a DER certificate") \
                from None
    certs = []
    for n, block in enumerate(
        (b for b in _PEM_CERT.finditer(data) if b.group(1) in ("CERTIFICATE",
                                                             "TRUSTED CERTIFICATE")), 1):
        body = "".join(block.group(2).split())
        try:
            der = binascii.a2b_base64(body, strict_mode=True)
        except binascii.Error:
            raise CertificateFormatError(f"{what}: certificate #{n} is not valid base64") \
                from None
        if block.group(1) == "TRUSTED CERTIFICATE":   # OpenSSL's form: cert ‖ trust info
            der = der[:_der.read_one(der, 0, f"{what} #{n}")[1]]
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
    basic = [_der.tlv(BOOLEAN, b"\xff")] if ca else []
    if ca and path_length is not None:
        basic.append(_der.integer(path_length))
    extensions = [
        Extension(EXT_BASIC_CONSTRAINTS, ca, _der.sequence(*basic)),
        Extension(EXT_KEY_USAGE, True, _named_bits(key_usage)),
        Extension(EXT_SKI, False, _der.octet_string(_key_identifier(public_key))),
        Extension(EXT_AKI, False, _der.sequence(
            _der.tlv(CONTEXT_PRIM_0, _key_identifier(issuer_key.public_key)))),
    ]
    tbs = _der.sequence(
        _der.tlv(_der.CONTEXT_0, _der.integer(2)),            # v3
        _der.integer(serial),
        _signature_algorithm(),
        issuer.der,
        _der.sequence(_encode_time(start), _encode_time(end)),
        subject.der,
        public_key.to_der(),
        _der.tlv(CONTEXT_3, _der.sequence(*(e.to_der() for e in extensions))),
    )
    k = _deterministic_k(issuer_key, tbs) if deterministic else None
    signature = sm2.sign(issuer_key, tbs, uid=sm2.DEFAULT_ID,
                         encoding=sm2.SignatureEncoding.DER, k=k)
    der = _der.sequence(tbs, _signature_algorithm(), _der.bit_string(signature))
    return Certificate.from_der(der, "built certificate")


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


def read_certificates_file(path: str | Path, what: str = "trust store") -> list[Certificate]:
    """:func:`load_certificates` from a file, with a one-line error when it cannot be read."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise BadInputError(f"{what} {p}: cannot read ({exc.strerror or exc})") from None
    return load_certificates(data, f"{what} {p}")
