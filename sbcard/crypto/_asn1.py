"""DER through asn1crypto, held to DER.

asn1crypto parses and builds every structure here (certificates, PKCS#8, SEC1, SPKI, the
DSA-style ``SEQUENCE {r, s}``); it reads BER leniently, so :func:`load_der` re-encodes what it
parsed and refuses input that is not the one DER encoding of its value (non-minimal lengths
or integers, indefinite lengths, BOOLEANs other than 00/FF, trailing bytes): signatures and
certificates are compared byte for byte by other tools. Chosen over pyasn1 (docs/architecture.md
says why).
"""

from __future__ import annotations

from typing import TypeVar

from asn1crypto import core, keys

from sbcard.errors import BadInputError

SEQUENCE_TAG = 0x30
SM2_CURVE_OID = "1.2.156.10197.1.301"

# asn1crypto knows the SM2 curve only once told its name and scalar size (32 bytes); the
# registration is idempotent, so importing this module twice is harmless.
keys.NamedCurve.register("sm2p256v1", SM2_CURVE_OID, 32)

_V = TypeVar("_V", bound=core.Asn1Value)


class DerError(BadInputError):
    """Malformed DER (the message says where)."""


class Sm2Cipher(core.Sequence):
    """GM/T 0009 SM2 ciphertext ``SEQUENCE {x, y, C3 hash, C2 ciphertext}`` (OpenSSL's form)."""

    _fields = [  # noqa: RUF012 (asn1crypto reads the class attribute)
        ("x", core.Integer),
        ("y", core.Integer),
        ("hash", core.OctetString),
        ("ciphertext", core.OctetString),
    ]


def dsa_signature(r: int, s: int) -> bytes:
    """DER ``SEQUENCE {r INTEGER, s INTEGER}`` (X9.62 / GM/T 0009 signature value)."""
    from asn1crypto import algos

    return algos.DSASignature({"r": r, "s": s}).dump()


def load_der(spec: type[_V], data: bytes, what: str) -> _V:
    """``data`` parsed as ``spec``; DerError unless it is exactly one DER value of that type."""
    try:
        value = spec.load(bytes(data), strict=True)
        again = spec.load(bytes(data))
        _keep_octet_widths(again)
        canonical = again.dump(force=True)                    # parses every level
    except (ValueError, TypeError, KeyError) as exc:
        raise DerError(f"{what}: {_first_line(exc)}") from None
    if canonical != data:
        raise DerError(f"{what}: not DER (a length, integer or flag is not in its one DER form, "
                       "or the encoding is indefinite)")
    return value


def _keep_octet_widths(value: core.Asn1Value) -> None:
    """Hold each INTEGER-as-OCTET-STRING (an EC private scalar) to the width it was read with,
    so re-encoding keeps its leading zero bytes (RFC 5915 fixes the width; asn1crypto would
    encode the number minimally)."""
    if isinstance(value, core.IntegerOctetString):
        value.set_encoded_width(len(value.contents))
    elif isinstance(value, core.Choice):
        _keep_octet_widths(value.chosen)
    elif isinstance(value, core.Sequence):
        for name, _spec, _params in value._fields:
            _keep_octet_widths(value[name])
    elif isinstance(value, core.SequenceOf):
        for child in value:
            _keep_octet_widths(child)
    elif isinstance(value, core.ParsableOctetString) and value.parsed is not None:
        _keep_octet_widths(value.parsed)


def native(value: core.Asn1Value, what: str) -> object:
    """``value.native``, with asn1crypto's lazy parse errors as DerError."""
    try:
        return value.native
    except (ValueError, TypeError, KeyError) as exc:
        raise DerError(f"{what}: {_first_line(exc)}") from None


def outer_length(head: bytes) -> int | None:
    """Total size of the DER value whose first bytes are ``head`` (its tag and length octets),
    or None when ``head`` does not start with a definite length of at most 3 bytes.

    For reading a certificate from a card file chunk by chunk: the header says how much more
    to read. (asn1crypto parses only complete values.)
    """
    if len(head) < 2:
        return None
    first = head[1]
    if first < 0x80:
        return 2 + first
    count = first & 0x7F
    if not 1 <= count <= 3 or len(head) < 2 + count:
        return None
    return 2 + count + int.from_bytes(head[2:2 + count], "big")


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
