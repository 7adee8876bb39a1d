"""The card's own symmetric algorithms (spec §5.4-5.7 and §6.2), for every environment.

These are the computations a PSAM or HSM performs for the terminal and the card performs
for itself: key diversification, session keys from a challenge, authentication data for
EXTERNAL/INTERNAL AUTHENTICATE, the secure-messaging MAC and field encryption, and the PIN
proof of the third-generation PKI application. The simulator and the key tools both use
them, so each takes the :class:`~sbcard.crypto.symmetric.Algorithm` read from the card
instead of hard-coding DES or SM4.

Terms: DES environment = 8-byte blocks, card keys of 8 (single DES) or 16 bytes (3DES EDE2);
16-byte environment = SM4 (SSF33 has the same shapes but no public definition and raises).
PIN encoding (BCD, ``F`` padding) is deliberately not done here: callers pass bytes.

Symmetric only (DES/3DES, SM3, SM4): a 2.0 card's whole path loads no SM2 or ASN.1 code. The
digest a card's SM2 authentication signs is :func:`sbcard.crypto.sm2.challenge_digest`.
"""

from __future__ import annotations

from collections.abc import Sequence

from sbcard.card import factors
from sbcard.crypto.symmetric import (
    Algorithm,
    BytesLike,
    decrypt_ecb,
    des_cbc_encrypt,
    des_ecb_decrypt,
    des_ecb_encrypt,
    encrypt_ecb,
    pad_iso9797_m2,
    sm3,
    sm4_cbc_encrypt,
    sm4_ecb_encrypt,
    xor_bytes,
)
from sbcard.errors import BadInputError
from sbcard.hexutil import as_bytes

__all__ = [
    "FACTOR_SIZE",
    "auth_data",
    "card_factor",
    "city_factor",
    "decrypt_field",
    "diversify",
    "diversify_levels",
    "encrypt_field",
    "external_auth_data",
    "mac",
    "pad_challenge",
    "pki_pin_key",
    "pki_pin_proof",
    "province_factor",
    "session_key",
]

FACTOR_SIZE = factors.FACTOR_SIZE
MAC_SIZE = 4


def _not(data: bytes) -> bytes:
    return bytes(b ^ 0xFF for b in data)


def _check_len(data: object, sizes: tuple[int, ...], what: str) -> bytes:
    data = as_bytes(data, what)
    if len(data) not in sizes:
        expected = " or ".join(str(s) for s in sizes)
        raise BadInputError(f"{what} must be {expected} bytes, got {len(data)}")
    return data


# --------------------------------------------------------------------------- factors


# The factors are card facts: one definition in ``sbcard.card.factors`` (re-exported here).
card_factor = factors.card_factor
city_factor = factors.city_factor
province_factor = factors.province_factor


# --------------------------------------------------------------------------- diversification


def diversify(algorithm: Algorithm, key: BytesLike, factor: BytesLike) -> bytes:
    """One level of key diversification (spec §5.4); the result has the key's length.

    * DES, 8-byte key: ``DES_K(F)``.
    * DES, 16-byte key: ``3DES_K(F) ‖ 3DES_K(~F)``.
    * SM4: ``SM4_K(F ‖ ~F)``. The spec states this form for SSF33 only; we assume SM4
      follows it, as SM4 replaced SSF33 in the same 16-byte slot.
    """
    key = algorithm.check_key(key)
    factor = _check_len(factor, (FACTOR_SIZE,), "diversification factor")
    if algorithm is Algorithm.DES:
        if len(key) == 8:
            return des_ecb_encrypt(key, factor)
        return des_ecb_encrypt(key, factor + _not(factor))
    return encrypt_ecb(algorithm, key, factor + _not(factor))


def diversify_levels(
    algorithm: Algorithm, root_key: BytesLike, factors: Sequence[BytesLike]
) -> bytes:
    """Diversify ``root_key`` through several levels.

    ``factors`` are in the order the PSAM receives them in ``BF DE`` (card factor first,
    then city, then province); like the PSAM, they are applied last to first, so
    ``[card, city]`` under a 2-level root gives the card key.
    """
    key = algorithm.check_key(root_key)
    if not factors:
        raise BadInputError("at least one diversification factor is needed")
    for factor in reversed(factors):
        key = diversify(algorithm, key, factor)
    return key


# --------------------------------------------------------------------------- session keys


def pad_challenge(algorithm: Algorithm, challenge: BytesLike) -> bytes:
    """Right-pad a card challenge with ``00`` to one block (8 DES, 16 SM4)."""
    algorithm.check_supported()
    sizes = (4, 8) if algorithm.block_size == 8 else (4, 8, 16)
    challenge = _check_len(challenge, sizes, f"{algorithm.name} challenge")
    return challenge + bytes(algorithm.block_size - len(challenge))


def session_key(algorithm: Algorithm, key: BytesLike, challenge: BytesLike) -> bytes:
    """Session (process) key from the card's latest challenge (spec §5.5).

    DES: ``DES_K(R8)`` for a single-length key, ``3DES_K(R8)`` for a double-length one;
    both give an 8-byte key. 16-byte environment: ``E_K(R16)``, 16 bytes.
    """
    key = algorithm.check_key(key)
    return encrypt_ecb(algorithm, key, pad_challenge(algorithm, challenge))


def auth_data(algorithm: Algorithm, session: BytesLike, data: BytesLike) -> bytes:
    """The 8-byte cryptogram A over the 8 bytes X (spec §5.5).

    DES: ``A = DES_SK(X)`` with the 8-byte session key. 16-byte environment:
    ``T = E_SK(X ‖ 00×8)``, ``A = T[0:8] ⊕ T[8:16]``.
    """
    algorithm.check_supported()
    data = _check_len(data, (8,), "authentication input X")
    if algorithm is Algorithm.DES:
        sk = _check_len(session, (8,), "DES session key")
        return des_ecb_encrypt(sk, data)
    sk = _check_len(session, (16,), f"{algorithm.name} session key")
    t = encrypt_ecb(algorithm, sk, data + bytes(8))
    return xor_bytes(t[:8], t[8:])


def external_auth_data(
    algorithm: Algorithm, key: BytesLike, challenge: BytesLike, data: BytesLike
) -> bytes:
    """``A`` for EXTERNAL AUTHENTICATE: session key from ``challenge``, then :func:`auth_data`.

    The APDU data is then ``A ‖ X [‖ key version]``.
    """
    return auth_data(algorithm, session_key(algorithm, key, challenge), data)


# --------------------------------------------------------------------------- secure messaging


def mac(
    algorithm: Algorithm, session: BytesLike, data: BytesLike, iv: BytesLike | None = None
) -> bytes:
    """The 4-byte secure-messaging MAC (spec §5.6).

    ``data`` is ``CLA INS P1 P2 Lc ‖ command data`` with Lc counting the MAC; ISO 9797-1
    method 2 padding is added here. DES: single-DES CBC with the 8-byte session key, MAC =
    first 4 bytes of the last block. 16-byte environment: CBC, MAC = XOR of the four 4-byte
    quarters of the last block. ``iv`` defaults to zeros; the PKI application uses
    ``pad_challenge(SM4, challenge)``.
    """
    algorithm.check_supported()
    size = algorithm.block_size
    iv = bytes(size) if iv is None else _check_len(iv, (size,), f"{algorithm.name} MAC IV")
    padded = pad_iso9797_m2(as_bytes(data, "MAC input"), size)
    if algorithm is Algorithm.DES:
        sk = _check_len(session, (8,), "DES session key")
        return des_cbc_encrypt(sk, padded, iv)[-8:][:MAC_SIZE]
    sk = _check_len(session, (16,), f"{algorithm.name} session key")
    last = sm4_cbc_encrypt(sk, padded, iv)[-16:]
    return xor_bytes(xor_bytes(last[0:4], last[4:8]), xor_bytes(last[8:12], last[12:16]))


def encrypt_field(
    algorithm: Algorithm, session: BytesLike, data: BytesLike, *, pad_when_aligned: bool = False
) -> bytes:
    """Encipher a field for secure messaging: ECB over ``LD ‖ data ‖ 80 00…`` (spec §5.6).

    ``LD`` is the one-byte data length; ``80 00…`` fills up the last block. When
    ``LD ‖ data`` already fills whole blocks nothing is added: an assumption, taken from the
    PBOC/EMV encipherment rule the card spec is modelled on (the MAC, by contrast, always
    pads). ``pad_when_aligned=True`` adds a full ``80 00…`` block instead. The two agree
    whenever ``LD ‖ data`` is not block-aligned, as for every PIN block (``LD ‖ PIN(BCD)``).
    """
    algorithm.check_supported()
    data = as_bytes(data, "field data")
    if len(data) > 0xFF:
        raise BadInputError(f"field data must be at most 255 bytes, got {len(data)}")
    block = bytes([len(data)]) + data
    if pad_when_aligned or len(block) % algorithm.block_size:
        block = pad_iso9797_m2(block, algorithm.block_size)
    if algorithm is Algorithm.DES:
        sk = _check_len(session, (8,), "DES session key")
        return des_ecb_encrypt(sk, block)
    sk = _check_len(session, (16,), f"{algorithm.name} session key")
    return encrypt_ecb(algorithm, sk, block)


def decrypt_field(algorithm: Algorithm, session: BytesLike, enciphered: BytesLike) -> bytes:
    """Inverse of :func:`encrypt_field` (either padding rule): returns ``data``.

    Checks LD against the length and that whatever follows the data is ``80 00…``.
    """
    algorithm.check_supported()
    if algorithm is Algorithm.DES:
        sk = _check_len(session, (8,), "DES session key")
        block = des_ecb_decrypt(sk, enciphered)
    else:
        sk = _check_len(session, (16,), f"{algorithm.name} session key")
        block = decrypt_ecb(algorithm, sk, enciphered)
    if not block:
        raise BadInputError("enciphered field is empty")
    end = 1 + block[0]
    rest = block[end:]
    fits = end <= len(block) and len(rest) <= algorithm.block_size
    if not fits or (rest and rest.rstrip(b"\x00") != b"\x80"):
        raise BadInputError("deciphered field is malformed: LD or padding is wrong (wrong key?)")
    return block[1:end]


# --------------------------------------------------------------------------- PKI application


def pki_pin_key(pin_bcd: BytesLike) -> bytes:
    """K = SM3(PIN as BCD bytes)[0:16], the PKI application's PIN-derived SM4 key (§6.2)."""
    pin_bcd = as_bytes(pin_bcd, "PIN block")
    if not pin_bcd:
        raise BadInputError("PIN block must not be empty")
    return sm3(pin_bcd)[:16]


def pki_pin_proof(pin_bcd: BytesLike, challenge: BytesLike) -> bytes:
    """E = SM4-ECB_K(challenge8 ‖ 00×8) (or a 16-byte challenge as is): the VERIFY data.

    Used as ``00 20 01 81 10 E`` (user PIN) or ``00 20 01 00 10 E`` (admin PIN).
    """
    challenge = _check_len(challenge, (8, 16), "PKI challenge")
    return sm4_ecb_encrypt(pki_pin_key(pin_bcd), challenge + bytes(16 - len(challenge)))
