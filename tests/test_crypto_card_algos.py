"""The card's algorithms (spec §5.4-5.7, §6.2).

Expected values are composed here from the ``cryptography`` primitives directly (not from
sbcard's wrappers), following the formulas in the spec, so a wrong formula, a swapped
factor order or a wrong key length in card_algos makes these tests fail.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, CipherAlgorithm, algorithms, modes

from sbcard.crypto import card_algos as ca
from sbcard.crypto.symmetric import Algorithm, UnsupportedAlgorithmError
from sbcard.errors import BadInputError

h = bytes.fromhex
DES, SM4, SSF33 = Algorithm.DES, Algorithm.SM4, Algorithm.SSF33

K8 = h("0123456789ABCDEF")
K16 = h("0123456789ABCDEFFEDCBA9876543210")
KSM4 = h("00112233445566778899AABBCCDDEEFF")
F = h("3635303130307378")  # city factor of 650100
R8 = h("1122334455667788")
X = h("A1A2A3A4A5A6A7A8")


# ---- reference primitives, straight from cryptography


def _ecb(algo: CipherAlgorithm, data: bytes) -> bytes:
    enc = Cipher(algo, modes.ECB()).encryptor()
    return enc.update(data) + enc.finalize()


def _cbc(algo: CipherAlgorithm, data: bytes, iv: bytes) -> bytes:
    enc = Cipher(algo, modes.CBC(iv)).encryptor()
    return enc.update(data) + enc.finalize()


def des1(key: bytes, data: bytes) -> bytes:
    assert len(key) == 8
    return _ecb(TripleDES(key * 3), data)


def des3(key: bytes, data: bytes) -> bytes:
    assert len(key) == 16
    return _ecb(TripleDES(key + key[:8]), data)


def sm4(key: bytes, data: bytes) -> bytes:
    return _ecb(algorithms.SM4(key), data)


def inv(data: bytes) -> bytes:
    return bytes(255 - b for b in data)


def xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


# --------------------------------------------------------------------------- factors


def test_factor_examples_from_spec() -> None:
    assert ca.province_factor("650100") == h("3635303030307368")
    assert ca.city_factor("650100") == h("3635303130307378")
    assert ca.province_factor("650100") == b"650000sh"


def test_zhejiang_city_factor() -> None:
    assert ca.city_factor("330185") == b"330100sx"
    assert ca.city_factor("330100") == h("3333303130307378")
    assert ca.city_factor("320585") == b"320585sx"  # Jiangsu: the normal rule


@pytest.mark.parametrize("bad", ["65010", "6501000", "65010a", "６５０１００", " 65010", ""])
def test_region_validation(bad: str) -> None:
    with pytest.raises(BadInputError, match="6 ASCII digits"):
        ca.city_factor(bad)
    with pytest.raises(BadInputError, match="6 ASCII digits"):
        ca.province_factor(bad)


def test_card_factor_from_full_atr_and_historical_bytes() -> None:
    atr = h("3B6D000000814A444686605199000001AC")  # SI_3rdCard docs/加密机方式指令流.txt
    assert ca.card_factor(atr) == h("86605199000001AC")
    assert ca.card_factor(atr[4:]) == h("86605199000001AC")  # 13 historical bytes
    with pytest.raises(BadInputError, match="only 3 historical"):
        ca.card_factor(h("3B63000000814A"))
    with pytest.raises(BadInputError):
        ca.card_factor(bytes(34))


def test_card_factor_skips_tck_of_class_b_and_contactless_atrs() -> None:
    """Part 9 §7.3.3: historical bytes 6-13, never the ATR's last 8 bytes (which end in TCK)."""
    hist = h("0081544C9686845101C0666779")   # sscard-spec §1.2, a 3.0 contactless card [S4]
    # Class B / clock stop (part 2 §8.3.3): TD1=80, TD2=1F, TA3, then TCK.
    class_b = h("3BED000080 1F42") + hist
    class_b += bytes([_xor(class_b[1:])])
    # PC/SC part 3 synthesised ATR of an ISO 14443-4 card: 3B 8D 80 01 ‖ hist ‖ TCK.
    contactless = h("3B8D8001") + hist
    contactless += bytes([_xor(contactless[1:])])
    for atr in (class_b, contactless):
        assert ca.card_factor(atr) == h("86845101C0666779")
        assert atr[-8:] != h("86845101C0666779")


def _xor(data: bytes) -> int:
    out = 0
    for b in data:
        out ^= b
    return out


# --------------------------------------------------------------------------- diversification


def test_diversify_des_single() -> None:
    assert ca.diversify(DES, K8, F) == des1(K8, F)


def test_diversify_3des_double() -> None:
    out = ca.diversify(DES, K16, F)
    assert out == des3(K16, F) + des3(K16, inv(F))
    assert len(out) == 16


def test_diversify_sm4() -> None:
    assert ca.diversify(SM4, KSM4, F) == sm4(KSM4, F + inv(F))


def test_diversify_levels_applies_last_factor_first() -> None:
    card, city, prov = h("86605199000001AC"), ca.city_factor("650100"), ca.province_factor("650100")
    for algo, root in ((DES, K16), (SM4, KSM4)):
        expected = ca.diversify(
            algo, ca.diversify(algo, ca.diversify(algo, root, prov), city), card
        )
        got = ca.diversify_levels(algo, root, [card, city, prov])
        assert got == expected
        assert got != ca.diversify_levels(algo, root, [prov, city, card])
    with pytest.raises(BadInputError, match="at least one"):
        ca.diversify_levels(SM4, KSM4, [])


def test_diversify_input_checks() -> None:
    with pytest.raises(BadInputError, match="diversification factor must be 8 bytes, got 7"):
        ca.diversify(DES, K16, F[:7])
    with pytest.raises(BadInputError, match="SM4 key must be 16 bytes, got 8"):
        ca.diversify(SM4, K8, F)
    with pytest.raises(BadInputError, match="DES key must be 8 or 16 bytes, got 24"):
        ca.diversify(DES, K16 + K8, F)


# --------------------------------------------------------------------------- session / auth


def test_session_keys() -> None:
    assert ca.session_key(DES, K8, R8) == des1(K8, R8)
    assert ca.session_key(DES, K16, R8) == des3(K16, R8)
    assert ca.session_key(SM4, KSM4, R8) == sm4(KSM4, R8 + bytes(8))
    assert ca.session_key(SM4, KSM4, R8 + R8) == sm4(KSM4, R8 + R8)
    # a 4-byte challenge is padded with zeros as well
    assert ca.session_key(DES, K16, R8[:4]) == des3(K16, R8[:4] + bytes(4))
    with pytest.raises(BadInputError, match="DES challenge must be 4 or 8 bytes, got 16"):
        ca.session_key(DES, K16, R8 + R8)


def test_auth_data() -> None:
    sk_des = ca.session_key(DES, K16, R8)
    assert len(sk_des) == 8
    assert ca.auth_data(DES, sk_des, X) == des1(sk_des, X)
    sk_sm4 = ca.session_key(SM4, KSM4, R8)
    t = sm4(sk_sm4, X + bytes(8))
    assert ca.auth_data(SM4, sk_sm4, X) == xor(t[:8], t[8:])
    with pytest.raises(BadInputError, match="DES session key must be 8 bytes, got 16"):
        ca.auth_data(DES, K16, X)
    with pytest.raises(BadInputError, match="authentication input X must be 8 bytes"):
        ca.auth_data(SM4, sk_sm4, X + X)


def test_sm4_psam_flow_from_spec() -> None:
    # §5.5 worked sequence, SM4 2-level PSAM: BFDE 48 12 20 ATR8‖City8‖R8‖00×8, then
    # 80FA over R8‖00×8 gives T, A = T[0:8]^T[8:16]; the card gets A‖R8.
    root = h("F0E1D2C3B4A5968778695A4B3C2D1E0F")
    atr8, city = h("86605199000001AC"), ca.city_factor("510100")
    city_key = sm4(root, city + inv(city))
    card_key = sm4(city_key, atr8 + inv(atr8))
    t = sm4(sm4(card_key, R8 + bytes(8)), R8 + bytes(8))
    expected = xor(t[:8], t[8:])
    assert ca.diversify_levels(SM4, root, [atr8, city]) == card_key
    assert ca.external_auth_data(SM4, card_key, R8, R8) == expected


# --------------------------------------------------------------------------- MAC


def test_mac_des_unblock_command() -> None:
    sk = ca.session_key(DES, K16, R8)
    data = h("8424000004")
    expected = _cbc(TripleDES(sk * 3), data + h("800000"), bytes(8))[:4]
    assert ca.mac(DES, sk, data) == expected


def test_mac_des_aligned_input_gets_full_padding_block() -> None:
    sk = h("1F2E3D4C5B6A7988")
    data = h("842400010C") + h("AABBCC")  # exactly 8 bytes
    padded = data + h("8000000000000000")
    assert ca.mac(DES, sk, data) == _cbc(TripleDES(sk * 3), padded, bytes(8))[-8:][:4]
    # a MAC over the unpadded 8 bytes would differ
    assert ca.mac(DES, sk, data) != _cbc(TripleDES(sk * 3), data, bytes(8))[:4]


def test_mac_sm4_xor_of_quarters_and_iv() -> None:
    sk = ca.session_key(SM4, KSM4, R8)
    data = h("845E010014") + bytes(range(16))
    padded = data + h("80") + bytes(10)
    last = _cbc(algorithms.SM4(sk), padded, bytes(16))[-16:]
    quarters = xor(xor(last[0:4], last[4:8]), xor(last[8:12], last[12:16]))
    assert ca.mac(SM4, sk, data) == quarters
    iv = ca.pad_challenge(SM4, R8)
    assert iv == R8 + bytes(8)
    last_iv = _cbc(algorithms.SM4(sk), padded, iv)[-16:]
    assert ca.mac(SM4, sk, data, iv=iv) == xor(
        xor(last_iv[0:4], last_iv[4:8]), xor(last_iv[8:12], last_iv[12:16])
    )
    with pytest.raises(BadInputError, match="MAC IV must be 16 bytes, got 8"):
        ca.mac(SM4, sk, data, iv=R8)


# --------------------------------------------------------------------------- field encryption


def test_encrypt_pin_block_des() -> None:
    sk = ca.session_key(DES, K16, R8)
    enc = ca.encrypt_field(DES, sk, h("123456"))
    assert enc == des1(sk, h("0312345680000000"))  # spec §5.7 example layout
    assert ca.decrypt_field(DES, sk, enc) == h("123456")


def test_encrypt_pin_block_sm4() -> None:
    sk = ca.session_key(SM4, KSM4, R8)
    enc = ca.encrypt_field(SM4, sk, h("123456"))
    assert enc == sm4(sk, h("03123456") + h("80") + bytes(11))
    assert len(enc) == 16  # the APDU is 84 24 00 01 14 enc(16) MAC(4)
    assert ca.decrypt_field(SM4, sk, enc) == h("123456")


def test_encrypt_field_aligned_rule() -> None:
    sk = h("1F2E3D4C5B6A7988")
    data = h("11223344556677")  # LD‖data is exactly one block
    assert ca.encrypt_field(DES, sk, data) == des1(sk, h("07") + data)
    always = ca.encrypt_field(DES, sk, data, pad_when_aligned=True)
    assert always == des1(sk, h("07") + data + h("8000000000000000"))
    assert ca.decrypt_field(DES, sk, always) == data
    assert ca.decrypt_field(DES, sk, ca.encrypt_field(DES, sk, data)) == data


def test_decrypt_field_rejects_garbage() -> None:
    sk = h("1F2E3D4C5B6A7988")
    with pytest.raises(BadInputError, match="malformed"):
        ca.decrypt_field(DES, sk, des1(sk, h("0912345680000000")))  # LD too long
    with pytest.raises(BadInputError, match="malformed"):
        ca.decrypt_field(DES, sk, des1(sk, h("0312345681000000")))  # bad padding


# --------------------------------------------------------------------------- PKI application


def test_pki_pin_key_and_proof() -> None:
    digest = hashes.Hash(hashes.SM3())
    digest.update(h("123456"))
    k = digest.finalize()[:16]
    assert k == h("3DE741F445DD357BEA4E6C3FE6437036")
    assert ca.pki_pin_key(h("123456")) == k
    assert ca.pki_pin_proof(h("123456"), R8) == sm4(k, R8 + bytes(8))
    assert ca.pki_pin_proof(h("123456"), R8 + X) == sm4(k, R8 + X)
    assert ca.pki_pin_proof(h("12345678"), R8) != ca.pki_pin_proof(h("123456"), R8)
    with pytest.raises(BadInputError, match="PKI challenge must be 8 or 16 bytes, got 4"):
        ca.pki_pin_proof(h("123456"), R8[:4])


# --------------------------------------------------------------------------- SSF33


@pytest.mark.parametrize(
    "call",
    [
        lambda: ca.diversify(SSF33, bytes(16), F),
        lambda: ca.session_key(SSF33, bytes(16), R8),
        lambda: ca.auth_data(SSF33, bytes(16), X),
        lambda: ca.mac(SSF33, bytes(16), b"\x84"),
        lambda: ca.encrypt_field(SSF33, bytes(16), b"\x12"),
    ],
)
def test_ssf33_refused(call: Callable[[], object]) -> None:
    with pytest.raises(UnsupportedAlgorithmError, match="SSF33 is not supported"):
        call()
