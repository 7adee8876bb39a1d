"""``sbcard.ops.crypto_calc``: the by-hand calculations behind ``sbcard crypto``.

Known answers are published vectors (GB/T 32907 SM4, the classic DES "Now is t") or are
computed with ``cryptography`` from the spec's formulas, never with the code under test.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from sbcard.cli import cmd_crypto
from sbcard.crypto import sm2
from sbcard.crypto.symmetric import Algorithm
from sbcard.errors import BadInputError
from sbcard.ops.crypto_calc import (
    CIPHERS,
    block_cipher,
    card_mac,
    encode_keypair,
    external_auth,
    signature_format,
)

h = bytes.fromhex
SM4_KEY = h("0123456789ABCDEFFEDCBA9876543210")     # GB/T 32907 example: key = plaintext
SM4_CT = h("681EDF34D206965E86B3E94F536E4246")


def _sm4(key: bytes, data: bytes, mode: modes.ECB | modes.CBC) -> bytes:
    enc = Cipher(algorithms.SM4(key), mode).encryptor()
    return enc.update(data) + enc.finalize()


def test_sm4_and_des_known_answers() -> None:
    assert block_cipher("sm4", encrypt=True, key=SM4_KEY, data=SM4_KEY) == SM4_CT
    assert block_cipher("sm4", encrypt=False, key=SM4_KEY, data=SM4_CT) == SM4_KEY
    des = block_cipher("des", encrypt=True, key=h("0123456789ABCDEF"),
                       data=b"Now is t")
    assert des == h("3FA40E8A984D4815")


def test_cbc_with_padding_round_trip() -> None:
    iv = bytes(range(16))
    ct = block_cipher("sm4", encrypt=True, key=SM4_KEY, data=b"abc", mode="CBC", iv=iv,
                      pad=True)
    assert ct == _sm4(SM4_KEY, b"abc\x80" + bytes(12), modes.CBC(iv))
    assert block_cipher("sm4", encrypt=False, key=SM4_KEY, data=ct, mode="cbc", iv=iv,
                        pad=True) == b"abc"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "sm4", "key": bytes(2), "data": bytes(16)}, "SM4 key must be 16 bytes, got 2"),
        ({"name": "des", "key": bytes(10), "data": bytes(8)}, "8 or 16 or 24 bytes"),
        ({"name": "sm4", "key": SM4_KEY, "data": bytes(15)}, "add --pad iso9797-m2"),
        ({"name": "des", "key": bytes(16), "data": bytes(8), "mode": "cbc", "iv": bytes(4)},
         "DES-CBC IV must be 8 bytes, got 4 bytes"),
    ],
)
def test_cipher_refusals(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(BadInputError, match=message):
        block_cipher(encrypt=True, **kwargs)  # type: ignore[arg-type]


def test_decrypt_refusals() -> None:
    with pytest.raises(BadInputError, match="not a multiple of 16"):
        block_cipher("sm4", encrypt=False, key=SM4_KEY, data=bytes(17))
    with pytest.raises(BadInputError, match="try --pad none"):
        block_cipher("sm4", encrypt=False, key=SM4_KEY, data=SM4_CT, pad=True)


def test_des_mac_is_single_des_cbc_first_four_bytes() -> None:
    key, data = h("1122334455667788"), h("04D6820008" + "11223344")
    padded = data + b"\x80" + bytes(15 - len(data))
    enc = Cipher(TripleDES(key * 3), modes.CBC(bytes(8))).encryptor()
    expected = (enc.update(padded) + enc.finalize())[-8:][:4]
    result = card_mac(Algorithm.DES, key, data)
    assert result.mac == expected and result.session_key == key and result.challenge is None
    assert result.iv == bytes(8)


def test_sm4_mac_with_derived_session_key() -> None:
    key, challenge = h("00112233445566778899AABBCCDDEEFF"), h("8A1F03C4")
    data = h("04DC010C0C" + "1122334455667788")
    # session key (spec §5.5): SM4_K(challenge right-padded with 00 to one block)
    session = _sm4(key, challenge + bytes(12), modes.ECB())
    last = _sm4(session, data + b"\x80" + bytes(2), modes.CBC(bytes(16)))[-16:]
    expected = bytes(a ^ b ^ c ^ d for a, b, c, d in
                     zip(last[0:4], last[4:8], last[8:12], last[12:16], strict=True))
    result = card_mac(Algorithm.SM4, key, data, challenge=challenge)
    assert result.session_key == session and result.mac == expected
    assert result.challenge == challenge


def test_external_auth_apdu() -> None:
    key, challenge, x = (h("00112233445566778899AABBCCDDEEFF"), h("1122334455667788"),
                         h("A1A2A3A4A5A6A7A8"))
    session = _sm4(key, challenge + bytes(8), modes.ECB())
    t = _sm4(session, x + bytes(8), modes.ECB())
    a = bytes(p ^ q for p, q in zip(t[:8], t[8:], strict=True))
    result = external_auth(Algorithm.SM4, key, challenge, x, key_id=0x0A, key_version=0x01)
    assert result.session_key == session and result.auth_data == a
    assert result.apdu_data == a + x
    assert result.apdu is not None and result.apdu[:5] == h("008200 0A 11".replace(" ", ""))
    assert result.apdu[5:] == a + x + b"\x01"
    assert external_auth(Algorithm.SM4, key, challenge, x).apdu is None


def test_signature_format() -> None:
    assert signature_format(bytes(64), "auto") == "raw"
    assert signature_format(b"\x30\x44" + bytes(68), "AUTO") == "der"
    assert signature_format(bytes(10), "der") == "der"
    with pytest.raises(BadInputError, match="neither raw"):
        signature_format(bytes(10), "auto")


def test_cli_help_table_matches_the_library() -> None:
    """The CLI keeps block sizes for --help (no crypto import at startup); one truth."""
    for name, spec in CIPHERS.items():
        assert cmd_crypto._CIPHER_KEY_SIZES[name] == (spec.block, spec.title, spec.key_sizes)


@pytest.mark.parametrize("fmt", ["pem", "DER", "hex"])
def test_encode_keypair_reloads(fmt: str) -> None:
    key = sm2.PrivateKey.generate()
    private, public = encode_keypair(key, fmt)
    if fmt == "hex":   # hex text, as the CLI reads it back (sbcard.ops.inputs.bytes_or_file)
        assert private == (key.to_hex() + "\n").encode() and public.startswith(b"04")
        private, public = bytes.fromhex(private.decode()), bytes.fromhex(public.decode())
    assert sm2.load_private_key(private).to_hex() == key.to_hex()
    assert sm2.load_public_key(public).to_hex() == key.public_key.to_hex()


def test_encode_keypair_refuses_unknown_format() -> None:
    with pytest.raises(BadInputError, match="pem, der or hex"):
        encode_keypair(sm2.PrivateKey.generate(), "jwk")
