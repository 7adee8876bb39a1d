"""Typed sections of a card profile: the data that describes a feature's commands.

Each section is a frozen dataclass built from its TOML table by one validator, so code that
uses a feature reads typed fields, never the raw mapping. Sections hold data only (no
cryptography): the operations and the simulator compute with them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sbcard.apdu.command import CommandApdu
from sbcard.errors import BadInputError
from sbcard.hexutil import parse_hex, to_hex

if TYPE_CHECKING:
    from sbcard.card.profiles import CardProfile

#: Where the built-in profiles keep the SM2 authentication settings.
SECTION = "sm2_auth"
#: The data-signing command (national PKI_SignData): keys over ``[sm2_auth]``'s.
SIGN_SECTION = "pki_sign"
#: The GM/T 0009 default signer ID (``sbcard.crypto.sm2.DEFAULT_ID``; a test keeps them equal).
DEFAULT_USER_ID = b"1234567812345678"

_SEND_MODES = ("challenge", "digest")
_HASH_MODES = ("sm3-z", "sm3")
_USER_PIN_MODES = ("on-demand", "required")


def _hex_field(section: dict[str, Any], key: str, default: str, size: int | None,
               origin: str) -> bytes:
    value = section.get(key, default)
    if not isinstance(value, str):
        raise BadInputError(f"{origin}: [{SECTION}] {key} must be a hex string")
    raw = parse_hex(value, f"{origin} [{SECTION}] {key}")
    if size is not None and len(raw) != size:
        raise BadInputError(f"{origin}: [{SECTION}] {key} must be {size} byte(s), "
                            f"got {len(raw)}")
    return raw


def _byte(section: dict[str, Any], key: str, default: str, origin: str) -> int:
    return _hex_field(section, key, default, 1, origin)[0]


def _int(section: dict[str, Any], key: str, default: int, low: int, high: int,
         origin: str) -> int:
    value = section.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise BadInputError(f"{origin}: [{SECTION}] {key} must be an integer {low}..{high}, "
                            f"got {value!r}")
    return value


def _choice(section: dict[str, Any], key: str, default: str, choices: Sequence[str],
            origin: str) -> str:
    value = str(section.get(key, default)).lower()
    if value not in choices:
        raise BadInputError(f"{origin}: [{SECTION}] {key} must be one of "
                            f"{', '.join(choices)}, got {value!r}")
    return value


_KNOWN_KEYS = {"ddf_name", "adf_name", "adf_fid", "cert_fid", "read_chunk", "cla", "ins", "p1",
               "p2", "data_prefix", "challenge_length", "send", "hash", "user_id",
               "user_id_hex", "le", "signature", "response_prefix", "name", "user_pin",
               "user_pin_verify", "pin_challenge_length", "select_p1"}


@dataclass(frozen=True)
class Sm2AuthConfig:
    """The PKI application's names, the certificate file and the authentication command.

    Read from a profile's ``[sm2_auth]`` section (:meth:`from_profile`); the defaults here are
    the ones documented in ``mohrss-3.0.toml``.
    """

    ddf_name: bytes = bytes.fromhex("504B492EC9E7BBE1B1A3D5CF")     # PKI.社会保障 (GBK)
    adf_name: bytes = bytes.fromhex("53532E434552542E41444631")     # SS.CERT.ADF1
    adf_fid: int | None = None            # select the ADF by FID (e.g. DF01) when no name
    cert_fid: int = 0x0018                # signature certificate
    read_chunk: int = 0xE0                # READ BINARY Le
    cla: int = 0x00
    ins: int = 0x88                       # INTERNAL AUTHENTICATE (ASSUMPTION)
    p1: int = 0x00
    p2: int = 0x00
    data_prefix: bytes = b""              # bytes before the challenge/digest (e.g. a key ref)
    challenge_length: int = 32
    send: str = "challenge"               # "challenge": the card hashes; "digest": we send e
    hash: str = "sm3-z"                   # e = SM3(Z‖challenge) ("sm3": SM3(challenge), no Z)
    user_id: bytes = DEFAULT_USER_ID      # the ID in Z
    le: int | None = 256                  # Le of the command (256 = 00); None = no Le
    signature: str = "raw"                # "raw" r‖s, or "der" SEQUENCE {r, s}
    response_prefix: bytes = b""          # fixed bytes before the signature in the answer
    name: str = "INTERNAL AUTHENTICATE (SM2)"
    # The PKI user PIN (national API PKI_SignData(pUserPin, …)): "on-demand" = sign without
    # it and report 6982 as "PKI PIN needed"; "required" = verify it before signing. The
    # proof is SM4-ECB_{SM3(PIN as BCD)[0:16]}(challenge) in ``00 20 01 81 10`` after a
    # 16-byte GET CHALLENGE (leithergit/Z390Kylin Evolis_Z390_printer.cpp: 80C4010305C103
    # <PIN> gives SM3(PIN), 0084000010, 0020018110 <SM4 of the challenge>).
    user_pin: str = "on-demand"
    user_pin_verify: bytes = bytes.fromhex("00200181")
    pin_challenge_length: int = 16
    #: SELECT of the PKI EFs (0012, 0018, 0019): P1=00 as both public code bases send it
    #: (``00A40000020018``: leithergit/Z390Kylin Evolis_Z390_printer.cpp, [S12]).
    select_p1: int = 0x00
    origin: str = field(default="built-in defaults", compare=False)

    @classmethod
    def from_profile(cls, profile: CardProfile) -> Sm2AuthConfig:
        section = profile.extra.get(SECTION)
        if section is None:
            raise BadInputError(
                f"card profile {profile.name} has no [{SECTION}] section: it describes no PKI "
                "application (SM2 authentication needs a third-generation card profile)"
            )
        return cls.from_mapping(section, f"card profile {profile.name}")

    @classmethod
    def from_mapping(cls, section: dict[str, Any], origin: str = "sm2_auth") -> Sm2AuthConfig:
        if not isinstance(section, dict):
            raise BadInputError(f"{origin}: [{SECTION}] must be a table")
        unknown = set(section) - _KNOWN_KEYS
        if unknown:
            raise BadInputError(f"{origin}: [{SECTION}] has unknown key(s) "
                                f"{', '.join(sorted(unknown))}")
        d = cls()
        ddf = _hex_field(section, "ddf_name", to_hex(d.ddf_name), None, origin)
        adf = _hex_field(section, "adf_name", to_hex(d.adf_name), None, origin)
        adf_fid = (int.from_bytes(_hex_field(section, "adf_fid", "", 2, origin), "big")
                   if section.get("adf_fid") else None)
        if not adf and adf_fid is None:
            raise BadInputError(f"{origin}: [{SECTION}] needs adf_name or adf_fid")
        for label, name in (("ddf_name", ddf), ("adf_name", adf)):
            if len(name) > 16:
                raise BadInputError(f"{origin}: [{SECTION}] {label} is longer than 16 bytes")
        send = _choice(section, "send", d.send, _SEND_MODES, origin)
        hash_mode = _choice(section, "hash", d.hash, _HASH_MODES, origin)
        if "user_id_hex" in section:
            uid = _hex_field(section, "user_id_hex", "", None, origin)
        else:
            uid_text = section.get("user_id", d.user_id.decode("ascii"))
            if not isinstance(uid_text, str):
                raise BadInputError(f"{origin}: [{SECTION}] user_id must be a string")
            uid = uid_text.encode("utf-8")
        le_value = section.get("le", "00")
        if le_value in ("", "none", None):
            le = None
        else:
            le_byte = _byte(section, "le", "00", origin)
            le = le_byte or 256
        challenge_length = _int(section, "challenge_length", d.challenge_length, 1, 255, origin)
        config = cls(
            ddf_name=ddf,
            adf_name=adf,
            adf_fid=adf_fid,
            cert_fid=int.from_bytes(_hex_field(section, "cert_fid", "0018", 2, origin), "big"),
            read_chunk=_int(section, "read_chunk", d.read_chunk, 8, 256, origin),
            cla=_byte(section, "cla", "00", origin),
            ins=_byte(section, "ins", "88", origin),
            p1=_byte(section, "p1", "00", origin),
            p2=_byte(section, "p2", "00", origin),
            data_prefix=_hex_field(section, "data_prefix", "", None, origin),
            challenge_length=challenge_length,
            send=send,
            hash=hash_mode,
            user_id=uid,
            le=le,
            signature=_choice(section, "signature", "raw", ("raw", "der"), origin),
            response_prefix=_hex_field(section, "response_prefix", "", None, origin),
            user_pin=_choice(section, "user_pin", d.user_pin, _USER_PIN_MODES, origin),
            user_pin_verify=_hex_field(section, "user_pin_verify", "00200181", 4, origin),
            pin_challenge_length=_int(section, "pin_challenge_length", 16, 8, 16, origin),
            select_p1=_byte(section, "select_p1", "00", origin),
            name=str(section.get("name", d.name if _byte(section, "ins", "88", origin) == 0x88
                                  else "SM2 authentication command")),
            origin=origin,
        )
        payload = 32 if send == "digest" else challenge_length
        if len(config.data_prefix) + payload > 255:
            raise BadInputError(f"{origin}: [{SECTION}] data_prefix + challenge exceed 255 bytes")
        if len(uid) > 0x1FFF:
            raise BadInputError(f"{origin}: [{SECTION}] user_id is too long")
        return config

    def command(self, payload: bytes) -> CommandApdu:
        """The authentication command around ``payload`` (the challenge, or its digest e)."""
        return CommandApdu(self.cla, self.ins, self.p1, self.p2, self.data_prefix + payload,
                           self.le, name=self.name)

    def describe(self) -> str:
        """The command as a technician writes it: ``00 88 00 00 Lc prefix‖challenge32 00``."""
        payload = "e32" if self.send == "digest" else f"challenge{self.challenge_length}"
        prefix = f"{to_hex(self.data_prefix)}‖" if self.data_prefix else ""
        le = "" if self.le is None else f" {self.le & 0xFF:02X}"
        return (f"{self.cla:02X} {self.ins:02X} {self.p1:02X} {self.p2:02X} Lc "
                f"{prefix}{payload}{le}")


def sign_config(profile: CardProfile) -> Sm2AuthConfig:
    """The profile's data-signing command: ``[pki_sign]`` keys over ``[sm2_auth]``'s.

    The application names and the certificate file are shared; ``[pki_sign]`` names the
    command. It must send the digest (``send = "digest"``): data of any length is hashed here
    into e = SM3(Z‖data), and the card signs e.
    """
    base = profile.extra.get(SECTION)
    sign = profile.extra.get(SIGN_SECTION)
    if not isinstance(base, dict) or not isinstance(sign, dict):
        raise BadInputError(f"card profile {profile.name} has no [{SECTION}] and [{SIGN_SECTION}]"
                            " sections: it describes no PKI signing command (a 3.0 profile does)")
    config = Sm2AuthConfig.from_mapping({**base, **sign},
                                        f"card profile {profile.name} [{SIGN_SECTION}]")
    if config.send != "digest":
        raise BadInputError(f"card profile {profile.name}: [{SIGN_SECTION}] send must be "
                            "\"digest\" (data of any length is signed through its digest)")
    return config
