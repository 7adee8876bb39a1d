"""The card's algorithms as one call each, for checking a card or a script by hand.

The primitives live in :mod:`sbcard.crypto`; this module adds what a by-hand calculation
needs around them — which key sizes a cipher takes, explicit (never silent) padding, a session
key derived on the way, the APDU the result goes into — with one-line errors that name the
option to fix. The ``sbcard crypto`` commands read options, call these and print.
"""

from __future__ import annotations

from dataclasses import dataclass

from sbcard.apdu.commands import external_authenticate
from sbcard.crypto import card_algos, symmetric
from sbcard.crypto.sm2 import PrivateKey
from sbcard.crypto.symmetric import Algorithm
from sbcard.errors import BadInputError


@dataclass(frozen=True)
class CipherSpec:
    """What a block cipher accepts."""

    title: str
    block: int
    key_sizes: tuple[int, ...]


CIPHERS: dict[str, CipherSpec] = {
    "sm4": CipherSpec("SM4", 16, (16,)),
    "des": CipherSpec("DES", 8, (8, 16, 24)),
}


def nbytes(n: int) -> str:
    return f"{n} byte" if n == 1 else f"{n} bytes"


def block_cipher(name: str, *, encrypt: bool, key: bytes, data: bytes, mode: str = "ecb",
                 iv: bytes | None = None, pad: bool = False) -> bytes:
    """Encrypt or decrypt ``data`` with SM4 or DES/3DES (key length picks DES, EDE2, EDE3).

    ``pad`` adds ISO/IEC 9797-1 method 2 before encrypting and strictly strips it after
    decrypting; without it the data must be whole blocks. ``iv`` (CBC) defaults to zeros.
    """
    spec = CIPHERS[name]
    mode = mode.lower()
    if len(key) not in spec.key_sizes:
        sizes = " or ".join(str(n) for n in spec.key_sizes)
        raise BadInputError(f"--key: {spec.title} key must be {sizes} bytes, "
                            f"got {nbytes(len(key))}")
    iv = bytes(spec.block) if iv is None else iv
    if len(iv) != spec.block:
        raise BadInputError(f"--iv: {spec.title}-CBC IV must be {spec.block} bytes, "
                            f"got {nbytes(len(iv))}")
    if encrypt and pad:
        data = symmetric.pad_iso9797_m2(data, spec.block)
    if len(data) % spec.block:
        if encrypt:
            raise BadInputError(
                f"{spec.title} data is {nbytes(len(data))}, not a multiple of {spec.block}: "
                "nothing is padded silently; add --pad iso9797-m2 to append 80 00… first")
        raise BadInputError(
            f"{spec.title} ciphertext is {nbytes(len(data))}, not a multiple of {spec.block} "
            "(truncated, or not ciphertext?)")
    fn = getattr(symmetric, f"{name}_{mode}_{'encrypt' if encrypt else 'decrypt'}")
    result: bytes = fn(key, data, iv) if mode == "cbc" else fn(key, data)
    if not encrypt and pad:
        try:
            result = symmetric.unpad_iso9797_m2(result, spec.block)
        except BadInputError as exc:
            raise BadInputError(
                f"{exc} (wrong key or IV, or the data was not padded: try --pad none)"
            ) from None
    return result


@dataclass(frozen=True)
class MacResult:
    session_key: bytes         # the key the MAC was computed with
    iv: bytes
    challenge: bytes | None    # set when the session key was derived from it
    mac: bytes


def card_mac(algorithm: Algorithm, key: bytes, data: bytes, *, iv: bytes | None = None,
             challenge: bytes | None = None) -> MacResult:
    """Secure-messaging MAC (spec §5.6) with ``key``, or with the session key derived from
    ``key`` (a card key) and ``challenge`` when one is given."""
    session = key
    if challenge is not None:
        session = card_algos.session_key(algorithm, key, challenge)
    mac = card_algos.mac(algorithm, session, data, iv)
    return MacResult(session, iv if iv is not None else bytes(algorithm.block_size),
                     challenge, mac)


@dataclass(frozen=True)
class AuthResult:
    session_key: bytes
    auth_data: bytes           # A
    original: bytes            # X
    apdu: bytes | None         # the whole EXTERNAL AUTHENTICATE when a key ID is given

    @property
    def apdu_data(self) -> bytes:
        return self.auth_data + self.original


def external_auth(algorithm: Algorithm, key: bytes, challenge: bytes, original: bytes, *,
                  key_id: int | None = None, key_version: int | None = None) -> AuthResult:
    """EXTERNAL AUTHENTICATE data (spec §5.5) from a card key, the card's challenge and the
    terminal's random X; with ``key_id`` also the APDU it goes into."""
    session = card_algos.session_key(algorithm, key, challenge)
    a = card_algos.external_auth_data(algorithm, key, challenge, original)
    apdu = None
    if key_id is not None:
        apdu = external_authenticate(key_id, a, original, key_version).to_bytes()
    return AuthResult(session, a, original, apdu)


def signature_format(signature: bytes, fmt: str) -> str:
    """``raw`` or ``der`` for an SM2 signature; ``auto`` decides from its shape."""
    fmt = fmt.lower()
    if fmt != "auto":
        return fmt
    if len(signature) == 64:
        return "raw"
    if signature[:1] == b"\x30":
        return "der"
    raise BadInputError(
        f"--sig is {len(signature)} bytes: neither raw r‖s (64 bytes) nor DER "
        "(starting with 30)")


def encode_keypair(key: PrivateKey, fmt: str) -> tuple[bytes, bytes]:
    """(private, public) as files hold them: ``pem``/``der`` = PKCS#8 and SubjectPublicKeyInfo
    (what openssl reads); ``hex`` = the scalar d and 04‖X‖Y, each on a line."""
    fmt = fmt.lower()
    if fmt == "pem":
        return key.to_pem().encode(), key.public_key.to_pem().encode()
    if fmt == "der":
        return key.to_der(), key.public_key.to_der()
    if fmt == "hex":
        return (key.to_hex() + "\n").encode(), (key.public_key.to_hex() + "\n").encode()
    raise BadInputError(f"key format must be pem, der or hex, got {fmt!r}")
