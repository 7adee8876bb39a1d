"""SM2: standard vectors on both backends, cross-backend agreement, encodings, keys, and
interoperability with the ``openssl`` command line."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from sbcard.crypto import sm2
from sbcard.crypto.sm2 import CipherOrder, PrivateKey, PublicKey, SignatureEncoding
from sbcard.errors import BadInputError

h = bytes.fromhex
N = sm2.N

# GB/T 32918.5-2017 / GM/T 0003.5-2012 annex A (signature) and annex C (encryption), on
# the recommended curve; the same values are used by OpenSSL's test/sm2_internal_test.c
# (which also gives the DER form of the ciphertext below). Z_A and e are the
# intermediate values printed in annex A.
VEC_D = 0x3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8
VEC_PUB = h(
    "04"
    "09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020"
    "CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13"
)
VEC_K = 0x59276E27D506861A16680F3AD9C02DCCEF3CC1FA3CDBE4CE6D54B80DEAC1BC21
VEC_Z = h("B2E14C5C79C6DF5B85F4FE7ED8DB7A262B9DA7E07CCB0EA9F4747B8CCDA8A4F3")
VEC_E = h("F0B43E94BA45ACCAACE692ED534382EB17E6AB5A19CE7B31F4486FDFC0D28640")
VEC_SIG = h(
    "F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3"
    "B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA"
)
VEC_C1 = h(
    "04"
    "04EBFC718E8D1798620432268E77FEB6415E2EDE0E073C0F4F640ECD2E149A73"
    "E858F9D81E5430A57B36DAAB8F950A3C64E6EE6A63094D99283AFF767E124DF0"
)
VEC_C3 = h("59983C18F809E262923C53AEC295D30383B54E39D609D160AFCB1908D0BD8766")
VEC_C2 = h("21886CA989CA9C7D58087307CA93092D651EFA")
VEC_CT_DER = h(
    "307C"
    "022004EBFC718E8D1798620432268E77FEB6415E2EDE0E073C0F4F640ECD2E149A73"
    "022100E858F9D81E5430A57B36DAAB8F950A3C64E6EE6A63094D99283AFF767E124DF0"
    "042059983C18F809E262923C53AEC295D30383B54E39D609D160AFCB1908D0BD8766"
    "041321886CA989CA9C7D58087307CA93092D651EFA"
)
# The annex key as `openssl pkey` writes it (checked byte for byte against OpenSSL 3.0).
VEC_PKCS8_PEM = """-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqBHM9VAYItBG0wawIBAQQgOUUgj3shRLE/NuOK
xtOflYiTk2koYLUaQvuB7033xbihRANCAAQJ+d8xHlQhoVDdfRYeS8XGchefrRgz
/AdrsI/zVvNQIMzqSQziZ3WlLcbqcYzBqmAK7QX7814ISmYy9gctqa0T
-----END PRIVATE KEY-----
"""


def _backend_or_skip(name: str) -> sm2.Sm2Backend:
    try:
        return sm2.get_backend(name)
    except BadInputError as err:
        pytest.skip(str(err))


@pytest.fixture(params=["libcrypto", "gmssl"])
def backend(request: pytest.FixtureRequest) -> sm2.Sm2Backend:
    return _backend_or_skip(request.param)


@pytest.fixture(scope="module")
def vec_key() -> PrivateKey:
    return PrivateKey(VEC_D)


@pytest.fixture(scope="module")
def both() -> tuple[sm2.Sm2Backend, sm2.Sm2Backend]:
    return _backend_or_skip("libcrypto"), _backend_or_skip("gmssl")


# --------------------------------------------------------------------------- vectors


def test_public_key_and_z(vec_key: PrivateKey, backend: sm2.Sm2Backend) -> None:
    assert backend.public_point(VEC_D) == PublicKey.from_bytes(VEC_PUB).point
    assert vec_key.public_key.to_bytes() == VEC_PUB
    assert sm2.compute_z(vec_key.public_key) == VEC_Z
    assert sm2.compute_z(VEC_PUB[1:], b"1234567812345678") == VEC_Z
    assert sm2.compute_z(vec_key.public_key, b"1234567812345679") != VEC_Z
    assert sm2.message_digest(vec_key.public_key, b"message digest") == VEC_E


def test_sign_vector(vec_key: PrivateKey, backend: sm2.Sm2Backend) -> None:
    sig = sm2.sign(vec_key, b"message digest", k=VEC_K, backend=backend)
    assert sig == VEC_SIG
    assert sm2.sign_digest(vec_key, VEC_E, k=VEC_K, backend=backend) == VEC_SIG
    pub = vec_key.public_key
    assert sm2.verify(pub, b"message digest", VEC_SIG, backend=backend)
    assert sm2.verify_digest(pub, VEC_E, VEC_SIG, backend=backend)
    assert not sm2.verify(pub, b"message digesT", VEC_SIG, backend=backend)
    assert not sm2.verify(pub, b"message digest", VEC_SIG, uid=b"ALICE", backend=backend)
    bad = VEC_SIG[:-1] + bytes([VEC_SIG[-1] ^ 1])
    assert not sm2.verify(pub, b"message digest", bad, backend=backend)
    assert not sm2.verify_digest(pub, VEC_E, bad, backend=backend)


def test_encrypt_vector(vec_key: PrivateKey, backend: sm2.Sm2Backend) -> None:
    pt = b"encryption standard"
    ct = sm2.encrypt(vec_key.public_key, pt, k=VEC_K, backend=backend)
    assert ct == VEC_C1 + VEC_C3 + VEC_C2  # C1C3C2 is the default
    old = sm2.encrypt(vec_key.public_key, pt, k=VEC_K, order="C1C2C3", backend=backend)
    assert old == VEC_C1 + VEC_C2 + VEC_C3
    assert sm2.ciphertext_to_der(ct) == VEC_CT_DER
    assert sm2.ciphertext_to_der(old, CipherOrder.C1C2C3) == VEC_CT_DER
    assert sm2.decrypt(vec_key, ct, backend=backend) == pt
    assert sm2.decrypt(vec_key, old, order=CipherOrder.C1C2C3, backend=backend) == pt


# --------------------------------------------------------------------------- cross-backend


@pytest.mark.parametrize("uid", [sm2.DEFAULT_ID, b"ALICE123@YAHOO.COM", b"", bytes(range(256))])
def test_signatures_cross_backends(uid: bytes, both: tuple[sm2.Sm2Backend, sm2.Sm2Backend]) -> None:
    # libcrypto computes Z itself (distid); gmssl uses our compute_z: they must agree.
    key = PrivateKey.generate()
    msg = b"cross-check " + uid
    for signer, checker in (both, both[::-1]):
        sig = sm2.sign(key, msg, uid=uid, backend=signer)
        assert sm2.verify(key.public_key, msg, sig, uid=uid, backend=checker)
        assert not sm2.verify(key.public_key, msg + b"!", sig, uid=uid, backend=checker)


def test_fixed_k_identical_across_backends(both: tuple[sm2.Sm2Backend, sm2.Sm2Backend]) -> None:
    key = PrivateKey.generate()
    k = 0x1234567890ABCDEF1234567890ABCDEF1234567890ABCDEF1234567890ABCDEF
    sigs = {sm2.sign(key, b"m", uid=b"id", k=k, backend=b) for b in both}
    cts = {sm2.encrypt(key.public_key, b"plain", k=k, backend=b) for b in both}
    assert len(sigs) == 1 and len(cts) == 1


def test_decrypt_each_others_ciphertexts(both: tuple[sm2.Sm2Backend, sm2.Sm2Backend]) -> None:
    key = PrivateKey.generate()
    for enc, dec in (both, both[::-1]):
        for order in CipherOrder:
            pt = b"\x00" + enc.name.encode() + bytes(40)  # leading and trailing zero bytes
            ct = sm2.encrypt(key.public_key, pt, order=order, backend=enc)
            assert sm2.decrypt(key, ct, order=order, backend=dec) == pt


def test_nonces_are_fresh(backend: sm2.Sm2Backend) -> None:
    key = PrivateKey.generate()
    assert sm2.sign(key, b"m", backend=backend) != sm2.sign(key, b"m", backend=backend)
    ct1 = sm2.encrypt(key.public_key, b"m", backend=backend)
    assert ct1 != sm2.encrypt(key.public_key, b"m", backend=backend)


def test_public_key_starting_with_04_or_4(both: tuple[sm2.Sm2Backend, sm2.Sm2Backend]) -> None:
    # gmssl's constructor strips leading '0'/'4' hex digits; such keys must still work.
    while True:
        key = PrivateKey.generate()
        if key.public_key.to_hex(prefix=False)[0] in "04":
            break
    for signer, checker in (both, both[::-1]):
        sig = sm2.sign(key, b"m", backend=signer)
        assert sm2.verify(key.public_key.to_bytes(prefix=False), b"m", sig, backend=checker)


# --------------------------------------------------------------------------- C3 / tampering


@pytest.mark.parametrize("where", ["c3", "c2", "order"])
def test_tampering_is_detected(vec_key: PrivateKey, backend: sm2.Sm2Backend, where: str) -> None:
    ct = bytearray(VEC_C1 + VEC_C3 + VEC_C2)
    order = CipherOrder.C1C3C2
    if where == "c3":
        ct[65] ^= 0x01
    elif where == "c2":
        ct[-1] ^= 0x80
    else:
        order = CipherOrder.C1C2C3
    with pytest.raises(sm2.Sm2DecryptError, match="C3"):
        sm2.decrypt(vec_key, bytes(ct), order=order, backend=backend)


def test_wrong_key_fails_c3(backend: sm2.Sm2Backend) -> None:
    ct = VEC_C1 + VEC_C3 + VEC_C2
    with pytest.raises(sm2.Sm2DecryptError):
        sm2.decrypt(PrivateKey(VEC_D + 1), ct, backend=backend)


def test_malformed_ciphertexts() -> None:
    key = PrivateKey(VEC_D)
    off_curve = bytearray(VEC_C1 + VEC_C3 + VEC_C2)
    off_curve[64] ^= 1
    with pytest.raises(BadInputError, match="not a point"):
        sm2.decrypt(key, bytes(off_curve))
    with pytest.raises(BadInputError, match="too short"):
        sm2.decrypt(key, VEC_C1 + VEC_C3)
    with pytest.raises(BadInputError, match="empty"):
        sm2.encrypt(key.public_key, b"")
    with pytest.raises(BadInputError, match="ciphertext order"):
        sm2.decrypt(key, VEC_C1 + VEC_C3 + VEC_C2, order="C3C2C1")


def test_c1_without_prefix(vec_key: PrivateKey) -> None:
    ct = sm2.encrypt(vec_key.public_key, b"encryption standard", k=VEC_K, c1_prefix=False)
    assert ct == VEC_C1[1:] + VEC_C3 + VEC_C2  # the card's 804E envelope layout
    assert sm2.decrypt(vec_key, ct) == b"encryption standard"
    der = sm2.ciphertext_to_der(ct)
    assert sm2.ciphertext_from_der(der, c1_prefix=False) == ct
    assert sm2.ciphertext_from_der(der, "C1C2C3") == VEC_C1 + VEC_C2 + VEC_C3


# --------------------------------------------------------------------------- signature encodings


def _raw(r: int, s: int) -> bytes:
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


@pytest.mark.parametrize(
    ("r", "s", "der_hex"),
    [
        # high bit set: a 00 byte is prepended
        (0x80 << 248, 1, "3026022100" + "80" + "00" * 31 + "020101"),
        # leading zero bytes of the raw form disappear in DER
        (0x7F, 0x7F << 232, "3023" + "02017F" + "021E" + "7F" + "00" * 29),
        (1, N - 1, "3026020101022100" + f"{N - 1:064X}"),
    ],
)
def test_signature_der_raw_edges(r: int, s: int, der_hex: str) -> None:
    raw = _raw(r, s)
    der = sm2.signature_to_der(raw)
    assert der == h(der_hex)
    assert sm2.signature_from_der(der) == raw
    assert len(sm2.signature_from_der(der)) == 64


@pytest.mark.parametrize(
    ("der_hex", "message"),
    [
        ("300702020001020101", "not DER"),                  # superfluous leading zero
        ("308106020101020101", "not DER"),                  # non-minimal length
        ("3006020180020101", "negative"),
        ("3006020101020101" + "00", "trailing"),
        ("30060201010201", "Insufficient data"),            # truncated
        ("3080020101020101" + "0000", "indefinite"),
        ("31060201010201 01", "tag should have been 16, but 17"),
        ("3003020101", 'Field "s" is missing'),
        ("3006020100020101", r"\[1, n-1\]"),
    ],
)
def test_signature_der_strictness(der_hex: str, message: str) -> None:
    with pytest.raises(BadInputError, match=message):
        sm2.signature_from_der(h(der_hex))


def test_signature_raw_bounds() -> None:
    with pytest.raises(BadInputError, match="64 bytes"):
        sm2.signature_to_der(bytes(63))
    with pytest.raises(BadInputError, match=r"\[1, n-1\]"):
        sm2.signature_to_der(_raw(N, 1))
    with pytest.raises(BadInputError, match=r"\[1, n-1\]"):
        sm2.signature_to_der(_raw(5, 0))


def test_der_signatures_sign_and_verify(vec_key: PrivateKey) -> None:
    der = sm2.sign(vec_key, b"message digest", k=VEC_K, encoding=SignatureEncoding.DER)
    assert der == sm2.signature_to_der(VEC_SIG)
    assert sm2.verify(vec_key.public_key, b"message digest", der, encoding="der")
    # a raw signature handed over as DER is a malformed input, not a silent False
    with pytest.raises(BadInputError):
        sm2.verify(vec_key.public_key, b"message digest", VEC_SIG, encoding="der")
    # out-of-range r or s is simply invalid
    assert not sm2.verify(vec_key.public_key, b"message digest", _raw(0, 1))
    assert not sm2.verify(vec_key.public_key, b"message digest", _raw(N, 1))


# --------------------------------------------------------------------------- keys


def test_private_key_validation_and_repr() -> None:
    for bad in (0, N - 1, N, -1):
        with pytest.raises(BadInputError, match=r"\[1, n-2\]"):
            PrivateKey(bad)
    key = PrivateKey(VEC_D)
    assert f"{VEC_D:x}" not in repr(key).lower()
    assert str(VEC_D) not in repr(key)
    assert "PublicKey('0409F9DF" in repr(key)


def test_public_key_forms() -> None:
    pub = PublicKey.from_bytes(VEC_PUB)
    assert PublicKey.from_bytes(VEC_PUB[1:]) == pub
    assert PublicKey.from_hex(VEC_PUB.hex()) == pub
    assert pub.to_bytes(prefix=False) == VEC_PUB[1:]
    with pytest.raises(BadInputError, match="compressed"):
        PublicKey.from_bytes(b"\x02" + VEC_PUB[1:33])
    with pytest.raises(BadInputError, match="not a point"):
        PublicKey.from_bytes(VEC_PUB[:-1] + b"\x00")
    with pytest.raises(BadInputError, match="not a point"):
        PublicKey(1, 2)


def test_private_key_serialisations(vec_key: PrivateKey) -> None:
    assert vec_key.to_pem() == VEC_PKCS8_PEM
    assert vec_key.to_hex() == f"{VEC_D:064X}"
    for fmt in ("pkcs8", "sec1"):
        assert PrivateKey.from_der(vec_key.to_der(fmt)) == vec_key
        assert PrivateKey.from_pem(vec_key.to_pem(fmt)) == vec_key
        assert sm2.load_private_key(vec_key.to_pem(fmt).encode()) == vec_key
        assert sm2.load_private_key(vec_key.to_der(fmt)) == vec_key
    assert vec_key.to_pem("sec1").startswith("-----BEGIN EC PRIVATE KEY-----\n")
    assert sm2.load_private_key(vec_key.to_hex()) == vec_key
    assert sm2.load_private_key(vec_key.to_bytes()) == vec_key
    pub = vec_key.public_key
    assert PublicKey.from_pem(pub.to_pem()) == pub
    assert sm2.load_public_key(pub.to_der()) == pub
    assert sm2.load_public_key(pub.to_pem()) == pub
    assert sm2.load_public_key(pub.to_hex(prefix=False)) == pub


def test_private_key_pem_with_parameters_block(vec_key: PrivateKey) -> None:
    # `openssl ecparam -genkey` writes an EC PARAMETERS block first.
    params = "-----BEGIN EC PARAMETERS-----\nBggqgRzPVQGCLQ==\n-----END EC PARAMETERS-----\n"
    assert PrivateKey.from_pem(params + vec_key.to_pem("sec1")) == vec_key


def test_private_key_rejections(vec_key: PrivateKey) -> None:
    with pytest.raises(BadInputError, match="encrypted"):
        PrivateKey.from_pem(
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAA==\n-----END ENCRYPTED PRIVATE KEY-----\n"
        )
    with pytest.raises(BadInputError, match="found PEM PUBLIC KEY"):
        PrivateKey.from_pem(vec_key.public_key.to_pem())
    # the same key claiming the NIST P-256 curve
    p256 = vec_key.to_der().replace(_oid(sm2.CURVE_OID), _oid("1.2.840.10045.3.1.7"))
    with pytest.raises(BadInputError, match=re.escape("1.2.840.10045.3.1.7 is not SM2")):
        PrivateKey.from_der(p256)
    # an embedded public key that belongs to another private key
    other = PrivateKey(VEC_D + 1)
    forged = vec_key.to_der().replace(vec_key.public_key.to_bytes(), other.public_key.to_bytes())
    with pytest.raises(BadInputError, match="does not match"):
        PrivateKey.from_der(forged)
    with pytest.raises(BadInputError, match="32 bytes"):
        PrivateKey.from_bytes(bytes(31))
    with pytest.raises(BadInputError, match="is not a hex digit"):
        PrivateKey.from_hex("zz")


def test_generated_keys_are_distinct_and_usable() -> None:
    a, b = PrivateKey.generate(), PrivateKey.generate()
    assert a != b
    assert sm2.decrypt(a, sm2.encrypt(a.public_key, b"x")) == b"x"


def test_backend_selection() -> None:
    with pytest.raises(BadInputError, match="unknown SM2 backend"):
        sm2.get_backend("openssl-cli")
    assert sm2.default_backend().name in ("libcrypto", "gmssl")


def test_uid_length_limit(vec_key: PrivateKey) -> None:
    with pytest.raises(BadInputError, match="at most 8191 bytes"):
        sm2.sign(vec_key, b"m", uid=bytes(8192))


def test_digest_length_checked(vec_key: PrivateKey) -> None:
    with pytest.raises(BadInputError, match="32 bytes"):
        sm2.sign_digest(vec_key, bytes(20))


# --------------------------------------------------------------------------- openssl CLI




def _run(exe: str, *args: str | Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([exe, *map(str, args)], capture_output=True, check=False)


@pytest.fixture
def keyfiles(tmp_path: Path) -> tuple[PrivateKey, Path, Path]:
    key = PrivateKey.generate()
    priv, pub = tmp_path / "key.pem", tmp_path / "pub.pem"
    priv.write_text(key.to_pem())
    pub.write_text(key.public_key.to_pem())
    return key, priv, pub


def test_openssl_reads_our_keys(openssl: str, keyfiles: tuple[PrivateKey, Path, Path]) -> None:
    key, priv, pub = keyfiles
    assert _run(openssl, "pkey", "-in", priv).stdout.decode() == key.to_pem()
    assert _run(openssl, "pkey", "-in", priv, "-pubout").stdout.decode() == pub.read_text()
    sec1 = priv.with_name("sec1.pem")
    sec1.write_text(key.to_pem("sec1"))
    assert _run(openssl, "pkey", "-in", sec1).stdout.decode() == key.to_pem()


def test_we_read_openssl_keys(openssl: str, tmp_path: Path) -> None:
    pem = _run(openssl, "genpkey", "-algorithm", "SM2").stdout
    key = PrivateKey.from_pem(pem)
    (tmp_path / "k.pem").write_bytes(pem)
    pub_pem = _run(openssl, "pkey", "-in", tmp_path / "k.pem", "-pubout").stdout
    assert PublicKey.from_pem(pub_pem) == key.public_key
    sec1 = _run(openssl, "ec", "-in", tmp_path / "k.pem").stdout  # "SM2 PRIVATE KEY" in 3.0
    assert sm2.load_private_key(sec1) == key


@pytest.mark.parametrize("uid", [sm2.DEFAULT_ID, b"ALICE123@YAHOO.COM"])
def test_openssl_signature_interop(
    openssl: str, keyfiles: tuple[PrivateKey, Path, Path], uid: bytes
) -> None:
    key, priv, pub = keyfiles
    folder = priv.parent
    msg = folder / "msg.bin"
    msg.write_bytes(b"social security card \x00\xff")
    distid = f"distid:{uid.decode()}"

    # ours -> openssl
    sig = folder / "ours.sig"
    sig.write_bytes(sm2.sign(key, msg.read_bytes(), uid=uid, encoding="der"))
    ok = _run(openssl, "dgst", "-sm3", "-verify", pub, "-sigopt", distid, "-signature", sig, msg)
    assert ok.returncode == 0 and b"Verified OK" in ok.stdout, ok.stderr
    wrong = _run(
        openssl, "dgst", "-sm3", "-verify", pub, "-sigopt", "distid:other", "-signature", sig, msg
    )
    assert wrong.returncode != 0

    # openssl -> ours, on both backends
    theirs = folder / "theirs.sig"
    made = _run(openssl, "dgst", "-sm3", "-sign", priv, "-sigopt", distid, "-out", theirs, msg)
    assert made.returncode == 0, made.stderr
    for name in ("libcrypto", "gmssl"):
        be = _backend_or_skip(name)
        assert sm2.verify(
            key.public_key,
            msg.read_bytes(),
            theirs.read_bytes(),
            uid=uid,
            encoding="der",
            backend=be,
        )
        assert not sm2.verify(
            key.public_key,
            msg.read_bytes(),
            theirs.read_bytes(),
            uid=b"x",
            encoding="der",
            backend=be,
        )


def test_openssl_encryption_interop(openssl: str, keyfiles: tuple[PrivateKey, Path, Path]) -> None:
    key, priv, pub = keyfiles
    folder = priv.parent
    plain = folder / "plain.bin"
    plain.write_bytes(b"0123456789abcdef")

    made = _run(openssl, "pkeyutl", "-encrypt", "-pubin", "-inkey", pub, "-in", plain)
    assert made.returncode == 0, made.stderr
    raw = sm2.ciphertext_from_der(made.stdout)
    assert sm2.decrypt(key, raw) == plain.read_bytes()

    ours = folder / "ours.der"
    ours.write_bytes(sm2.ciphertext_to_der(sm2.encrypt(key.public_key, plain.read_bytes())))
    back = _run(openssl, "pkeyutl", "-decrypt", "-inkey", priv, "-in", ours)
    assert back.returncode == 0 and back.stdout == plain.read_bytes(), back.stderr


def test_falls_back_to_gmssl_without_libcrypto(monkeypatch: pytest.MonkeyPatch) -> None:
    from sbcard.crypto import _sm2_libcrypto

    monkeypatch.setattr(_sm2_libcrypto, "load", lambda: None)
    sm2._libcrypto_backend.cache_clear()
    try:
        assert sm2.default_backend().name == "gmssl"
        with pytest.raises(BadInputError, match="'libcrypto' is unavailable"):
            sm2.get_backend("libcrypto")
        key = PrivateKey(VEC_D)
        assert key.public_key.to_bytes() == VEC_PUB
        assert sm2.sign(key, b"message digest", k=VEC_K) == VEC_SIG
    finally:
        sm2._libcrypto_backend.cache_clear()


def _oid(dotted: str) -> bytes:
    from asn1crypto import core

    return core.ObjectIdentifier(dotted).dump()


def test_sm2_curve_oid_in_our_keys() -> None:
    assert _oid(sm2.CURVE_OID) == h("06082A811CCF5501822D")
    assert _oid(sm2.CURVE_OID) in PrivateKey(VEC_D).to_der()
    assert _oid(sm2.CURVE_OID) in PrivateKey(VEC_D).public_key.to_der()


@pytest.mark.parametrize("d", [1, 0x53E6 << 232, (1 << 248) - 1])
def test_private_key_with_leading_zero_bytes_round_trips(d: int) -> None:
    # RFC 5915 writes the scalar at full width (32 bytes, leading zeros kept), as OpenSSL
    # does; the strict DER check must not take those zeros for a non-minimal encoding.
    key = PrivateKey(d)
    for fmt in ("pkcs8", "sec1"):
        der = key.to_der(fmt)
        assert b"\x04\x20" + key.to_bytes() in der
        assert PrivateKey.from_der(der) == key
        assert PrivateKey.from_pem(key.to_pem(fmt)) == key
