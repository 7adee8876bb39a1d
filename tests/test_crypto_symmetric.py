"""Known-answer and contract tests for sbcard.crypto.symmetric."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from sbcard.crypto import symmetric as sym
from sbcard.crypto.symmetric import Algorithm, UnsupportedAlgorithmError
from sbcard.errors import BadInputError

h = bytes.fromhex


# --------------------------------------------------------------------------- SM3
# GB/T 32905-2016 appendix A, examples 1 and 2.


def test_sm3_abc() -> None:
    assert sym.sm3(b"abc") == h("66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0")


def test_sm3_abcd_x16() -> None:
    assert sym.sm3(b"abcd" * 16) == h(
        "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"
    )


def test_sm3_pki_pin_constant() -> None:
    # The constant quoted in the spec §6.2 for the default PIN 123456 (as BCD bytes).
    assert sym.sm3(h("123456")).hex().upper() == (
        "3DE741F445DD357BEA4E6C3FE6437036F62B5E3EC0F00D62796EDB4305ED627F"
    )


def test_sm3_accepts_bytearray_and_rejects_str() -> None:
    assert sym.sm3(bytearray(b"abc")) == sym.sm3(b"abc")
    with pytest.raises(TypeError):
        sym.sm3("abc")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- SM4
# GB/T 32907-2016 appendix A, examples 1 and 2.
SM4_KEY = h("0123456789abcdeffedcba9876543210")


def test_sm4_example_1() -> None:
    ct = sym.sm4_ecb_encrypt(SM4_KEY, SM4_KEY)
    assert ct == h("681edf34d206965e86b3e94f536e4246")
    assert sym.sm4_ecb_decrypt(SM4_KEY, ct) == SM4_KEY


def test_sm4_example_2_million_iterations() -> None:
    # Encrypting the block 1,000,000 times. One context of the same OpenSSL SM4 that
    # sm4_ecb_encrypt wraps keeps this well under a second; the wrapper is checked
    # against that primitive on random data just below.
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    enc = Cipher(algorithms.SM4(SM4_KEY), modes.ECB()).encryptor()
    block = SM4_KEY
    for _ in range(1_000_000):
        block = enc.update(block)
    assert block == h("595298c7c6fd271f0402f804c33d3f66")
    data = os.urandom(64)
    ref = Cipher(algorithms.SM4(SM4_KEY), modes.ECB()).encryptor().update(data)
    assert sym.sm4_ecb_encrypt(SM4_KEY, data) == ref


def test_sm4_cbc_vector() -> None:
    # draft-ribose-cfrg-sm4 (RFC 8998 family) A.2.2.1, SM4-CBC.
    pt = h("aaaaaaaabbbbbbbbccccccccddddddddeeeeeeeeffffffffaaaaaaaabbbbbbbb")
    iv = h("000102030405060708090a0b0c0d0e0f")
    ct = h("78ebb11cc40b0a48312aaeb2040244cb4cb7016951909226979b0d15dc6a8f6d")
    assert sym.sm4_cbc_encrypt(SM4_KEY, pt, iv) == ct
    assert sym.sm4_cbc_decrypt(SM4_KEY, ct, iv) == pt


def _serial(mode_name: str, data: bytes, encrypt: bool, iv: bytes | None = None) -> bytes:
    """One OpenSSL context over the whole input, built here: the reference."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    mode = modes.ECB() if mode_name == "ecb" else modes.CBC(iv)
    cipher = Cipher(algorithms.SM4(SM4_KEY), mode)
    ctx = cipher.encryptor() if encrypt else cipher.decryptor()
    return ctx.update(data) + ctx.finalize()


@pytest.mark.parametrize("blocks", [4096, 4099, 7])
def test_sm4_bulk_matches_one_context(blocks: int) -> None:
    data = os.urandom(16 * blocks)
    iv = os.urandom(16)
    assert sym.sm4_ecb_encrypt(SM4_KEY, data) == _serial("ecb", data, True)
    assert sym.sm4_ecb_decrypt(SM4_KEY, data) == _serial("ecb", data, False)
    assert sym.sm4_cbc_decrypt(SM4_KEY, data, iv) == _serial("cbc", data, False, iv)
    ciphertext = sym.sm4_cbc_encrypt(SM4_KEY, data, iv)
    assert ciphertext == _serial("cbc", data, True, iv)
    assert sym.sm4_cbc_decrypt(SM4_KEY, ciphertext, iv) == data


@pytest.mark.parametrize("key_len", [8, 16, 24])
def test_des_bulk_matches_one_context(key_len: int) -> None:
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
    from cryptography.hazmat.primitives.ciphers import Cipher, modes

    key = os.urandom(key_len)
    full = {8: key * 3, 16: key + key[:8], 24: key}[key_len]
    data, iv = os.urandom(8 * 1001), os.urandom(8)
    ecb = Cipher(TripleDES(full), modes.ECB())
    cbc = Cipher(TripleDES(full), modes.CBC(iv))
    assert sym.des_ecb_encrypt(key, data) == ecb.encryptor().update(data)
    assert sym.des_ecb_decrypt(key, data) == ecb.decryptor().update(data)
    assert sym.des_cbc_decrypt(key, data, iv) == cbc.decryptor().update(data)
    assert sym.des_cbc_encrypt(key, data, iv) == cbc.encryptor().update(data)


def test_sm4_never_pads() -> None:
    # gmssl's default turns 16 bytes into 32; we must not.
    assert len(sym.sm4_ecb_encrypt(SM4_KEY, bytes(64))) == 64
    with pytest.raises(BadInputError, match="multiple of 16"):
        sym.sm4_ecb_encrypt(SM4_KEY, bytes(15))
    with pytest.raises(BadInputError, match="multiple of 16"):
        sym.sm4_cbc_decrypt(SM4_KEY, bytes(17), bytes(16))


def test_sm4_key_and_iv_lengths() -> None:
    secret = bytes(range(1, 16))
    with pytest.raises(BadInputError, match="SM4 key must be 16 bytes, got 15") as err:
        sym.sm4_ecb_encrypt(secret, bytes(16))
    assert secret.hex() not in str(err.value).lower()
    with pytest.raises(BadInputError, match="IV must be 16 bytes, got 8"):
        sym.sm4_cbc_encrypt(SM4_KEY, bytes(16), bytes(8))


# --------------------------------------------------------------------------- DES / 3DES


def test_des_single_classic_vector() -> None:
    # The worked example of the DES standard literature (key 133457799BBCDFF1).
    assert sym.des_ecb_encrypt(h("133457799BBCDFF1"), h("0123456789ABCDEF")) == h(
        "85E813540F0AB405"
    )


def test_des_fips81_ecb_and_cbc() -> None:
    # FIPS PUB 81 appendix B (ECB) and C (CBC), "Now is the time for all ".
    key, pt = h("0123456789ABCDEF"), b"Now is the time for all "
    assert sym.des_ecb_encrypt(key, pt) == h("3FA40E8A984D48156A271787AB8883F9893D51EC4B563B53")
    iv = h("1234567890ABCDEF")
    ct = h("E5C7CDDE872BF27C43E934008C389C0F683788499A7C05F6")
    assert sym.des_cbc_encrypt(key, pt, iv) == ct
    assert sym.des_cbc_decrypt(key, ct, iv) == pt


def test_3des_ede2_check_value() -> None:
    # The payment-industry test key 0123…EF FEDC…10 has key check value 08D7B4FB…
    assert sym.des_ecb_encrypt(h("0123456789ABCDEFFEDCBA9876543210"), bytes(8)) == h(
        "08D7B4FB629D0885"
    )


def test_3des_ede3_sp800_67_vector() -> None:
    # NIST SP 800-67 rev. 1 appendix B example (three distinct keys).
    key = h("0123456789ABCDEF23456789ABCDEF01456789ABCDEF0123")
    ct = h("A826FD8CE53B855FCCE21C8112256FE668D5C05DD9B6B900")
    assert sym.des_ecb_encrypt(key, b"The qufck brown fox jump") == ct
    assert sym.des_ecb_decrypt(key, ct) == b"The qufck brown fox jump"


def test_3des_ede2_is_k1_k2_k1() -> None:
    k1, k2 = h("0123456789ABCDEF"), h("FEDCBA9876543210")
    block = h("1122334455667788")
    expected = sym.des_ecb_encrypt(k1, sym.des_ecb_decrypt(k2, sym.des_ecb_encrypt(k1, block)))
    assert sym.des_ecb_encrypt(k1 + k2, block) == expected
    assert sym.des_ecb_encrypt(k1 + k2 + k1, block) == expected


def test_des_rejects_bad_lengths() -> None:
    with pytest.raises(BadInputError, match="DES key must be 8, 16 or 24 bytes, got 7"):
        sym.des_ecb_encrypt(bytes(7), bytes(8))
    with pytest.raises(BadInputError, match="multiple of 8"):
        sym.des_ecb_encrypt(bytes(8), bytes(12))
    with pytest.raises(BadInputError, match="IV must be 8 bytes"):
        sym.des_cbc_encrypt(bytes(8), bytes(8), bytes(16))


# --------------------------------------------------------------------------- Algorithm


def test_algorithm_enum_attributes() -> None:
    assert Algorithm(0x03) is Algorithm.SM4
    assert Algorithm.from_id(1) is Algorithm.DES
    assert (Algorithm.DES.block_size, Algorithm.DES.key_sizes) == (8, (8, 16))
    assert (Algorithm.SM4.algorithm_id, Algorithm.SM4.block_size) == (3, 16)
    assert Algorithm.SSF33.algorithm_id == 2 and not Algorithm.SSF33.supported
    with pytest.raises(BadInputError, match="unknown card algorithm id 0x09"):
        Algorithm.from_id(9)


def test_generic_functions_follow_environment() -> None:
    key16 = h("0123456789ABCDEFFEDCBA9876543210")
    assert sym.encrypt_ecb(Algorithm.DES, key16, bytes(8)) == h("08D7B4FB629D0885")
    assert sym.encrypt_ecb(Algorithm.SM4, SM4_KEY, SM4_KEY) == h("681edf34d206965e86b3e94f536e4246")
    data = os.urandom(32)
    for algo, key in ((Algorithm.DES, key16), (Algorithm.SM4, SM4_KEY)):
        iv = bytes(algo.block_size)
        ct = sym.encrypt_cbc(algo, key, data, iv)
        assert sym.decrypt_cbc(algo, key, ct, iv) == data
        assert sym.decrypt_ecb(algo, key, sym.encrypt_ecb(algo, key, data)) == data
    with pytest.raises(BadInputError, match="DES key must be 8 or 16 bytes, got 24"):
        sym.encrypt_ecb(Algorithm.DES, bytes(24), bytes(8))


def test_ssf33_is_refused_clearly() -> None:
    with pytest.raises(UnsupportedAlgorithmError, match="SSF33 is not supported"):
        sym.encrypt_ecb(Algorithm.SSF33, bytes(16), bytes(16))
    assert issubclass(UnsupportedAlgorithmError, BadInputError)


# --------------------------------------------------------------------------- padding


@pytest.mark.parametrize(
    ("data", "size", "padded"),
    [
        (b"", 8, h("8000000000000000")),
        (h("8424000004"), 8, h("8424000004800000")),
        (h("0011223344556677"), 8, h("0011223344556677") + h("8000000000000000")),
        (h("00112233445566"), 8, h("0011223344556680")),
        (bytes(15), 16, bytes(15) + b"\x80"),
        (bytes(16), 16, bytes(16) + b"\x80" + bytes(15)),
    ],
)
def test_iso9797_m2(data: bytes, size: int, padded: bytes) -> None:
    assert sym.pad_iso9797_m2(data, size) == padded
    assert sym.unpad_iso9797_m2(padded, size) == data


@pytest.mark.parametrize(
    "bad",
    [
        h("0011223344556677"),  # no 80 marker at all
        h("1122334455668001"),  # non-zero after the marker
        h("8000000000000000") + bytes(8),  # marker not in the last block
        h("11223380"),  # not whole blocks
        b"",
    ],
)
def test_iso9797_m2_strict_removal(bad: bytes) -> None:
    with pytest.raises(BadInputError):
        sym.unpad_iso9797_m2(bad, 8)


def test_xor_bytes() -> None:
    assert sym.xor_bytes(h("0F0F"), h("FF00")) == h("F00F")
    with pytest.raises(ValueError):
        sym.xor_bytes(b"a", b"ab")


def test_importing_sbcard_crypto_loads_no_crypto_library() -> None:
    code = (
        "import sys, sbcard.crypto, sbcard.crypto.sm2, sbcard.crypto.card_algos\n"
        "roots = ('cryptography', 'gmssl', 'ctypes')\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in roots]\n"
        "print(heavy)\n"
        "sys.exit(1 if heavy else 0)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
