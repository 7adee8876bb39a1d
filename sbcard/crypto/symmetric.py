"""SM3, SM4 and DES/3DES through ``cryptography`` (OpenSSL), with no hidden padding.

The card computes everything on whole blocks, so a length that is not a multiple of the
block size is always a caller's mistake: every cipher function here refuses it instead of
padding silently (the way gmssl's PKCS#7 default does). Padding is a separate, explicit
step (:func:`pad_iso9797_m2` / :func:`unpad_iso9797_m2`).

``cryptography`` is imported inside the functions so that ``import sbcard.crypto.symmetric``
stays cheap for commands that never touch a cipher.

Every mode runs in one OpenSSL call on the calling thread: bulk data goes at OpenSSL's
single-core rate, and card commands (a few blocks) pay no set-up beyond the cipher context.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING

from sbcard.errors import BadInputError
from sbcard.hexutil import as_bytes

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers import BlockCipherAlgorithm
    from cryptography.hazmat.primitives.ciphers.modes import CBC, ECB

__all__ = [
    "Algorithm",
    "UnsupportedAlgorithmError",
    "decrypt_cbc",
    "decrypt_ecb",
    "des_cbc_decrypt",
    "des_cbc_encrypt",
    "des_ecb_decrypt",
    "des_ecb_encrypt",
    "encrypt_cbc",
    "encrypt_ecb",
    "pad_iso9797_m2",
    "sm3",
    "sm4_cbc_decrypt",
    "sm4_cbc_encrypt",
    "sm4_ecb_decrypt",
    "sm4_ecb_encrypt",
    "unpad_iso9797_m2",
    "xor_bytes",
]

BytesLike = bytes | bytearray | memoryview

SM4_BLOCK = 16
DES_BLOCK = 8


class UnsupportedAlgorithmError(BadInputError):
    """The card names an algorithm we cannot compute (SSF33 has no public implementation)."""


class Algorithm(Enum):
    """The card's algorithm environment (SSSE FCI tag ``9F0C``/``86``, spec §5.1).

    Each member carries its identifier byte, block size and the key lengths the card uses,
    so no other module has to repeat them. ``Algorithm(0x03)`` looks a member up by id.
    """

    DES = (0x01, DES_BLOCK, (8, 16))
    SSF33 = (0x02, 16, (16,))
    SM4 = (0x03, SM4_BLOCK, (16,))

    def __init__(self, algorithm_id: int, block_size: int, key_sizes: tuple[int, ...]) -> None:
        self.algorithm_id = algorithm_id
        self.block_size = block_size
        self.key_sizes = key_sizes

    @classmethod
    def _missing_(cls, value: object) -> Algorithm | None:
        # Let ``Algorithm(3)`` work: the byte read from the card is what callers have.
        if isinstance(value, int) and not isinstance(value, bool):
            for member in cls:
                if member.algorithm_id == value:
                    return member
        return None

    @classmethod
    def from_id(cls, algorithm_id: int) -> Algorithm:
        """Member for the identifier byte of FCI tag ``86``; BadInputError if unknown."""
        member = cls._missing_(algorithm_id)
        if member is None:
            raise BadInputError(
                f"unknown card algorithm id 0x{algorithm_id:02X} (expected 01 DES, 02 SSF33, "
                "03 SM4)"
            )
        return member

    @property
    def supported(self) -> bool:
        """False for SSF33: its definition is not public, so nothing here can compute it."""
        return self is not Algorithm.SSF33

    def check_supported(self) -> None:
        """Raise :class:`UnsupportedAlgorithmError` when this environment cannot be computed."""
        if not self.supported:
            raise UnsupportedAlgorithmError(
                f"{self.name} is not supported: the algorithm has no public definition; "
                "use a PSAM or HSM for cards in this environment"
            )

    def check_key(self, key: BytesLike, what: str = "key") -> bytes:
        """Return ``key`` as bytes after checking its length against this environment."""
        self.check_supported()
        key = as_bytes(key, what)
        if len(key) not in self.key_sizes:
            sizes = " or ".join(str(n) for n in self.key_sizes)
            raise BadInputError(f"{self.name} {what} must be {sizes} bytes, got {len(key)}")
        return key


# --------------------------------------------------------------------------- helpers




def _check_blocks(data: BytesLike, block_size: int, what: str) -> bytes:
    data = as_bytes(data, what)
    if len(data) % block_size:
        raise BadInputError(
            f"{what} must be a multiple of {block_size} bytes (no implicit padding), "
            f"got {len(data)}"
        )
    return data


def _check_iv(iv: BytesLike, block_size: int, what: str) -> bytes:
    iv = as_bytes(iv, "IV")
    if len(iv) != block_size:
        raise BadInputError(f"{what} IV must be {block_size} bytes, got {len(iv)}")
    return iv


def xor_bytes(a: BytesLike, b: BytesLike) -> bytes:
    """Bytewise XOR of two equal-length strings (unequal lengths are a programming error)."""
    if len(a) != len(b):
        raise ValueError(f"xor of unequal lengths {len(a)} and {len(b)}")
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(len(a), "big")


def _run(algorithm: BlockCipherAlgorithm, mode: ECB | CBC, data: bytes, encrypt: bool) -> bytes:
    from cryptography.hazmat.primitives.ciphers import Cipher

    cipher = Cipher(algorithm, mode)
    ctx = cipher.encryptor() if encrypt else cipher.decryptor()
    return ctx.update(data) + ctx.finalize()


def _ecb(algorithm: BlockCipherAlgorithm, name: str, data: BytesLike, encrypt: bool) -> bytes:
    """ECB over whole blocks of ``algorithm``; ``name`` ("SM4", "DES") is for messages."""
    from cryptography.hazmat.primitives.ciphers import modes

    block = algorithm.block_size // 8
    return _run(algorithm, modes.ECB(), _check_blocks(data, block, f"{name} data"), encrypt)


def _cbc(
    algorithm: BlockCipherAlgorithm, name: str, data: BytesLike, iv: BytesLike, encrypt: bool
) -> bytes:
    """CBC with an explicit one-block IV."""
    from cryptography.hazmat.primitives.ciphers import modes

    block = algorithm.block_size // 8
    iv = _check_iv(iv, block, f"{name}-CBC")
    data = _check_blocks(data, block, f"{name} data")
    return _run(algorithm, modes.CBC(iv), data, encrypt)


# --------------------------------------------------------------------------- SM3


def sm3(data: BytesLike) -> bytes:
    """SM3 digest (GB/T 32905), 32 bytes."""
    from cryptography.hazmat.primitives import hashes

    h = hashes.Hash(hashes.SM3())
    h.update(as_bytes(data, "data"))
    return h.finalize()


# --------------------------------------------------------------------------- SM4


def _sm4(key: BytesLike) -> BlockCipherAlgorithm:
    from cryptography.hazmat.primitives.ciphers import algorithms

    key = as_bytes(key, "SM4 key")
    if len(key) != 16:
        raise BadInputError(f"SM4 key must be 16 bytes, got {len(key)}")
    return algorithms.SM4(key)


def sm4_ecb_encrypt(key: BytesLike, data: BytesLike) -> bytes:
    """SM4-ECB encryption of whole 16-byte blocks."""
    return _ecb(_sm4(key), "SM4", data, True)


def sm4_ecb_decrypt(key: BytesLike, data: BytesLike) -> bytes:
    """SM4-ECB decryption of whole 16-byte blocks."""
    return _ecb(_sm4(key), "SM4", data, False)


def sm4_cbc_encrypt(key: BytesLike, data: BytesLike, iv: BytesLike) -> bytes:
    """SM4-CBC encryption; the IV is explicit because the card's protocols choose it."""
    return _cbc(_sm4(key), "SM4", data, iv, True)


def sm4_cbc_decrypt(key: BytesLike, data: BytesLike, iv: BytesLike) -> bytes:
    """SM4-CBC decryption of whole 16-byte blocks."""
    return _cbc(_sm4(key), "SM4", data, iv, False)


# --------------------------------------------------------------------------- DES / 3DES


def _des(key: BytesLike) -> BlockCipherAlgorithm:
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES

    key = as_bytes(key, "DES key")
    if len(key) == 8:
        # K‖K‖K makes EDE collapse to single DES.
        return TripleDES(key * 3)
    if len(key) == 16:
        # EDE2: K1‖K2‖K1.
        return TripleDES(key + key[:8])
    if len(key) == 24:
        return TripleDES(key)
    raise BadInputError(f"DES key must be 8, 16 or 24 bytes, got {len(key)}")


def des_ecb_encrypt(key: BytesLike, data: BytesLike) -> bytes:
    """DES (8-byte key), 3DES EDE2 (16) or EDE3 (24) in ECB mode over whole 8-byte blocks."""
    return _ecb(_des(key), "DES", data, True)


def des_ecb_decrypt(key: BytesLike, data: BytesLike) -> bytes:
    """Inverse of :func:`des_ecb_encrypt`."""
    return _ecb(_des(key), "DES", data, False)


def des_cbc_encrypt(key: BytesLike, data: BytesLike, iv: BytesLike) -> bytes:
    """DES/3DES in CBC mode with an explicit 8-byte IV."""
    return _cbc(_des(key), "DES", data, iv, True)


def des_cbc_decrypt(key: BytesLike, data: BytesLike, iv: BytesLike) -> bytes:
    """Inverse of :func:`des_cbc_encrypt`."""
    return _cbc(_des(key), "DES", data, iv, False)


# --------------------------------------------------------------------------- by environment

_Ecb = Callable[[BytesLike, BytesLike], bytes]
_Cbc = Callable[[BytesLike, BytesLike, BytesLike], bytes]

_ECB: dict[Algorithm, tuple[_Ecb, _Ecb]] = {
    Algorithm.DES: (des_ecb_encrypt, des_ecb_decrypt),
    Algorithm.SM4: (sm4_ecb_encrypt, sm4_ecb_decrypt),
}
_CBC: dict[Algorithm, tuple[_Cbc, _Cbc]] = {
    Algorithm.DES: (des_cbc_encrypt, des_cbc_decrypt),
    Algorithm.SM4: (sm4_cbc_encrypt, sm4_cbc_decrypt),
}


def encrypt_ecb(algorithm: Algorithm, key: BytesLike, data: BytesLike) -> bytes:
    """ECB encryption in the card's environment (DES: 8- or 16-byte key; SM4: 16)."""
    key = algorithm.check_key(key)
    return _ECB[algorithm][0](key, data)


def decrypt_ecb(algorithm: Algorithm, key: BytesLike, data: BytesLike) -> bytes:
    """ECB decryption in the card's environment."""
    key = algorithm.check_key(key)
    return _ECB[algorithm][1](key, data)


def encrypt_cbc(algorithm: Algorithm, key: BytesLike, data: BytesLike, iv: BytesLike) -> bytes:
    """CBC encryption in the card's environment with an explicit IV of one block."""
    key = algorithm.check_key(key)
    return _CBC[algorithm][0](key, data, iv)


def decrypt_cbc(algorithm: Algorithm, key: BytesLike, data: BytesLike, iv: BytesLike) -> bytes:
    """CBC decryption in the card's environment."""
    key = algorithm.check_key(key)
    return _CBC[algorithm][1](key, data, iv)


# --------------------------------------------------------------------------- padding


def _check_block_size(block_size: int) -> None:
    if block_size not in (DES_BLOCK, SM4_BLOCK):
        raise ValueError(f"block size must be 8 or 16, got {block_size}")


def pad_iso9797_m2(data: BytesLike, block_size: int) -> bytes:
    """ISO/IEC 9797-1 padding method 2: append ``80`` then ``00`` up to a block boundary.

    Padding is always added, so already aligned data gains a full ``80 00…`` block: this
    is what the card does for MACs and enciphered fields (spec §5.6).
    """
    _check_block_size(block_size)
    data = as_bytes(data, "data")
    zeros = (-(len(data) + 1)) % block_size
    return data + b"\x80" + bytes(zeros)


def unpad_iso9797_m2(data: BytesLike, block_size: int) -> bytes:
    """Strictly remove ISO/IEC 9797-1 method 2 padding.

    The input must be whole blocks and the last block must hold ``80`` followed only by
    ``00`` bytes; anything else is rejected rather than guessed at, since a wrong key
    usually shows up exactly here.
    """
    _check_block_size(block_size)
    data = as_bytes(data, "data")
    if not data or len(data) % block_size:
        raise BadInputError(
            f"padded data must be a non-empty multiple of {block_size} bytes, got {len(data)}"
        )
    stripped = data[-block_size:].rstrip(b"\x00")
    if not stripped or stripped[-1] != 0x80:
        raise BadInputError("bad ISO 9797-1 method 2 padding: no 80 marker in the last block")
    return data[: len(data) - block_size + len(stripped) - 1]
