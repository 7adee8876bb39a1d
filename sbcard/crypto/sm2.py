"""SM2 signatures, encryption and keys on the recommended curve (GB/T 32918, GM/T 0003).

Every parameter that other libraries leave implicit is explicit here: the user ID that
goes into Z (default ``1234567812345678``, GM/T 0009), the signature encoding (raw
``r‖s`` of exactly 64 bytes, or DER) and the ciphertext order (``C1C3C2``, the current
standard, or the older ``C1C2C3``). Decryption always checks C3.

The arithmetic is delegated to an :class:`Sm2Backend`: OpenSSL's libcrypto through ctypes
when it is installed with SM2 (fast, constant-time), otherwise the pure-Python gmssl package
behind a wrapper that avoids its known defects. Both give identical results; pick one with
``backend=get_backend("gmssl")`` where it matters.

Keys convert to and from hex, DER and PEM: SEC1 ``EC PRIVATE KEY``, PKCS#8 ``PRIVATE KEY``
and SubjectPublicKeyInfo ``PUBLIC KEY``, all naming the curve by OID 1.2.156.10197.1.301,
which is what ``openssl pkey`` reads and writes.
"""

from __future__ import annotations

import functools
import secrets
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol, TypeVar

from asn1crypto import algos, keys, pem

from sbcard.crypto import _asn1
from sbcard.crypto import _sm2_math as m
from sbcard.crypto.symmetric import sm3
from sbcard.errors import BadInputError
from sbcard.gmt import SM2_DEFAULT_USER_ID
from sbcard.hexutil import as_bytes, parse_hex

__all__ = [
    "CURVE_OID",
    "DEFAULT_ID",
    "CipherOrder",
    "PrivateKey",
    "PrivateKeyFormat",
    "PublicKey",
    "SignatureEncoding",
    "Sm2Backend",
    "Sm2DecryptError",
    "challenge_digest",
    "ciphertext_from_der",
    "ciphertext_to_der",
    "compute_z",
    "decrypt",
    "default_backend",
    "encrypt",
    "get_backend",
    "load_private_key",
    "load_public_key",
    "message_digest",
    "sign",
    "sign_digest",
    "signature_from_der",
    "signature_to_der",
    "verify",
    "verify_digest",
]

DEFAULT_ID = SM2_DEFAULT_USER_ID      # GM/T 0009 §10, defined once in sbcard.gmt
CURVE_OID = _asn1.SM2_CURVE_OID
EC_PUBLIC_KEY_OID = "1.2.840.10045.2.1"
N = m.N

Point = m.Point


class Sm2DecryptError(BadInputError):
    """The ciphertext is well formed but does not decrypt: C3 differs from SM3(x2‖M‖y2)."""


class CipherOrder(Enum):
    """Order of the ciphertext parts; GB/T 32918.4-2016 uses C1C3C2, older code C1C2C3."""

    C1C3C2 = "C1C3C2"
    C1C2C3 = "C1C2C3"


class SignatureEncoding(Enum):
    """``RAW`` is r‖s, 32 bytes each, left-padded; ``DER`` is SEQUENCE {r INTEGER, s INTEGER}."""

    RAW = "raw"
    DER = "der"


class PrivateKeyFormat(Enum):
    """DER/PEM container for a private key."""

    PKCS8 = "pkcs8"  # PEM label "PRIVATE KEY" (what `openssl genpkey` writes)
    SEC1 = "sec1"  # PEM label "EC PRIVATE KEY" (RFC 5915)


class Sm2Backend(Protocol):
    """The arithmetic an SM2 implementation must supply; inputs are already validated.

    Points are affine ``(x, y)`` tuples on the curve, scalars are in range, ``e`` is a
    32-byte digest. ``k`` is ``None`` for a fresh random nonce, or a fixed nonce (tests).
    """

    name: str

    def public_point(self, d: int) -> Point: ...

    def sign_digest(self, d: int, public: Point, e: bytes, k: int | None) -> tuple[int, int]: ...

    def verify_digest(self, public: Point, e: bytes, r: int, s: int) -> bool: ...

    def sign_message(
        self, d: int, public: Point, message: bytes, uid: bytes, k: int | None
    ) -> tuple[int, int]: ...

    def verify_message(self, public: Point, message: bytes, uid: bytes, r: int, s: int) -> bool: ...

    def encrypt(self, public: Point, plaintext: bytes, k: int | None) -> tuple[Point, bytes, bytes]:
        """Return (C1, C3, C2)."""
        ...

    def decrypt(self, d: int, public: Point, c1: Point, c3: bytes, c2: bytes) -> bytes | None:
        """Return the plaintext, or None when C3 does not match."""
        ...


# --------------------------------------------------------------------------- backends


@functools.cache
def _libcrypto_backend() -> Sm2Backend | None:
    from sbcard.crypto import _sm2_libcrypto

    return _sm2_libcrypto.load()


@functools.cache
def _gmssl_backend() -> Sm2Backend:
    from sbcard.crypto._sm2_gmssl import GmsslBackend

    return GmsslBackend()


def get_backend(name: str = "auto") -> Sm2Backend:
    """``"libcrypto"``, ``"gmssl"`` or ``"auto"`` (libcrypto when it works, else gmssl).

    Backends are created once per process (loading libcrypto and its self-test cost a
    few milliseconds) and hold no state afterwards.
    """
    if name == "gmssl":
        return _gmssl_backend()
    if name not in ("libcrypto", "auto"):
        raise BadInputError(f"unknown SM2 backend {name!r} (expected libcrypto, gmssl or auto)")
    backend = _libcrypto_backend()
    if backend is not None:
        return backend
    if name == "auto":
        return _gmssl_backend()
    raise BadInputError("SM2 backend 'libcrypto' is unavailable: no OpenSSL 3 with SM2 found")


def default_backend() -> Sm2Backend:
    """The backend used when a function is not given one."""
    return get_backend("auto")


# --------------------------------------------------------------------------- small helpers

_E = TypeVar("_E", bound=Enum)


def _enum(cls: type[_E], value: _E | str, what: str) -> _E:
    if isinstance(value, cls):
        return value
    try:
        return cls(value)
    except ValueError:
        choices = ", ".join(str(member.value) for member in cls)
        raise BadInputError(f"unknown {what} {value!r} (expected one of: {choices})") from None






def _check_uid(uid: object) -> bytes:
    uid = as_bytes(uid, "user ID")
    if len(uid) > m.MAX_ID_BYTES:
        raise BadInputError(f"SM2 user ID must be at most {m.MAX_ID_BYTES} bytes, got {len(uid)}")
    return uid


def _check_k(k: int | None) -> int | None:
    if k is not None and not 0 < k < N:
        raise BadInputError("SM2 nonce k must be in [1, n-1]")
    return k


def _check_digest(digest: object) -> bytes:
    digest = as_bytes(digest, "digest")
    if len(digest) != m.DIGEST_SIZE:
        raise BadInputError(f"SM2 digest must be 32 bytes (SM3), got {len(digest)}")
    return digest


def _point_from_bytes(data: bytes, what: str) -> Point:
    if len(data) == 65 and data[0] == 0x04:
        data = data[1:]
    elif len(data) != 64:
        raise BadInputError(
            f"{what} must be 64 bytes X‖Y or 65 bytes 04‖X‖Y, got {len(data)}"
            + (" (compressed points are not supported)" if len(data) == 33 else "")
        )
    point = int.from_bytes(data[:32], "big"), int.from_bytes(data[32:], "big")
    if not m.is_on_curve(point):
        raise BadInputError(f"{what} is not a point on the SM2 curve")
    return point


# --------------------------------------------------------------------------- PEM

#: Private key PEM labels we read: PKCS#8, SEC1, and OpenSSL 3's name for SEC1 SM2 keys.
PRIVATE_KEY_LABELS = ("PRIVATE KEY", "EC PRIVATE KEY", "SM2 PRIVATE KEY")


def _pem_encode(label: str, der: bytes) -> str:
    return pem.armor(label, der).decode("ascii")


def _pem_decode(text: str | bytes, labels: tuple[str, ...], what: str) -> bytes:
    """DER of the first PEM block whose label is in ``labels`` (others, such as
    ``EC PARAMETERS`` written by ``openssl ecparam -genkey``, are skipped)."""
    data = text.encode("ascii", "replace") if isinstance(text, str) else bytes(text)
    found = []
    try:
        for label, headers, der in pem.unarmor(data, multiple=True):
            if label == "ENCRYPTED PRIVATE KEY" or "Proc-Type" in headers:
                raise BadInputError(
                    f"{what}: encrypted keys are not supported; decrypt first "
                    "(openssl pkey -in KEY -out PLAIN)"
                )
            if label in labels:
                return der
            found.append(label)
    except ValueError as exc:          # asn1crypto: no block, bad base64, bad armor
        if not found:
            raise BadInputError(f"{what}: no readable PEM block (-----BEGIN … -----END): "
                                f"{_asn1._first_line(exc)}") from None
    raise BadInputError(f"{what}: found PEM {', '.join(found)}; expected {' or '.join(labels)}")


def _looks_like_pem(data: str | bytes) -> bool:
    if isinstance(data, str):
        return "-----BEGIN" in data
    return b"-----BEGIN" in data


# --------------------------------------------------------------------------- keys


def _algorithm_identifier() -> keys.PublicKeyAlgorithm:
    return keys.PublicKeyAlgorithm({
        "algorithm": "ec", "parameters": keys.ECDomainParameters("named", CURVE_OID)})


def _check_algorithm(algorithm: keys.PublicKeyAlgorithm | keys.PrivateKeyAlgorithm,
                     what: str) -> None:
    """An id-ecPublicKey AlgorithmIdentifier that names the SM2 curve."""
    if algorithm["algorithm"].dotted != EC_PUBLIC_KEY_OID:
        raise BadInputError(f"{what}: not an EC key (algorithm is not id-ecPublicKey)")
    _check_curve(algorithm["parameters"], what)


def _check_curve(parameters: keys.ECDomainParameters, what: str) -> None:
    if parameters.name != "named":
        raise BadInputError(f"{what}: the curve must be named by OID (explicit curves unsupported)")
    curve = parameters.chosen.dotted
    if curve != CURVE_OID:
        raise BadInputError(f"{what}: curve {curve} is not SM2 ({CURVE_OID})")


@dataclass(frozen=True, repr=False)
class PublicKey:
    """An SM2 public key: a point on the curve (checked on construction)."""

    x: int
    y: int

    def __repr__(self) -> str:
        return f"PublicKey('{self.to_hex()}')"

    def __post_init__(self) -> None:
        if not m.is_on_curve((self.x, self.y)):
            raise BadInputError("SM2 public key is not a point on the SM2 curve")

    @property
    def point(self) -> Point:
        return self.x, self.y

    # -- raw / hex

    @classmethod
    def from_bytes(cls, data: bytes) -> PublicKey:
        """From ``04‖X‖Y`` (65 bytes) or ``X‖Y`` (64 bytes), as cards and tools export it."""
        return cls(*_point_from_bytes(as_bytes(data, "SM2 public key"), "SM2 public key"))

    @classmethod
    def from_hex(cls, text: str) -> PublicKey:
        return cls.from_bytes(parse_hex(text, "SM2 public key"))

    def to_bytes(self, prefix: bool = True) -> bytes:
        """``04‖X‖Y``, or ``X‖Y`` with ``prefix=False`` (the card's EF 0012 layout)."""
        raw = m.point_bytes(self.point)
        return raw if prefix else raw[1:]

    def to_hex(self, prefix: bool = True) -> str:
        return self.to_bytes(prefix).hex().upper()

    # -- DER / PEM (SubjectPublicKeyInfo)

    def to_der(self) -> bytes:
        return keys.PublicKeyInfo({"algorithm": _algorithm_identifier(),
                                   "public_key": self.to_bytes()}).dump()

    def to_pem(self) -> str:
        return _pem_encode("PUBLIC KEY", self.to_der())

    @classmethod
    def from_der(cls, data: bytes) -> PublicKey:
        what = "SM2 public key DER"
        info = _asn1.load_der(keys.PublicKeyInfo, as_bytes(data, what), what)
        _check_algorithm(info["algorithm"], what)
        point = _asn1.native(info["public_key"], what)
        if not isinstance(point, bytes):
            raise BadInputError(f"{what}: subjectPublicKey is not a point")
        return cls.from_bytes(point)

    @classmethod
    def from_pem(cls, text: str | bytes) -> PublicKey:
        return cls.from_der(_pem_decode(text, ("PUBLIC KEY",), "SM2 public key PEM"))


@dataclass(frozen=True)
class PrivateKey:
    """An SM2 private key d in [1, n-2]; the public key is derived, so they always match.

    ``repr`` never shows d. Use :meth:`generate` for a new key.
    """

    d: int = field(repr=False)
    public_key: PublicKey = field(init=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.d, int) or not 0 < self.d < N - 1:
            # d = n-1 is excluded by GB/T 32918: 1 + d must be invertible mod n.
            raise BadInputError("SM2 private key must be an integer in [1, n-2]")
        x, y = default_backend().public_point(self.d)
        object.__setattr__(self, "public_key", PublicKey(x, y))

    @classmethod
    def generate(cls) -> PrivateKey:
        """A new key from :mod:`secrets`."""
        return cls(secrets.randbelow(N - 2) + 1)

    # -- raw / hex

    @classmethod
    def from_bytes(cls, data: bytes) -> PrivateKey:
        """From the 32-byte big-endian scalar."""
        data = as_bytes(data, "SM2 private key")
        if len(data) != 32:
            raise BadInputError(f"SM2 private key must be 32 bytes, got {len(data)}")
        return cls(int.from_bytes(data, "big"))

    @classmethod
    def from_hex(cls, text: str) -> PrivateKey:
        return cls.from_bytes(parse_hex(text, "SM2 private key"))

    def to_bytes(self) -> bytes:
        return self.d.to_bytes(32, "big")

    def to_hex(self) -> str:
        return self.to_bytes().hex().upper()

    # -- DER / PEM

    def _ec_private_key(self, with_curve: bool) -> keys.ECPrivateKey:
        fields: dict[str, object] = {"version": "ecPrivkeyVer1", "private_key": self.d,
                                     "public_key": self.public_key.to_bytes()}
        if with_curve:
            fields["parameters"] = keys.ECDomainParameters("named", CURVE_OID)
        ec = keys.ECPrivateKey(fields)
        ec["private_key"].set_encoded_width(32)          # RFC 5915: the scalar's full width
        return ec

    def to_der(self, fmt: PrivateKeyFormat | str = PrivateKeyFormat.PKCS8) -> bytes:
        """PKCS#8 (curve in the AlgorithmIdentifier) or SEC1 (curve in ``[0]``)."""
        if _enum(PrivateKeyFormat, fmt, "private key format") is PrivateKeyFormat.SEC1:
            return self._ec_private_key(with_curve=True).dump()
        return keys.PrivateKeyInfo({
            "version": 0,
            "private_key_algorithm": keys.PrivateKeyAlgorithm({
                "algorithm": "ec", "parameters": keys.ECDomainParameters("named", CURVE_OID)}),
            "private_key": self._ec_private_key(with_curve=False),
        }).dump()

    def to_pem(self, fmt: PrivateKeyFormat | str = PrivateKeyFormat.PKCS8) -> str:
        fmt = _enum(PrivateKeyFormat, fmt, "private key format")
        label = "EC PRIVATE KEY" if fmt is PrivateKeyFormat.SEC1 else "PRIVATE KEY"
        return _pem_encode(label, self.to_der(fmt))

    @classmethod
    def _from_ec_private_key(cls, ec: keys.ECPrivateKey, curve_known: bool) -> PrivateKey:
        what = "SM2 private key (SEC1)"
        if ec["version"].native != "ecPrivkeyVer1":
            raise BadInputError(f"{what}: not an ECPrivateKey version 1")
        scalar = ec["private_key"].contents
        if not 0 < len(scalar) <= 32:
            raise BadInputError(f"{what}: private scalar must be at most 32 bytes")
        if ec["parameters"].native is not None:
            _check_curve(ec["parameters"], what)
            curve_known = True
        public = ec["public_key"].native
        if not curve_known and public is None:
            # Without a curve OID only the embedded public key can tell us the curve is SM2.
            raise BadInputError(f"{what}: names no curve; cannot tell it is an SM2 key")
        key = cls(int.from_bytes(scalar, "big"))
        if public is not None and _point_from_bytes(public, what) != key.public_key.point:
            raise BadInputError(f"{what}: the embedded public key does not match the private key")
        return key

    @classmethod
    def from_der(cls, data: bytes) -> PrivateKey:
        """From PKCS#8 or SEC1 DER (detected from the structure)."""
        what = "SM2 private key DER"
        data = as_bytes(data, what)
        try:
            info = keys.PrivateKeyInfo.load(data, strict=True)
            is_pkcs8 = isinstance(info["private_key_algorithm"], keys.PrivateKeyAlgorithm)
        except (ValueError, TypeError):
            is_pkcs8 = False
        if is_pkcs8:
            info = _asn1.load_der(keys.PrivateKeyInfo, data, what)
            if info["version"].native not in (0, 1):
                raise BadInputError(f"{what}: unknown PKCS#8 version")
            _check_algorithm(info["private_key_algorithm"], what)
            return cls._from_ec_private_key(info["private_key"].parsed, curve_known=True)
        ec = _asn1.load_der(keys.ECPrivateKey, data, what)
        _asn1.native(ec, what)
        return cls._from_ec_private_key(ec, curve_known=False)

    @classmethod
    def from_pem(cls, text: str | bytes) -> PrivateKey:
        return cls.from_der(_pem_decode(text, PRIVATE_KEY_LABELS, "SM2 private key PEM"))


def load_private_key(data: str | bytes) -> PrivateKey:
    """A private key from PEM text, DER bytes, 32 raw bytes or 64 hex digits."""
    if _looks_like_pem(data):
        return PrivateKey.from_pem(data)
    if isinstance(data, str):
        return PrivateKey.from_hex(data)
    data = as_bytes(data, "SM2 private key")
    if data[:1] == b"\x30" and len(data) != 32:
        return PrivateKey.from_der(data)
    return PrivateKey.from_bytes(data)


def load_public_key(data: str | bytes) -> PublicKey:
    """A public key from PEM text, SubjectPublicKeyInfo DER, raw 64/65 bytes or their hex."""
    if _looks_like_pem(data):
        return PublicKey.from_pem(data)
    if isinstance(data, str):
        return PublicKey.from_hex(data)
    data = as_bytes(data, "SM2 public key")
    if data[:1] == b"\x30" and len(data) not in (64, 65):
        return PublicKey.from_der(data)
    return PublicKey.from_bytes(data)


def _as_public(key: PublicKey | bytes) -> PublicKey:
    return key if isinstance(key, PublicKey) else PublicKey.from_bytes(key)


# --------------------------------------------------------------------------- Z and digest


def compute_z(public_key: PublicKey | bytes, uid: bytes = DEFAULT_ID) -> bytes:
    """Z_A = SM3(ENTL‖ID‖a‖b‖xG‖yG‖xA‖yA): binds the signer's ID and key into the digest."""
    return m.compute_z(_as_public(public_key).point, _check_uid(uid))


def message_digest(public_key: PublicKey | bytes, message: bytes, uid: bytes = DEFAULT_ID) -> bytes:
    """e = SM3(Z‖M), the 32 bytes that :func:`sign_digest` expects."""
    point = _as_public(public_key).point
    return m.message_digest(point, as_bytes(message, "message"), _check_uid(uid))


def challenge_digest(public_key: PublicKey | bytes, challenge: bytes, *, with_z: bool,
                     user_id: bytes = DEFAULT_ID) -> bytes:
    """e, the 32 bytes a card's SM2 authentication signature is over (spec §6.2).

    ``with_z``: e = SM3(Z ‖ challenge), Z from ``user_id`` and the card's key (GM/T 0009);
    otherwise e = SM3(challenge). The profile's ``[sm2_auth] hash`` chooses.
    """
    if not with_z:
        return sm3(challenge)
    return message_digest(public_key, challenge, user_id)


# --------------------------------------------------------------------------- signatures


def _encode_signature(r: int, s: int, encoding: SignatureEncoding) -> bytes:
    if encoding is SignatureEncoding.DER:
        return _asn1.dsa_signature(r, s)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def _decode_signature(signature: bytes, encoding: SignatureEncoding) -> tuple[int, int]:
    signature = as_bytes(signature, "signature")
    if encoding is SignatureEncoding.RAW:
        if len(signature) != 64:
            raise BadInputError(f"raw SM2 signature must be 64 bytes (r‖s), got {len(signature)}")
        return int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    what = "DER SM2 signature"
    value = _asn1.load_der(algos.DSASignature, signature, what)
    r, s = value["r"].native, value["s"].native
    if r < 0 or s < 0:
        raise BadInputError(f"{what}: negative INTEGER")
    return r, s


def _check_rs(r: int, s: int) -> None:
    if not (0 < r < N and 0 < s < N):
        raise BadInputError("SM2 signature values r and s must be in [1, n-1]")


def signature_to_der(raw: bytes) -> bytes:
    """Raw r‖s (64 bytes) → DER; leading zero bytes of r or s are dropped, 00 added if needed."""
    r, s = _decode_signature(raw, SignatureEncoding.RAW)
    _check_rs(r, s)
    return _encode_signature(r, s, SignatureEncoding.DER)


def signature_from_der(der: bytes) -> bytes:
    """DER → raw r‖s, each left-padded to 32 bytes."""
    r, s = _decode_signature(der, SignatureEncoding.DER)
    _check_rs(r, s)
    return _encode_signature(r, s, SignatureEncoding.RAW)


def sign(
    private_key: PrivateKey,
    message: bytes,
    *,
    uid: bytes = DEFAULT_ID,
    encoding: SignatureEncoding | str = SignatureEncoding.RAW,
    k: int | None = None,
    backend: Sm2Backend | None = None,
) -> bytes:
    """Sign SM3(Z‖M) with Z from ``uid``; ``k`` fixes the nonce (known-answer tests only:
    reusing a k, or a predictable one, reveals the private key)."""
    enc = _enum(SignatureEncoding, encoding, "signature encoding")
    be = backend or default_backend()
    r, s = be.sign_message(
        private_key.d,
        private_key.public_key.point,
        as_bytes(message, "message"),
        _check_uid(uid),
        _check_k(k),
    )
    return _encode_signature(r, s, enc)


def verify(
    public_key: PublicKey | bytes,
    message: bytes,
    signature: bytes,
    *,
    uid: bytes = DEFAULT_ID,
    encoding: SignatureEncoding | str = SignatureEncoding.RAW,
    backend: Sm2Backend | None = None,
) -> bool:
    """True if ``signature`` is valid for ``message`` under ``public_key`` and ``uid``.

    A malformed signature (wrong length, bad DER) raises BadInputError; a well-formed but
    wrong one returns False.
    """
    r, s = _decode_signature(signature, _enum(SignatureEncoding, encoding, "signature encoding"))
    pub = _as_public(public_key)
    message = as_bytes(message, "message")
    uid = _check_uid(uid)
    if not (0 < r < N and 0 < s < N):
        return False
    return (backend or default_backend()).verify_message(pub.point, message, uid, r, s)


def sign_digest(
    private_key: PrivateKey,
    digest: bytes,
    *,
    encoding: SignatureEncoding | str = SignatureEncoding.RAW,
    k: int | None = None,
    backend: Sm2Backend | None = None,
) -> bytes:
    """Sign a precomputed e = SM3(Z‖M) (see :func:`message_digest`), e.g. one a card made."""
    enc = _enum(SignatureEncoding, encoding, "signature encoding")
    be = backend or default_backend()
    r, s = be.sign_digest(
        private_key.d, private_key.public_key.point, _check_digest(digest), _check_k(k)
    )
    return _encode_signature(r, s, enc)


def verify_digest(
    public_key: PublicKey | bytes,
    digest: bytes,
    signature: bytes,
    *,
    encoding: SignatureEncoding | str = SignatureEncoding.RAW,
    backend: Sm2Backend | None = None,
) -> bool:
    """Verify a signature over a precomputed 32-byte digest e."""
    r, s = _decode_signature(signature, _enum(SignatureEncoding, encoding, "signature encoding"))
    pub = _as_public(public_key)
    digest = _check_digest(digest)
    if not (0 < r < N and 0 < s < N):
        return False
    return (backend or default_backend()).verify_digest(pub.point, digest, r, s)


# --------------------------------------------------------------------------- encryption


def _join_ciphertext(c1: Point, c3: bytes, c2: bytes, order: CipherOrder, c1_prefix: bool) -> bytes:
    c1_bytes = m.point_bytes(c1)
    if not c1_prefix:
        c1_bytes = c1_bytes[1:]
    return c1_bytes + (c3 + c2 if order is CipherOrder.C1C3C2 else c2 + c3)


def _split_ciphertext(ciphertext: bytes, order: CipherOrder) -> tuple[Point, bytes, bytes]:
    """C1 may be ``04‖X‖Y`` or ``X‖Y``: the one that is a curve point wins (a false match
    has probability about 2^-256)."""
    what = "SM2 ciphertext"
    data = as_bytes(ciphertext, what)
    c1: Point | None = None
    rest = b""
    for size in (65, 64):
        if len(data) < size or (size == 65 and data[0] != 0x04):
            continue
        raw = data[size - 64 : size]
        candidate = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
        if m.is_on_curve(candidate):
            c1, rest = candidate, data[size:]
            break
    if c1 is None:
        raise BadInputError(f"{what}: C1 is not a point on the SM2 curve")
    if len(rest) < m.DIGEST_SIZE + 1:
        raise BadInputError(
            f"{what} too short: {len(data)} bytes, need C1 (64/65) + C3 (32) + C2 (at least 1)"
        )
    if order is CipherOrder.C1C3C2:
        return c1, rest[:32], rest[32:]
    return c1, rest[-32:], rest[:-32]


def encrypt(
    public_key: PublicKey | bytes,
    plaintext: bytes,
    *,
    order: CipherOrder | str = CipherOrder.C1C3C2,
    c1_prefix: bool = True,
    k: int | None = None,
    backend: Sm2Backend | None = None,
) -> bytes:
    """SM2 encryption → C1‖C3‖C2 (or C1‖C2‖C3). C1 is ``04‖X‖Y``; ``c1_prefix=False``
    drops the 04 as the card's envelope command expects. ``k`` as in :func:`sign`."""
    order = _enum(CipherOrder, order, "ciphertext order")
    plaintext = as_bytes(plaintext, "plaintext")
    if not plaintext:
        raise BadInputError("SM2 plaintext must not be empty")
    pub = _as_public(public_key)
    c1, c3, c2 = (backend or default_backend()).encrypt(pub.point, plaintext, _check_k(k))
    return _join_ciphertext(c1, c3, c2, order, c1_prefix)


def decrypt(
    private_key: PrivateKey,
    ciphertext: bytes,
    *,
    order: CipherOrder | str = CipherOrder.C1C3C2,
    backend: Sm2Backend | None = None,
) -> bytes:
    """SM2 decryption; raises :class:`Sm2DecryptError` when C3 does not match."""
    order = _enum(CipherOrder, order, "ciphertext order")
    c1, c3, c2 = _split_ciphertext(ciphertext, order)
    be = backend or default_backend()
    plaintext = be.decrypt(private_key.d, private_key.public_key.point, c1, c3, c2)
    if plaintext is None:
        raise Sm2DecryptError(
            f"SM2 decryption failed: C3 check does not match (wrong key, wrong order "
            f"{order.value} or corrupted ciphertext)"
        )
    return plaintext


def ciphertext_to_der(ciphertext: bytes, order: CipherOrder | str = CipherOrder.C1C3C2) -> bytes:
    """Raw ciphertext → GM/T 0009 DER SEQUENCE {x, y, C3, C2}, as OpenSSL and GmSSL use."""
    c1, c3, c2 = _split_ciphertext(ciphertext, _enum(CipherOrder, order, "ciphertext order"))
    return _asn1.Sm2Cipher({"x": c1[0], "y": c1[1], "hash": c3, "ciphertext": c2}).dump()


def ciphertext_from_der(
    der: bytes, order: CipherOrder | str = CipherOrder.C1C3C2, *, c1_prefix: bool = True
) -> bytes:
    """GM/T 0009 DER ciphertext → raw bytes in the chosen order."""
    what = "DER SM2 ciphertext"
    value = _asn1.load_der(_asn1.Sm2Cipher, as_bytes(der, what), what)
    c1 = value["x"].native, value["y"].native
    if not m.is_on_curve(c1):
        raise BadInputError(f"{what}: C1 is not a point on the SM2 curve")
    c3, c2 = value["hash"].native, value["ciphertext"].native
    if len(c3) != m.DIGEST_SIZE or not c2:
        raise BadInputError(f"{what}: C3 must be 32 bytes and C2 non-empty")
    return _join_ciphertext(c1, c3, c2, _enum(CipherOrder, order, "ciphertext order"), c1_prefix)
