"""Curve constants and the backend-independent parts of SM2 (GB/T 32918 / GM/T 0003).

Everything here works on Python integers and bytes and is shared by both backends, so a
formula (Z, KDF, the signature equation, C3) is written once. Point multiplication is the
only thing a backend contributes to these helpers; it is passed in as a function.
"""

from __future__ import annotations

from collections.abc import Callable

from sbcard.crypto.symmetric import sm3

# The recommended 256-bit curve (GB/T 32918.5 / GM/T 0003.5), OID 1.2.156.10197.1.301.
P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
A = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC
B = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93
N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
GX = 0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7
GY = 0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0

Point = tuple[int, int]
G: Point = (GX, GY)

DIGEST_SIZE = 32
MAX_ID_BYTES = 0xFFFF // 8  # ENTL is a 16-bit count of *bits*

_CURVE_BYTES = b"".join(v.to_bytes(32, "big") for v in (A, B, GX, GY))


def is_on_curve(point: Point) -> bool:
    x, y = point
    return 0 <= x < P and 0 <= y < P and (y * y - (x * x * x + A * x + B)) % P == 0


def point_bytes(point: Point) -> bytes:
    """Uncompressed encoding ``04‖X‖Y``."""
    return b"\x04" + point[0].to_bytes(32, "big") + point[1].to_bytes(32, "big")


def add_points(p1: Point | None, p2: Point | None) -> Point | None:
    """Affine addition; ``None`` is the point at infinity. Used only off the fast path."""
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    (x1, y1), (x2, y2) = p1, p2
    if x1 == x2:
        if (y1 + y2) % P == 0:
            return None
        lam = (3 * x1 * x1 + A) * pow(2 * y1, -1, P) % P
    else:
        lam = (y2 - y1) * pow(x2 - x1, -1, P) % P
    x3 = (lam * lam - x1 - x2) % P
    return x3, (lam * (x1 - x3) - y1) % P


def compute_z(public: Point, uid: bytes) -> bytes:
    """Z = SM3(ENTL ‖ ID ‖ a ‖ b ‖ xG ‖ yG ‖ xA ‖ yA), ENTL being the ID length in bits."""
    entl = (len(uid) * 8).to_bytes(2, "big")
    return sm3(entl + uid + _CURVE_BYTES + point_bytes(public)[1:])


def message_digest(public: Point, message: bytes, uid: bytes) -> bytes:
    """e = SM3(Z ‖ M), the value that is actually signed."""
    return sm3(compute_z(public, uid) + message)


def kdf(shared: bytes, length: int) -> bytes:
    """The SM3 counter-mode KDF of GB/T 32918.4 §5.4.3."""
    out = bytearray()
    counter = 1
    while len(out) < length:
        out += sm3(shared + counter.to_bytes(4, "big"))
        counter += 1
    return bytes(out[:length])


def signature_from_k(e: bytes, d: int, k: int, x1: int) -> tuple[int, int] | None:
    """Finish a signature given x1 of kG; ``None`` when this k must be discarded."""
    r = (int.from_bytes(e, "big") + x1) % N
    if r == 0 or r + k == N:
        return None
    s = pow(1 + d, -1, N) * (k - r * d) % N
    if s == 0:
        return None
    return r, s


def check_signature(e: bytes, r: int, s: int, x1: int | None) -> bool:
    """Last step of verification: R = (e + x1) mod n, x1 from sG + tP (None = infinity)."""
    if x1 is None:
        return False
    return (int.from_bytes(e, "big") + x1) % N == r


Mul = Callable[[int, Point], Point]


def encrypt_with_k(
    mul: Mul, public: Point, plaintext: bytes, k: int
) -> tuple[Point, bytes, bytes] | None:
    """C1 = kG, (x2, y2) = kP, C2 = M ⊕ KDF, C3 = SM3(x2 ‖ M ‖ y2); None if k is unusable."""
    c1 = mul(k, G)
    x2y2 = point_bytes(mul(k, public))[1:]
    t = kdf(x2y2, len(plaintext))
    if not any(t):
        return None
    c2 = (int.from_bytes(plaintext, "big") ^ int.from_bytes(t, "big")).to_bytes(
        len(plaintext), "big"
    )
    c3 = sm3(x2y2[:32] + plaintext + x2y2[32:])
    return c1, c3, c2


def decrypt_with(mul: Mul, d: int, c1: Point, c3: bytes, c2: bytes) -> bytes | None:
    """Recover M and check C3 (constant-time compare); None when C3 does not match."""
    import hmac

    x2y2 = point_bytes(mul(d, c1))[1:]
    t = kdf(x2y2, len(c2))
    if not any(t):
        return None
    plaintext = (int.from_bytes(c2, "big") ^ int.from_bytes(t, "big")).to_bytes(len(c2), "big")
    if not hmac.compare_digest(sm3(x2y2[:32] + plaintext + x2y2[32:]), c3):
        return None
    return plaintext
