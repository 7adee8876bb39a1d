"""SM2 backend on the system's OpenSSL 3 ``libcrypto``, reached through :mod:`ctypes`.

Why ctypes: ``cryptography`` has no SM2, and pure Python is 30-50x slower than OpenSSL.
Keys travel as raw numbers and are turned into a short-lived ``EVP_PKEY`` for each call
(``EVP_PKEY_fromdata``, about 50 µs), so nothing native outlives a call and no key material
is cached.

* Random-nonce signing, verification, encryption and decryption are OpenSSL's own SM2
  code (``EVP_PKEY_sign``/``verify``/``encrypt``/``decrypt``; ``EVP_DigestSign`` with the
  distinguishing ID set through ``EVP_PKEY_CTX_set1_id``, so OpenSSL computes Z itself).
  OpenSSL 3.0 rejects the ID passed as an init parameter, hence the separate call.
* With a caller-chosen k (known-answer tests, reproducible fixtures) OpenSSL offers no
  hook, so the point work is done with ``EC_POINT_mul`` and the equations in
  :mod:`._sm2_math`.

:func:`load` returns ``None`` when no OpenSSL 3 with SM2 can be found (e.g. distributions
that compile SM2 out); the caller then falls back to the gmssl backend.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from asn1crypto import algos

from sbcard.crypto import _asn1
from sbcard.crypto import _sm2_math as m

_NID_SM2 = 1172
_UNCOMPRESSED = 4
_PARAM_UNSIGNED_INTEGER = 2
_PARAM_UTF8_STRING = 4
_PARAM_OCTET_STRING = 5
_SELECT_PUBLIC = 0x86  # EVP_PKEY_PUBLIC_KEY
_SELECT_KEYPAIR = 0x87  # EVP_PKEY_KEYPAIR

_vp = ctypes.c_void_p
_size = ctypes.c_size_t
_int = ctypes.c_int
_str = ctypes.c_char_p


class _Param(ctypes.Structure):
    """``OSSL_PARAM``: a public, documented struct layout (OSSL_PARAM(3))."""

    _fields_ = (
        ("key", _str),
        ("data_type", ctypes.c_uint),
        ("data", _vp),
        ("data_size", _size),
        ("return_size", _size),
    )


_SIGNATURES: dict[str, tuple[object, list[object]]] = {
    "OpenSSL_version_num": (ctypes.c_ulong, []),
    "ERR_clear_error": (None, []),
    "EVP_PKEY_CTX_new_from_name": (_vp, [_vp, _str, _str]),
    "EVP_PKEY_CTX_new_from_pkey": (_vp, [_vp, _vp, _str]),
    "EVP_PKEY_CTX_free": (None, [_vp]),
    "EVP_PKEY_CTX_set1_id": (_int, [_vp, _str, _int]),
    "EVP_PKEY_fromdata_init": (_int, [_vp]),
    "EVP_PKEY_fromdata": (_int, [_vp, ctypes.POINTER(_vp), _int, ctypes.POINTER(_Param)]),
    "EVP_PKEY_free": (None, [_vp]),
    "EVP_PKEY_sign_init": (_int, [_vp]),
    "EVP_PKEY_sign": (_int, [_vp, _str, ctypes.POINTER(_size), _str, _size]),
    "EVP_PKEY_verify_init": (_int, [_vp]),
    "EVP_PKEY_verify": (_int, [_vp, _str, _size, _str, _size]),
    "EVP_PKEY_encrypt_init": (_int, [_vp]),
    "EVP_PKEY_encrypt": (_int, [_vp, _str, ctypes.POINTER(_size), _str, _size]),
    "EVP_PKEY_decrypt_init": (_int, [_vp]),
    "EVP_PKEY_decrypt": (_int, [_vp, _str, ctypes.POINTER(_size), _str, _size]),
    "EVP_MD_CTX_new": (_vp, []),
    "EVP_MD_CTX_free": (None, [_vp]),
    "EVP_DigestSignInit_ex": (_int, [_vp, ctypes.POINTER(_vp), _str, _vp, _str, _vp, _vp]),
    "EVP_DigestSign": (_int, [_vp, _str, ctypes.POINTER(_size), _str, _size]),
    "EVP_DigestVerifyInit_ex": (_int, [_vp, ctypes.POINTER(_vp), _str, _vp, _str, _vp, _vp]),
    "EVP_DigestVerify": (_int, [_vp, _str, _size, _str, _size]),
    "EC_GROUP_new_by_curve_name": (_vp, [_int]),
    "EC_GROUP_free": (None, [_vp]),
    "EC_POINT_new": (_vp, [_vp]),
    "EC_POINT_free": (None, [_vp]),
    "EC_POINT_mul": (_int, [_vp, _vp, _vp, _vp, _vp, _vp]),
    "EC_POINT_oct2point": (_int, [_vp, _vp, _str, _size, _vp]),
    "EC_POINT_point2oct": (_size, [_vp, _vp, _int, _str, _size, _vp]),
    "BN_bin2bn": (_vp, [_str, _int, _vp]),
    "BN_clear_free": (None, [_vp]),
}

_KAT_D = 0x3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8
_KAT_PUB = (
    0x09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020,
    0xCCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13,
)
_KAT_E = bytes.fromhex("F0B43E94BA45ACCAACE692ED534382EB17E6AB5A19CE7B31F4486FDFC0D28640")
_KAT_R = 0xF5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3
_KAT_S = 0xB1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA

_CANDIDATES = ("libcrypto.so.3", "libcrypto.3.dylib", "libcrypto-3-x64.dll", "libcrypto-3.dll")


class LibcryptoError(RuntimeError):
    """libcrypto failed where it should not have (a bug or a broken installation)."""


def _open_library() -> ctypes.CDLL | None:
    names = list(_CANDIDATES)
    found = ctypes.util.find_library("crypto")
    if found:
        names.append(found)
    for name in names:
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        try:
            for fname, (restype, argtypes) in _SIGNATURES.items():
                func = getattr(lib, fname)
                func.restype = restype
                func.argtypes = argtypes
        except AttributeError:  # OpenSSL 1.x or a stripped build
            continue
        if lib.OpenSSL_version_num() >= 0x30000000:
            return lib
    return None


def load() -> LibcryptoBackend | None:
    """The backend if an OpenSSL 3 libcrypto with working SM2 is present, else None."""
    lib = _open_library()
    if lib is None:
        return None
    backend = LibcryptoBackend(lib)
    try:
        # One known answer through each native path: EC_POINT_mul and EVP verification
        # (GB/T 32918.5 annex A: public key, e = SM3(Z‖M), r, s).
        ok = backend.public_point(_KAT_D) == _KAT_PUB and backend.verify_digest(
            _KAT_PUB, _KAT_E, _KAT_R, _KAT_S
        )
    except LibcryptoError:
        ok = False
    lib.ERR_clear_error()
    return backend if ok else None


class LibcryptoBackend:
    """SM2 computed by OpenSSL's libcrypto; constant-time where OpenSSL is."""

    name = "libcrypto"

    def __init__(self, lib: ctypes.CDLL) -> None:
        self._lib = lib

    # ----------------------------------------------------------------- plumbing

    def _fail(self, what: str) -> LibcryptoError:
        self._lib.ERR_clear_error()
        return LibcryptoError(f"libcrypto: {what} failed")

    @contextmanager
    def _pkey(self, public: m.Point, d: int | None = None) -> Iterator[int]:
        """A temporary EVP_PKEY (SM2) for ``public`` and optionally the private scalar."""
        lib = self._lib
        items: list[tuple[bytes, int, bytes]] = [
            (b"group", _PARAM_UTF8_STRING, b"SM2"),
            (b"pub", _PARAM_OCTET_STRING, m.point_bytes(public)),
        ]
        if d is not None:
            # OSSL_PARAM unsigned integers are in native byte order.
            items.append((b"priv", _PARAM_UNSIGNED_INTEGER, d.to_bytes(32, sys.byteorder)))
        params = (_Param * (len(items) + 1))()
        buffers = []
        for slot, (key, kind, value) in zip(params, items, strict=False):
            buf = ctypes.create_string_buffer(value, len(value))
            buffers.append(buf)
            slot.key, slot.data_type = key, kind
            slot.data, slot.data_size = ctypes.cast(buf, _vp), len(value)
        ctx = lib.EVP_PKEY_CTX_new_from_name(None, b"SM2", None)
        pkey = _vp()
        try:
            if not ctx or lib.EVP_PKEY_fromdata_init(ctx) != 1:
                raise self._fail("EVP_PKEY_fromdata_init")
            selection = _SELECT_PUBLIC if d is None else _SELECT_KEYPAIR
            if lib.EVP_PKEY_fromdata(ctx, ctypes.byref(pkey), selection, params) != 1:
                raise self._fail("EVP_PKEY_fromdata")
        finally:
            lib.EVP_PKEY_CTX_free(ctx)
            for buf in buffers:
                ctypes.memset(buf, 0, len(buf))
        try:
            yield pkey.value or 0
        finally:
            lib.EVP_PKEY_free(pkey)

    @contextmanager
    def _pctx(self, pkey: int) -> Iterator[int]:
        ctx = self._lib.EVP_PKEY_CTX_new_from_pkey(None, pkey, None)
        if not ctx:
            raise self._fail("EVP_PKEY_CTX_new_from_pkey")
        try:
            yield ctx
        finally:
            self._lib.EVP_PKEY_CTX_free(ctx)

    @contextmanager
    def _group(self) -> Iterator[int]:
        group = self._lib.EC_GROUP_new_by_curve_name(_NID_SM2)
        if not group:
            raise self._fail("EC_GROUP_new_by_curve_name(SM2)")
        try:
            yield group
        finally:
            self._lib.EC_GROUP_free(group)

    def _mul(self, k: int, point: m.Point) -> m.Point:
        """k·point with EC_POINT_mul (a single scalar, so OpenSSL's ladder is used)."""
        lib = self._lib
        with self._group() as group:
            src = lib.EC_POINT_new(group)
            dst = lib.EC_POINT_new(group)
            scalar = lib.BN_bin2bn(k.to_bytes(32, "big"), 32, None)
            try:
                if not (src and dst and scalar):
                    raise self._fail("allocation")
                enc = m.point_bytes(point)
                if lib.EC_POINT_oct2point(group, src, enc, len(enc), None) != 1:
                    raise self._fail("EC_POINT_oct2point")
                if lib.EC_POINT_mul(group, dst, None, src, scalar, None) != 1:
                    raise self._fail("EC_POINT_mul")
                out = ctypes.create_string_buffer(65)
                if lib.EC_POINT_point2oct(group, dst, _UNCOMPRESSED, out, 65, None) != 65:
                    raise self._fail("EC_POINT_point2oct")
                raw = out.raw
                return int.from_bytes(raw[1:33], "big"), int.from_bytes(raw[33:], "big")
            finally:
                lib.BN_clear_free(scalar)
                lib.EC_POINT_free(src)
                lib.EC_POINT_free(dst)

    @staticmethod
    def _parse_signature(der: bytes) -> tuple[int, int]:
        value = _asn1.load_der(algos.DSASignature, der, "libcrypto signature")
        return value["r"].native, value["s"].native

    # ----------------------------------------------------------------- protocol

    def public_point(self, d: int) -> m.Point:
        return self._mul(d, m.G)

    def sign_digest(self, d: int, public: m.Point, e: bytes, k: int | None) -> tuple[int, int]:
        if k is not None:
            out = m.signature_from_k(e, d, k, self._mul(k, m.G)[0])
            if out is None:
                raise ValueError("this k gives r = 0, r + k = n or s = 0; choose another")
            return out
        lib = self._lib
        with self._pkey(public, d) as pkey, self._pctx(pkey) as ctx:
            if lib.EVP_PKEY_sign_init(ctx) != 1:
                raise self._fail("EVP_PKEY_sign_init")
            sig = ctypes.create_string_buffer(80)
            size = _size(len(sig))
            if lib.EVP_PKEY_sign(ctx, sig, ctypes.byref(size), e, len(e)) != 1:
                raise self._fail("EVP_PKEY_sign")
            return self._parse_signature(sig.raw[: size.value])

    def verify_digest(self, public: m.Point, e: bytes, r: int, s: int) -> bool:
        lib = self._lib
        der = _asn1.dsa_signature(r, s)
        with self._pkey(public) as pkey, self._pctx(pkey) as ctx:
            if lib.EVP_PKEY_verify_init(ctx) != 1:
                raise self._fail("EVP_PKEY_verify_init")
            ok = lib.EVP_PKEY_verify(ctx, der, len(der), e, len(e))
        lib.ERR_clear_error()
        return ok == 1

    def sign_message(
        self, d: int, public: m.Point, message: bytes, uid: bytes, k: int | None
    ) -> tuple[int, int]:
        if k is not None:
            return self.sign_digest(d, public, m.message_digest(public, message, uid), k)
        lib = self._lib
        with self._pkey(public, d) as pkey:
            mctx = lib.EVP_MD_CTX_new()
            try:
                pctx = _vp()
                if (
                    not mctx
                    or lib.EVP_DigestSignInit_ex(
                        mctx, ctypes.byref(pctx), b"SM3", None, None, pkey, None
                    )
                    != 1
                ):
                    raise self._fail("EVP_DigestSignInit_ex")
                if lib.EVP_PKEY_CTX_set1_id(pctx, uid, len(uid)) != 1:
                    raise self._fail("EVP_PKEY_CTX_set1_id")
                sig = ctypes.create_string_buffer(80)
                size = _size(len(sig))
                if lib.EVP_DigestSign(mctx, sig, ctypes.byref(size), message, len(message)) != 1:
                    raise self._fail("EVP_DigestSign")
                return self._parse_signature(sig.raw[: size.value])
            finally:
                lib.EVP_MD_CTX_free(mctx)

    def verify_message(self, public: m.Point, message: bytes, uid: bytes, r: int, s: int) -> bool:
        lib = self._lib
        der = _asn1.dsa_signature(r, s)
        with self._pkey(public) as pkey:
            mctx = lib.EVP_MD_CTX_new()
            try:
                pctx = _vp()
                if (
                    not mctx
                    or lib.EVP_DigestVerifyInit_ex(
                        mctx, ctypes.byref(pctx), b"SM3", None, None, pkey, None
                    )
                    != 1
                ):
                    raise self._fail("EVP_DigestVerifyInit_ex")
                if lib.EVP_PKEY_CTX_set1_id(pctx, uid, len(uid)) != 1:
                    raise self._fail("EVP_PKEY_CTX_set1_id")
                ok = lib.EVP_DigestVerify(mctx, der, len(der), message, len(message))
            finally:
                lib.EVP_MD_CTX_free(mctx)
        lib.ERR_clear_error()
        return ok == 1

    def encrypt(
        self, public: m.Point, plaintext: bytes, k: int | None
    ) -> tuple[m.Point, bytes, bytes]:
        if k is not None:
            out = m.encrypt_with_k(self._mul, public, plaintext, k)
            if out is None:
                raise ValueError("this k gives an all-zero KDF output; choose another")
            return out
        lib = self._lib
        with self._pkey(public) as pkey, self._pctx(pkey) as ctx:
            if lib.EVP_PKEY_encrypt_init(ctx) != 1:
                raise self._fail("EVP_PKEY_encrypt_init")
            size = _size(0)
            if lib.EVP_PKEY_encrypt(ctx, None, ctypes.byref(size), plaintext, len(plaintext)) != 1:
                raise self._fail("EVP_PKEY_encrypt (size)")
            out_buf = ctypes.create_string_buffer(size.value)
            if (
                lib.EVP_PKEY_encrypt(ctx, out_buf, ctypes.byref(size), plaintext, len(plaintext))
                != 1
            ):
                raise self._fail("EVP_PKEY_encrypt")
            der = out_buf.raw[: size.value]
        value = _asn1.load_der(_asn1.Sm2Cipher, der, "libcrypto ciphertext")
        return ((value["x"].native, value["y"].native), value["hash"].native,
                value["ciphertext"].native)

    def decrypt(self, d: int, public: m.Point, c1: m.Point, c3: bytes, c2: bytes) -> bytes | None:
        lib = self._lib
        der = _asn1.Sm2Cipher({"x": c1[0], "y": c1[1], "hash": c3, "ciphertext": c2}).dump()
        with self._pkey(public, d) as pkey, self._pctx(pkey) as ctx:
            if lib.EVP_PKEY_decrypt_init(ctx) != 1:
                raise self._fail("EVP_PKEY_decrypt_init")
            size = _size(0)
            if lib.EVP_PKEY_decrypt(ctx, None, ctypes.byref(size), der, len(der)) != 1:
                raise self._fail("EVP_PKEY_decrypt (size)")
            out_buf = ctypes.create_string_buffer(max(size.value, 1))
            ok = lib.EVP_PKEY_decrypt(ctx, out_buf, ctypes.byref(size), der, len(der))
            if ok != 1:
                lib.ERR_clear_error()
                return None
            return out_buf.raw[: size.value]
