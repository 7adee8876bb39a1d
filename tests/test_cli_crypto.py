"""``sbcard crypto``: known answers, one-line errors, SM2 round trips and openssl interop.

Commands run through ``sbcard.cli.main.main`` (with ``crypto`` registered here, whether or
not main.py already registers it) so exit codes and error lines are what a user sees.
Expected values come from published vectors, from ``cryptography`` directly or from
composing ``card_algos`` calls by hand, never from the code under test.
"""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
from pathlib import Path
from typing import NamedTuple

import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from sbcard.cli import main as cli_main
from sbcard.crypto import card_algos, sm2
from sbcard.crypto.symmetric import Algorithm

h = bytes.fromhex

SM3_ABC = "66C7F0F462EEEDD9D1F2D46BDC10E4E24167C4875CF2F7A2297DA02B8F4BA8E0"
SM3_EMPTY = "1AB21D8355CFA17F8E61194831E81A8F22BEC8C728FEFB747ED035EB5082AA2B"
SM4_KEY = "0123456789ABCDEFFEDCBA9876543210"  # GB/T 32907 example: key = plaintext
SM4_CT = "681EDF34D206965E86B3E94F536E4246"
KSM4 = "00112233445566778899AABBCCDDEEFF"
K16 = "0123456789ABCDEFFEDCBA9876543210"
ATR = "3B6D0000008154484486845199C0666779"  # 13 historical bytes (T0=6D)
REGION = "650100"


class Result(NamedTuple):
    code: int
    out: str
    err: str


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    monkeypatch.setitem(cli_main.COMMANDS, "crypto", "sbcard.cli.cmd_crypto:crypto")

    def _run(*args: object) -> Result:
        with pytest.raises(SystemExit) as exc:
            cli_main.main(["crypto", *map(str, args)])
        captured = capsys.readouterr()
        return Result(exc.value.code, captured.out, captured.err)

    return _run


def ok(result: Result) -> str:
    assert result.code == 0, result.err
    return result.out.strip()


def one_line_error(result: Result, code: int, message: str) -> None:
    assert result.code == code, (result.out, result.err)
    assert "Traceback" not in result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sbcard: error: "), result.err
    assert message in lines[0], lines[0]


# --------------------------------------------------------------------------- SM3 / SM4 / DES


def test_sm3_known_answer_every_input_form(run, tmp_path: Path) -> None:
    (tmp_path / "abc").write_bytes(b"abc")
    assert ok(run("sm3", "616263")) == SM3_ABC
    assert ok(run("sm3", "61", "62 63")) == SM3_ABC
    assert ok(run("sm3", "--text", "abc")) == SM3_ABC
    assert ok(run("sm3", "--in", tmp_path / "abc")) == SM3_ABC
    assert ok(run("sm3", "")) == SM3_EMPTY
    data = json.loads(ok(run("sm3", "--text", "abc", "--json")))
    assert data == {"algorithm": "SM3", "length": 3, "digest": SM3_ABC}


def test_sm3_reads_stdin(run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"abc")))
    assert ok(run("sm3", "--in", "-")) == SM3_ABC


def test_sm4_gbt32907_example(run) -> None:
    assert ok(run("sm4", "enc", "--key", SM4_KEY, SM4_KEY)) == SM4_CT
    assert ok(run("sm4", "enc", "--key", SM4_KEY.lower(), "--mode", "ecb", SM4_KEY)) == SM4_CT
    assert ok(run("sm4", "dec", "--key", SM4_KEY, SM4_CT)) == SM4_KEY


def test_sm4_cbc_and_padding_match_cryptography(run, tmp_path: Path) -> None:
    iv = bytes(range(16))
    plain = b"social security card"  # 20 bytes: needs padding
    padded = plain + b"\x80" + bytes(11)
    enc = Cipher(algorithms.SM4(h(KSM4)), modes.CBC(iv)).encryptor()
    expected = enc.update(padded) + enc.finalize()
    (tmp_path / "plain").write_bytes(plain)
    args = ("--key", KSM4, "--mode", "cbc", "--iv", iv.hex(), "--pad", "iso9797-m2")
    assert ok(run("sm4", "enc", *args, "--in", tmp_path / "plain")) == expected.hex().upper()
    ok(run("sm4", "enc", *args, "--in", tmp_path / "plain", "--out", tmp_path / "ct"))
    assert (tmp_path / "ct").read_bytes() == expected
    ok(run("sm4", "dec", *args, "--in", tmp_path / "ct", "--out", tmp_path / "back"))
    assert (tmp_path / "back").read_bytes() == plain
    # without --pad the decrypted padding is left in place
    assert ok(run("sm4", "dec", *args[:-2], expected.hex())) == padded.hex().upper()
    # aligned data still gains a whole 80 00… block
    assert len(h(ok(run("sm4", "enc", "--key", KSM4, "--pad", "iso9797-m2", "00" * 16)))) == 32


def _tdes(key: bytes, data: bytes) -> bytes:
    enc = Cipher(TripleDES(key), modes.ECB()).encryptor()
    return enc.update(data) + enc.finalize()


def test_des_key_lengths(run) -> None:
    # FIPS 46 worked example (single DES)
    assert ok(run("des", "enc", "--key", "133457799BBCDFF1", "0123456789ABCDEF")) == (
        "85E813540F0AB405"
    )
    data = h("1122334455667788A1A2A3A4A5A6A7A8")
    k16, k24 = h(K16), h(K16 + "89ABCDEF01234567")
    ede2 = _tdes(k16 + k16[:8], data).hex().upper()
    assert ok(run("des", "enc", "--key", K16, data.hex())) == ede2
    assert ok(run("des", "enc", "--key", k24.hex(), data.hex())) == _tdes(k24, data).hex().upper()
    # EDE2 with K1 = K2 is single DES
    single = ok(run("des", "enc", "--key", "133457799BBCDFF1", "0123456789ABCDEF"))
    assert ok(run("des", "enc", "--key", "133457799BBCDFF1" * 2, "0123456789ABCDEF")) == single
    ct = ok(run("des", "enc", "--key", K16, "--mode", "cbc", "--iv", "0102030405060708",
                data.hex()))
    assert ok(run("des", "dec", "--key", K16, "--mode", "cbc", "--iv", "0102030405060708",
                  ct)) == data.hex().upper()


# --------------------------------------------------------------------------- card algorithms


def test_diversify_equals_card_algos(run) -> None:
    root, atr = h(KSM4), h(ATR)
    city = card_algos.city_factor(REGION)
    card = card_algos.card_factor(atr)
    city_key = card_algos.diversify(Algorithm.SM4, root, city)
    card_key = card_algos.diversify(Algorithm.SM4, city_key, card)
    assert card_key == card_algos.diversify_levels(Algorithm.SM4, root, [card, city])

    args = ("diversify", "--alg", "sm4", "--root", KSM4, "--region", REGION, "--atr", ATR)
    data = json.loads(ok(run(*args, "--json")))
    assert [s["level"] for s in data["steps"]] == ["city", "card"]
    assert data["steps"][0]["factor"] == city.hex().upper() == "3635303130307378"
    assert data["steps"][0]["factor_ascii"] == "650100sx"
    assert data["steps"][0]["key"] == city_key.hex().upper()
    assert data["steps"][1]["factor"] == "86845199C0666779"
    assert data["key"] == card_key.hex().upper() and data["complete"] is True
    text = ok(run(*args))
    assert city_key.hex().upper() in text and card_key.hex().upper() in text
    assert "卡片密钥 card key" in text


def test_diversify_three_levels_des_and_explicit_factors(run) -> None:
    root = h(K16)
    factors = [card_algos.card_factor(h(ATR)), card_algos.city_factor("330106"),
               card_algos.province_factor("330106")]
    expected = card_algos.diversify_levels(Algorithm.DES, root, factors)
    data = json.loads(ok(run("diversify", "--alg", "des", "--root", K16, "--region", "330106",
                             "--atr", ATR, "--levels", "3", "--json")))
    assert [s["factor_ascii"] for s in data["steps"][:2]] == ["330000sh", "330100sx"]
    assert data["key"] == expected.hex().upper()
    explicit = ["--factor", factors[0].hex(), "--factor", factors[1].hex(),
                "--factor", factors[2].hex()]
    data = json.loads(ok(run("diversify", "--alg", "des", "--root", K16, *explicit, "--json")))
    assert data["key"] == expected.hex().upper()
    assert [s["level"] for s in data["steps"]] == ["factor 3", "factor 2", "factor 1"]


def test_diversify_without_atr_stops_above_card(run) -> None:
    data = json.loads(ok(run("diversify", "--alg", "sm4", "--root", KSM4, "--region", REGION,
                             "--json")))
    expected = card_algos.diversify(Algorithm.SM4, h(KSM4), card_algos.city_factor(REGION))
    assert data["complete"] is False and data["key"] == expected.hex().upper()
    assert "not the card key" in data["note"]


def test_auth_equals_card_algos(run) -> None:
    key, challenge, x = h(KSM4), h("1122334455667788"), h("A1A2A3A4A5A6A7A8")
    session = card_algos.session_key(Algorithm.SM4, key, challenge)
    a = card_algos.auth_data(Algorithm.SM4, session, x)
    data = json.loads(ok(run("auth", "--alg", "sm4", "--key", KSM4, "--challenge",
                             challenge.hex(), "--original", x.hex(), "--key-id", "0A",
                             "--json")))
    assert data["session_key"] == session.hex().upper()
    assert data["auth_data"] == a.hex().upper()
    assert data["apdu_data"] == (a + x).hex().upper()
    assert data["apdu"] == "0082000A10" + (a + x).hex().upper()
    # DES, double-length key, 4-byte challenge
    session = card_algos.session_key(Algorithm.DES, h(K16), h("11223344"))
    a = card_algos.auth_data(Algorithm.DES, session, x)
    text = ok(run("auth", "--alg", "des", "--key", K16, "--challenge", "11223344",
                  "--original", x.hex()))
    assert (a + x).hex().upper() in text


def test_mac_equals_card_algos(run) -> None:
    data = h("04D682000A11223344")
    expected = card_algos.mac(Algorithm.DES, h("1122334455667788"), data)
    assert ok(run("mac", "--alg", "des", "--key", "1122334455667788", data.hex())) == (
        expected.hex().upper()
    )
    challenge = h("8A1F03C4")
    session = card_algos.session_key(Algorithm.SM4, h(KSM4), challenge)
    iv = card_algos.pad_challenge(Algorithm.SM4, h("0102030405060708"))
    expected = card_algos.mac(Algorithm.SM4, session, data, iv)
    out = json.loads(ok(run("mac", "--alg", "sm4", "--key", KSM4, "--derive-from-challenge",
                            challenge.hex(), "--iv", iv.hex(), data.hex(), "--json")))
    assert out["session_key"] == session.hex().upper()
    assert out["mac"] == expected.hex().upper()


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("sm3", "ABC"), "odd number of hex digits"),
        (("sm3", "6G"), "'G' at position 2 is not a hex digit"),
        (("sm4", "enc", "--key", "0011", SM4_KEY), "SM4 key must be 16 bytes"),
        (("des", "enc", "--key", "00" * 10, "00" * 8), "DES key must be 8 or 16 or 24 bytes"),
        (("sm4", "enc", "--key", SM4_KEY, "00" * 15), "add --pad iso9797-m2"),
        (("sm4", "dec", "--key", SM4_KEY, "00" * 17), "not a multiple of 16"),
        (("des", "enc", "--key", K16, "--mode", "cbc", "--iv", "00" * 4, "00" * 8),
         "IV must be 8 bytes"),
        (("sm4", "dec", "--key", KSM4, "--pad", "iso9797-m2", SM4_CT), "padding"),
        (("mac", "--alg", "sm4", "--key", K16[:16], "00"), "session key must be 16 bytes"),
        (("auth", "--alg", "des", "--key", K16, "--challenge", "11", "--original", "00" * 8),
         "challenge must be 4 or 8 bytes"),
        (("diversify", "--alg", "sm4", "--root", KSM4, "--region", "6501", "--atr", ATR),
         "region code must be 6 ASCII digits"),
        (("diversify", "--alg", "des", "--root", "00" * 24, "--factor", "00" * 8),
         "root key must be 8 or 16 bytes"),
        (("sm2", "sign", "--key", "missing-key.pem", "--text", "m"), "no such file"),
        (("sm2", "sign", "--key", "00" * 31, "--text", "m"), "32 bytes"),
        (("sm2", "verify", "--pub", "04" + "00" * 64, "--sig", "00" * 64, "--text", "m"),
         "not a point"),
    ],
)
def test_bad_input_is_one_line_exit_3(run, args: tuple[str, ...], message: str) -> None:
    one_line_error(run(*args), 3, message)


def test_unreadable_key_files(run, tmp_path: Path) -> None:
    one_line_error(run("sm2", "sign", "--key", tmp_path, "--text", "m"), 3, "is a directory")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN PRIVATE KEY-----\nnot base64!\n-----END PRIVATE KEY-----\n")
    one_line_error(run("sm2", "sign", "--key", garbage, "--text", "m"), 3, "base64")
    one_line_error(run("sm3", "--in", tmp_path / "nope"), 3, "no such file")


@pytest.mark.parametrize(
    "args",
    [
        ("sm3",),
        ("sm3", "00", "--text", "x"),
        ("sm4", "enc", "--key", SM4_KEY, "--iv", "00" * 16, SM4_KEY),
        ("diversify", "--alg", "sm4", "--root", KSM4, "--levels", "1", "--region", REGION),
        ("diversify", "--alg", "sm4", "--root", KSM4, "--factor", "00" * 8, "--region", REGION),
        ("sm4", "enc", "--key", SM4_KEY, "--pad", "pkcs7", SM4_KEY),
    ],
)
def test_usage_errors_exit_2(run, args: tuple[str, ...]) -> None:
    result = run(*args)
    assert result.code == 2 and "Traceback" not in result.err


# --------------------------------------------------------------------------- SM2


@pytest.fixture
def keypair(run, tmp_path: Path) -> tuple[Path, Path]:
    key, pub = tmp_path / "key.pem", tmp_path / "pub.pem"
    ok(run("sm2", "keygen", "--out-key", key, "--out-pub", pub))
    return key, pub


def test_keygen_files(run, keypair: tuple[Path, Path], tmp_path: Path) -> None:
    key, pub = keypair
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    private = sm2.load_private_key(key.read_bytes())
    assert sm2.load_public_key(pub.read_bytes()) == private.public_key
    assert key.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    # an existing private key is not clobbered; --force rewrites it with mode 0600
    one_line_error(run("sm2", "keygen", "--out-key", key), 8, "--force")
    assert sm2.load_private_key(key.read_bytes()) == private
    os.chmod(key, 0o644)
    ok(run("sm2", "keygen", "--out-key", key, "--out-pub", pub, "--force", "--format", "der"))
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert sm2.load_private_key(key.read_bytes()) != private
    # hex: scalar and 04‖X‖Y, usable as files and as strings
    printed = ok(run("sm2", "keygen", "--format", "hex")).split()
    assert len(printed) == 2 and len(h(printed[0])) == 32 and printed[1].startswith("04")
    khex, phex = tmp_path / "k.hex", tmp_path / "p.hex"
    ok(run("sm2", "keygen", "--format", "hex", "--out-key", khex, "--out-pub", phex))
    sig = ok(run("sm2", "sign", "--key", khex, "--text", "m"))
    ok(run("sm2", "verify", "--pub", phex.read_text().strip(), "--sig", sig, "--text", "m"))


@pytest.mark.parametrize("fmt", ["raw", "der"])
def test_sign_verify_round_trip(run, keypair: tuple[Path, Path], tmp_path: Path,
                                fmt: str) -> None:
    key, pub = keypair
    sig = ok(run("sm2", "sign", "--key", key, "--format", fmt, "6D657373616765"))
    if fmt == "raw":
        assert len(h(sig)) == 64
    else:
        assert sig.startswith("30")
    assert "签名有效" in ok(run("sm2", "verify", "--pub", pub, "--sig", sig, "--text", "message"))
    verdict = json.loads(ok(run("sm2", "verify", "--pub", pub, "--format", fmt, "--sig", sig,
                                "--text", "message", "--json")))
    assert verdict["valid"] is True and verdict["format"] == fmt
    # a different message, ID or key: exit 9, one line
    one_line_error(run("sm2", "verify", "--pub", pub, "--sig", sig, "--text", "messagE"), 9,
                   "does not verify")
    one_line_error(run("sm2", "verify", "--pub", pub, "--id", "ALICE", "--sig", sig,
                       "--text", "message"), 9, "does not verify")
    other = sm2.PrivateKey.generate().public_key.to_hex()
    one_line_error(run("sm2", "verify", "--pub", other, "--sig", sig, "--text", "message"), 9,
                   "does not verify")
    # signature from a file, written by --out
    ok(run("sm2", "sign", "--key", key, "--format", fmt, "--id", "ALICE", "--text", "m",
           "--out", tmp_path / "sig.bin"))
    ok(run("sm2", "verify", "--pub", pub, "--id", "ALICE", "--sig", tmp_path / "sig.bin",
           "--text", "m"))


def test_sign_json_digests(run, keypair: tuple[Path, Path]) -> None:
    key, _ = keypair
    private = sm2.load_private_key(key.read_bytes())
    out = json.loads(ok(run("sm2", "sign", "--key", key, "--id", "ALICE", "--text", "m",
                            "--json")))
    assert out["z"] == sm2.compute_z(private.public_key, b"ALICE").hex().upper()
    assert out["e"] == sm2.message_digest(private.public_key, b"m", b"ALICE").hex().upper()
    assert sm2.verify(private.public_key, b"m", h(out["signature"]), uid=b"ALICE")


def test_malformed_signatures(run, keypair: tuple[Path, Path]) -> None:
    _, pub = keypair
    one_line_error(run("sm2", "verify", "--pub", pub, "--sig", "00" * 63, "--text", "m"), 3,
                   "neither raw")
    one_line_error(run("sm2", "verify", "--pub", pub, "--format", "der", "--sig", "3003020101",
                       "--text", "m"), 3, "DER SM2 signature")
    one_line_error(run("sm2", "verify", "--pub", pub, "--format", "raw", "--sig", "00" * 70,
                       "--text", "m"), 3, "64 bytes")


@pytest.mark.parametrize("order", ["C1C3C2", "C1C2C3"])
def test_encrypt_decrypt_round_trip(run, keypair: tuple[Path, Path], order: str) -> None:
    key, pub = keypair
    ct = ok(run("sm2", "encrypt", "--pub", pub, "--order", order, "--text", "secret"))
    assert len(h(ct)) == 65 + 32 + 6
    assert ok(run("sm2", "decrypt", "--key", key, "--order", order, ct)) == b"secret".hex().upper()
    other = "C1C2C3" if order == "C1C3C2" else "C1C3C2"
    one_line_error(run("sm2", "decrypt", "--key", key, "--order", other, ct), 3, "C3")
    tampered = ct[:-2] + ("00" if ct[-2:] != "00" else "01")
    one_line_error(run("sm2", "decrypt", "--key", key, "--order", order, tampered), 3, "C3")


def test_encrypt_decrypt_der_files(run, keypair: tuple[Path, Path], tmp_path: Path) -> None:
    key, pub = keypair
    plain = tmp_path / "plain"
    plain.write_bytes(bytes(range(40)))
    ct, back = tmp_path / "ct.der", tmp_path / "back"
    ok(run("sm2", "encrypt", "--pub", pub, "--der", "--in", plain, "--out", ct))
    assert ct.read_bytes()[:1] == b"\x30"
    ok(run("sm2", "decrypt", "--key", key, "--der", "--in", ct, "--out", back))
    assert back.read_bytes() == plain.read_bytes()


# --------------------------------------------------------------------------- openssl interop




def _openssl(exe: str, *args: object) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([exe, *map(str, args)], capture_output=True, check=False)


@pytest.mark.parametrize("uid", [None, "ALICE123@YAHOO.COM"])
def test_openssl_signature_interop(run, openssl: str, keypair: tuple[Path, Path],
                                   tmp_path: Path, uid: str | None) -> None:
    key, pub = keypair
    msg = tmp_path / "msg.bin"
    msg.write_bytes(b"social security card \x00\xff")
    distid = f"distid:{uid or '1234567812345678'}"
    id_args = ("--id", uid) if uid else ()

    # sbcard signs (DER), openssl verifies
    ok(run("sm2", "sign", "--key", key, *id_args, "--format", "der", "--in", msg,
           "--out", tmp_path / "ours.der"))
    checked = _openssl(openssl, "dgst", "-sm3", "-verify", pub, "-sigopt", distid,
                       "-signature", tmp_path / "ours.der", msg)
    assert checked.returncode == 0 and b"Verified OK" in checked.stdout, checked.stderr
    wrong = _openssl(openssl, "dgst", "-sm3", "-verify", pub, "-sigopt", "distid:other",
                     "-signature", tmp_path / "ours.der", msg)
    assert wrong.returncode != 0

    # openssl signs with its own key, sbcard verifies with the public key openssl exports
    their_key, their_pub = tmp_path / "their.pem", tmp_path / "their_pub.pem"
    their_key.write_bytes(_openssl(openssl, "genpkey", "-algorithm", "SM2").stdout)
    their_pub.write_bytes(_openssl(openssl, "pkey", "-in", their_key, "-pubout").stdout)
    made = _openssl(openssl, "dgst", "-sm3", "-sign", their_key, "-sigopt", distid,
                    "-out", tmp_path / "theirs.der", msg)
    assert made.returncode == 0, made.stderr
    verdict = run("sm2", "verify", "--pub", their_pub, *id_args, "--format", "der",
                  "--sig", tmp_path / "theirs.der", "--in", msg)
    assert verdict.code == 0, verdict.err
    one_line_error(run("sm2", "verify", "--pub", their_pub, "--id", "other",
                       "--sig", tmp_path / "theirs.der", "--in", msg), 9, "does not verify")
    # and sbcard signs with openssl's key
    ok(run("sm2", "sign", "--key", their_key, *id_args, "--format", "der", "--in", msg,
           "--out", tmp_path / "ours2.der"))
    checked = _openssl(openssl, "dgst", "-sm3", "-verify", their_pub, "-sigopt", distid,
                       "-signature", tmp_path / "ours2.der", msg)
    assert checked.returncode == 0, checked.stderr


def test_openssl_encryption_interop(run, openssl: str, keypair: tuple[Path, Path],
                                    tmp_path: Path) -> None:
    key, pub = keypair
    plain = tmp_path / "plain"
    plain.write_bytes(b"0123456789abcdef")
    made = _openssl(openssl, "pkeyutl", "-encrypt", "-pubin", "-inkey", pub, "-in", plain,
                    "-out", tmp_path / "theirs.der")
    assert made.returncode == 0, made.stderr
    assert ok(run("sm2", "decrypt", "--key", key, "--der", "--in", tmp_path / "theirs.der")) == (
        plain.read_bytes().hex().upper()
    )
    ok(run("sm2", "encrypt", "--pub", pub, "--der", "--in", plain, "--out", tmp_path / "ours"))
    back = _openssl(openssl, "pkeyutl", "-decrypt", "-inkey", key, "-in", tmp_path / "ours")
    assert back.returncode == 0 and back.stdout == plain.read_bytes(), back.stderr
