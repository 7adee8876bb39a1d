"""SM2 backend on the pure-Python ``gmssl`` package, with its known defects kept out.

gmssl does the elliptic-curve work (``CryptSM2._kg`` for scalar multiplication and
``CryptSM2.sign`` for the signature equation). What it gets wrong is done here instead
(anchors.md §4):

* keys are set on the object after construction, never through the constructor, whose
  ``lstrip("04")`` eats leading ``0``/``4`` digits of the public key;
* nonces come from :mod:`secrets` (gmssl uses :mod:`random`);
* Z is computed with the caller's ID and the real public key (``sign_with_sm3`` hard-codes
  the ID and silently uses whatever public key the object holds);
* verification combines sG + tP itself: gmssl doubles the point in Jacobian form and then
  reads its X as if it were affine, and crashes on the point at infinity;
* decryption checks C3 (gmssl computes it and throws it away);
* ``r``/``s`` are range-checked before gmssl sees them.

It is slow (milliseconds per operation) and not constant-time; it exists so that SM2 works
where no suitable libcrypto is present.
"""

from __future__ import annotations

import secrets
from typing import Any

from sbcard.crypto import _sm2_math as m


class GmsslBackend:
    """SM2 computed by gmssl 3.2.2, used when libcrypto with SM2 is unavailable."""

    name = "gmssl"

    def __init__(self) -> None:
        from gmssl import sm2 as gmssl_sm2

        self._cls = gmssl_sm2.CryptSM2
        self._mul_engine = self._engine(None, None)

    def _engine(self, d: int | None, public: m.Point | None) -> Any:  # gmssl is untyped
        obj = self._cls(private_key="", public_key="")
        # Set after construction: the constructor mangles keys that start with "04".
        obj.private_key = "" if d is None else f"{d:064x}"
        obj.public_key = "" if public is None else m.point_bytes(public)[1:].hex()
        return obj

    def _mul(self, k: int, point: m.Point) -> m.Point:
        # gmssl's _kg returns its input unchanged for k = 0, so callers must never pass 0.
        if not 0 < k < m.N:
            raise ValueError("scalar out of range")
        out = self._mul_engine._kg(k, m.point_bytes(point)[1:].hex())
        if out is None:
            raise ArithmeticError("gmssl scalar multiplication reached the point at infinity")
        return int(out[:64], 16), int(out[64:], 16)

    # ----------------------------------------------------------------- protocol

    def public_point(self, d: int) -> m.Point:
        return self._mul(d, m.G)

    def sign_digest(self, d: int, public: m.Point, e: bytes, k: int | None) -> tuple[int, int]:
        engine = self._engine(d, public)
        while True:
            nonce = k if k is not None else secrets.randbelow(m.N - 1) + 1
            sig = engine.sign(e, f"{nonce:064x}")
            if sig is not None:
                return int(sig[:64], 16), int(sig[64:], 16)
            if k is not None:
                raise ValueError("this k gives r = 0, r + k = n or s = 0; choose another")

    def verify_digest(self, public: m.Point, e: bytes, r: int, s: int) -> bool:
        t = (r + s) % m.N
        if t == 0:
            return False
        total = m.add_points(self._mul(s, m.G), self._mul(t, public))
        return m.check_signature(e, r, s, None if total is None else total[0])

    def sign_message(
        self, d: int, public: m.Point, message: bytes, uid: bytes, k: int | None
    ) -> tuple[int, int]:
        return self.sign_digest(d, public, m.message_digest(public, message, uid), k)

    def verify_message(self, public: m.Point, message: bytes, uid: bytes, r: int, s: int) -> bool:
        return self.verify_digest(public, m.message_digest(public, message, uid), r, s)

    def encrypt(
        self, public: m.Point, plaintext: bytes, k: int | None
    ) -> tuple[m.Point, bytes, bytes]:
        while True:
            nonce = k if k is not None else secrets.randbelow(m.N - 1) + 1
            out = m.encrypt_with_k(self._mul, public, plaintext, nonce)
            if out is not None:
                return out
            if k is not None:
                raise ValueError("this k gives an all-zero KDF output; choose another")

    def decrypt(self, d: int, public: m.Point, c1: m.Point, c3: bytes, c2: bytes) -> bytes | None:
        return m.decrypt_with(self._mul, d, c1, c3, c2)
