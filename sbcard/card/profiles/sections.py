"""Typed sections of a card profile: the data that describes a feature's commands.

Each section is a frozen dataclass built from its TOML table by one validator, so code that
uses a feature reads typed fields, never the raw mapping. Sections hold data only (no
cryptography): the operations and the simulator compute with them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sbcard.apdu.command import CommandApdu
from sbcard.card.dfs import KEY_BY_NAME
from sbcard.card.elements import DataElement
from sbcard.card.filesystem import SSSE, Access, EfSpec, Structure
from sbcard.card.profiles.table import Table
from sbcard.errors import BadInputError
from sbcard.gmt import SM2_DEFAULT_USER_ID
from sbcard.hexutil import to_hex

if TYPE_CHECKING:
    from sbcard.card.profiles import CardProfile

#: Where the built-in profiles keep the SM2 authentication settings.
SECTION = "sm2_auth"
#: Issuing the card's SM2 key pair and certificate at personalisation.
ISSUE_SECTION = "sm2_issue"
#: The data-signing command (national PKI_SignData): keys over ``[sm2_auth]``'s.
SIGN_SECTION = "pki_sign"
#: The GM/T 0009 default signer ID, defined once in ``sbcard.gmt`` (also ``sm2.DEFAULT_ID``).
DEFAULT_USER_ID = SM2_DEFAULT_USER_ID

_SEND_MODES = ("challenge", "digest")
_HASH_MODES = ("sm3-z", "sm3")
_USER_PIN_MODES = ("on-demand", "required")


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
        """The profile's ``[sm2_auth]`` (validated when the profile was loaded)."""
        if profile.sm2_auth is None:
            raise BadInputError(
                f"card profile {profile.name} has no [{SECTION}] section: it describes no PKI "
                "application (SM2 authentication needs a third-generation card profile)"
            )
        return profile.sm2_auth

    @classmethod
    def from_mapping(cls, section: Mapping[str, Any], origin: str = "sm2_auth",
                     name: str = SECTION) -> Sm2AuthConfig:
        """Validate the TOML table ``[name]`` (``[sm2_auth]``, or ``[pki_sign]`` over it)."""
        return cls.from_table(Table.of(section, origin, name))

    @classmethod
    def from_table(cls, t: Table) -> Sm2AuthConfig:
        t.refuse_unknown(_KNOWN_KEYS)
        d = cls()
        ddf = t.hex("ddf_name", to_hex(d.ddf_name))
        adf = t.hex("adf_name", to_hex(d.adf_name))
        adf_fid = int.from_bytes(t.hex("adf_fid", size=2), "big") if t.get("adf_fid") else None
        if not adf and adf_fid is None:
            t.fail("adf_name", "empty: give adf_name or adf_fid")
        for label, name in (("ddf_name", ddf), ("adf_name", adf)):
            if len(name) > 16:
                t.fail(label, "is longer than 16 bytes")
        send = t.choice("send", d.send, _SEND_MODES)
        hash_mode = t.choice("hash", d.hash, _HASH_MODES)
        if "user_id_hex" in t:
            uid = t.hex("user_id_hex")
        else:
            uid = t.text("user_id", d.user_id.decode("ascii")).encode("utf-8")
        if len(uid) > 0x1FFF:
            t.fail("user_id", "is too long")
        le: int | None = None
        if t.get("le", "00") not in ("", "none"):
            le = t.byte("le", "00") or 256
        challenge_length = t.integer("challenge_length", d.challenge_length, 1, 255)
        ins = t.byte("ins", "88")
        config = cls(
            ddf_name=ddf,
            adf_name=adf,
            adf_fid=adf_fid,
            cert_fid=int.from_bytes(t.hex("cert_fid", "0018", 2), "big"),
            read_chunk=t.integer("read_chunk", d.read_chunk, 8, 256),
            cla=t.byte("cla", "00"),
            ins=ins,
            p1=t.byte("p1", "00"),
            p2=t.byte("p2", "00"),
            data_prefix=t.hex("data_prefix", ""),
            challenge_length=challenge_length,
            send=send,
            hash=hash_mode,
            user_id=uid,
            le=le,
            signature=t.choice("signature", "raw", ("raw", "der")),
            response_prefix=t.hex("response_prefix", ""),
            user_pin=t.choice("user_pin", d.user_pin, _USER_PIN_MODES),
            user_pin_verify=t.hex("user_pin_verify", "00200181", 4),
            pin_challenge_length=t.integer("pin_challenge_length", 16, 8, 16),
            select_p1=t.byte("select_p1", "00"),
            name=t.text("name", d.name if ins == 0x88 else "SM2 authentication command"),
            origin=t.origin,
        )
        payload = 32 if send == "digest" else challenge_length
        if len(config.data_prefix) + payload > 255:
            t.fail("data_prefix", "data_prefix + challenge exceed 255 bytes")
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
    if profile.pki_sign is None:
        raise BadInputError(f"card profile {profile.name} has no [{SECTION}] and [{SIGN_SECTION}]"
                            " sections: it describes no PKI signing command (a 3.0 profile does)")
    return profile.pki_sign


def pki_sign_from(base: Table, sign: Table) -> Sm2AuthConfig:
    """``[pki_sign]`` validated over ``[sm2_auth]``: the command must send the digest."""
    merged = Table({**base.data, **sign.data}, sign.origin, SIGN_SECTION)
    config = Sm2AuthConfig.from_table(merged)
    if config.send != "digest":
        merged.fail("send", "must be \"digest\" (data of any length is signed through its "
                    "digest)")
    return config


# --------------------------------------------------------------------------- [read]


class Addressing(StrEnum):
    """How READ RECORD / READ BINARY name the file; the other one is the fallback."""

    SFI = "sfi"                # P2 (or P1) carries the SFI: no SELECT EF, fewest APDUs
    SELECT_EF = "select-ef"    # SELECT EF by FID, then P2 refers to the current EF (traces)

    @classmethod
    def of(cls, profile: CardProfile | None) -> Addressing:
        """The profile's first choice (``[read] addressing``), SFI when there is no profile."""
        return profile.read.addressing if profile is not None else cls.SFI


@dataclass(frozen=True)
class ReadConfig:
    """``[read]``: how reads name the file first (the other way is the fallback)."""

    addressing: Addressing = Addressing.SFI

    @classmethod
    def from_table(cls, t: Table) -> ReadConfig:
        t.refuse_unknown({"addressing"})
        return cls(Addressing(t.choice("addressing", Addressing.SFI, tuple(Addressing))))


# --------------------------------------------------------------------------- [psam_keys]


@dataclass(frozen=True)
class PsamKeyRef:
    """Where one card key's root sits on the PSAM: usage type (low 5 bits) and key ID."""

    card_key_id: int
    usage_type: int
    psam_key_id: int
    name: str
    #: PSAM key ID per card key version (part 9 §6.1: a PSAM key record has an ID, no
    #: version, so each version of a card key is a PSAM key of its own — ASSUMPTION, the
    #: IDs are a region's, given in the profile: ``versions = { "3" = "14" }``).
    versions: tuple[tuple[int, int], ...] = ()

    def for_version(self, version: int | None) -> PsamKeyRef | None:
        """This reference with the PSAM key ID of ``version``; None when there is none."""
        if version is None:
            return self
        found = dict(self.versions).get(version)
        if found is None:
            return self if version == 1 and not self.versions else None
        return PsamKeyRef(self.card_key_id, self.usage_type, found, f"{self.name} v{version}")

    def usage(self, levels: int) -> int:
        return (levels << 5) | self.usage_type


def _card_key(t: Table, key: str) -> int:
    """A table key naming a card key: its hex ID (``"0A"``, an SSSE key) or the name of a
    DF key (``"RK1DF06"``: ``sbcard.card.dfs.DF_KEYS``), whose IDs repeat across DFs and so
    are named rather than numbered (the reference ``dfs.key_ref``)."""
    found = KEY_BY_NAME.get(key.upper())
    return found.ref if found is not None else t.hex_key(key)


def psam_keys_from(t: Table) -> dict[int, PsamKeyRef]:
    """``[psam_keys]``: ``"0A" = { type = 7, id = "0A", name = "RKSSSE", versions = {…} }``;
    a DF key by its name, ``"RK1DF06" = { type = 7, id = "…" }``."""
    refs: dict[int, PsamKeyRef] = {}
    for card_key in t.data:
        kid = _card_key(t, card_key)
        entry = t.sub(card_key)
        entry.refuse_unknown({"type", "id", "name", "versions"})
        versions: list[tuple[int, int]] = []
        if "versions" in entry:
            table = entry.sub("versions")
            for version in table.data:
                if not (version.isascii() and version.isdigit() and 1 <= int(version) <= 255):
                    table.fail(version, "a key version is a number 1..255")
                versions.append((int(version), table.byte(version)))
        refs[kid] = PsamKeyRef(kid, entry.integer("type", None, 0, 0x1F), entry.byte("id"),
                               entry.text("name", card_key), tuple(sorted(versions)))
    return refs


# --------------------------------------------------------------------------- [hsm_addresses]

#: One HSM logical address, or one per card key version from 1.
HsmAddress = str | tuple[str, ...]


def hsm_addresses_from(t: Table) -> dict[int, HsmAddress]:
    """``[hsm_addresses]``: ``"02" = "0173"`` or ``"04" = ["0094", "0095", "0096"]``; a DF
    key by its name (``"RK1DF06" = "…"``)."""
    out: dict[int, HsmAddress] = {}
    for card_key, value in t.data.items():
        kid = _card_key(t, card_key)
        items = value if isinstance(value, list) else [value]
        if not items or not all(isinstance(a, str) and a for a in items):
            t.fail(card_key, "must be an address (\"0173\") or a list of them, one per "
                   f"key version, got {value!r}")
        for address in items:                    # hex digits, as the HSM request carries them
            Table({card_key: address}, t.origin, t.section).hex(card_key)
        out[kid] = tuple(items) if isinstance(value, list) else value
    return out


# --------------------------------------------------------------------------- [sm2_issue]


@dataclass(frozen=True)
class IssueConfig:
    """``[sm2_issue]``: the issuance commands and their order's options (spec §6.2).

    The sources of each default are written beside the values in ``mohrss-3.0.toml``.
    """

    admin_verify: bytes
    generate: bytes
    export: bytes
    export_le: int
    export_header: int
    cert_chunk: int
    default_admin_pin: str
    #: Two-APDU export as public issuance code does it: ``export`` without Le, then this
    #: command (``80C9828000``, leithergit/Z390Kylin Evolis_Z390_printer.cpp) fetches the key.
    export_fetch: bytes = b""
    #: VERIFY header of the user PIN proof sent before key generation (``00200181``, the
    #: same public code); empty = no user PIN before generation.
    user_verify: bytes = b""
    default_user_pin: str = "123456"
    #: The public-key EF read first (``00A40000020012`` + ``00B0000042``): a card whose EF
    #: is not all zeros already holds a key pair, which is certified instead of replaced.
    key_fid: int | None = None
    key_read_le: int = 66

    @classmethod
    def from_profile(cls, profile: CardProfile) -> IssueConfig:
        if profile.sm2_issue is None:
            raise BadInputError(f"card profile {profile.name} has no [{ISSUE_SECTION}] section: "
                                "it does not say how to issue SM2 keys")
        return profile.sm2_issue

    @classmethod
    def from_table(cls, t: Table) -> IssueConfig:
        t.refuse_unknown({"admin_verify", "generate", "export", "export_le", "export_header",
                          "cert_chunk", "default_admin_pin", "export_fetch", "user_verify",
                          "default_user_pin", "key_fid", "key_read_le"})
        pins = {}
        for key, default in (("default_admin_pin", "12345678"), ("default_user_pin", "123456")):
            pins[key] = t.text(key, default)
            if not (pins[key].isascii() and pins[key].isdigit()):
                t.fail(key, "must be digits 0-9 as text")
        commands = {key: t.hex(key, "") for key in ("generate", "export", "export_fetch")}
        for key in ("generate", "export"):
            if key not in t:
                t.fail(key, "missing")
        for key, command in commands.items():
            if command and len(command) < 4:
                t.fail(key, "must be a command: CLA INS P1 P2 [Lc data] in hex")
        user_verify = t.hex("user_verify", "")
        if user_verify and len(user_verify) != 4:
            t.fail("user_verify", "must be 4 bytes (CLA INS P1 P2) or empty")
        key_fid = t.hex("key_fid", "")
        if key_fid and len(key_fid) != 2:
            t.fail("key_fid", "must be 2 bytes (a file ID) or empty")
        header = t.integer("export_header", 2, 0, 189)
        return cls(t.hex("admin_verify", size=4), commands["generate"], commands["export"],
                   t.integer("export_le", 66, header + 64, 256), header,
                   t.integer("cert_chunk", 240, 1, 255), pins["default_admin_pin"],
                   commands["export_fetch"], user_verify, pins["default_user_pin"],
                   int.from_bytes(key_fid, "big") if key_fid else None,
                   t.integer("key_read_le", 66, header + 64, 256))


# --------------------------------------------------------------------------- [regional_files]

#: SSSE files beyond the national ones (a region's local extension, sscard-spec §2.1: new EFs
#: from EF0C upward) that a profile may describe. Only record files of SIMPLE-TLV records.
_FILE_KEYS = {"fid", "sfi", "zh", "en", "read", "write", "address", "items", "source"}
_ITEM_KEYS = {"tag", "key", "zh", "en", "type", "length"}
#: Formats a regional item may have: the spec's own (codecs.py), not the identifier codecs.
_ITEM_FORMATS = ("an", "cn", "date", "b")


class RecordAddress(StrEnum):
    """How a regional record file's records are named in READ/UPDATE RECORD."""

    NUMBER = "number"          # P1 = record number (P2 …100 / 04 on the current EF)
    IDENTIFIER = "identifier"  # P1 = record identifier = tag (P2 …000 / 00)


@dataclass(frozen=True)
class RegionalFile:
    """``[regional_files.EF0D]``: one local record file of the SSSE, as a profile gives it.

    ``ef`` is the card model's file (access rules, FID, SFI or none: SELECT EF by FID then
    the current EF); ``items`` its data items in record order (record n = item n).
    """

    ef: EfSpec
    items: tuple[DataElement, ...]
    address: RecordAddress
    source: str

    @property
    def name(self) -> str:
        return self.ef.name

    def item(self, tag: int) -> DataElement:
        for el in self.items:
            if el.tag == tag:
                return el
        raise BadInputError(f"SSSE{self.name} has no data item with tag {tag:02X} (the "
                            f"profile gives {', '.join(f'{e.tag:02X}' for e in self.items)})")

    def record_number(self, tag: int) -> int:
        """Record number of item ``tag``: its place in the profile's list, from 1."""
        return self.items.index(self.item(tag)) + 1


def _access_rule(t: Table, key: str) -> Access:
    try:
        return Access.parse(t.text(key))
    except BadInputError as exc:
        t.fail(key, str(exc))


def regional_files_from(t: Table) -> dict[str, RegionalFile]:
    """``[regional_files]``: ``EF0D = { fid = "EF0D", read = "free", write = "key:0D",
    items = [{ tag = "EA", key = "person_id", zh = "人员识别号", type = "an", length = 12 },
    …] }`` (one table per file, named by its EF name)."""
    out: dict[str, RegionalFile] = {}
    for name in t.data:
        f = t.sub(name)
        f.refuse_unknown(_FILE_KEYS)
        fid = int.from_bytes(f.hex("fid", size=2), "big")
        if name.upper() != f"EF{fid & 0xFF:02X}" or fid >> 8 != 0xEF:
            f.fail("fid", f"must be EFxx and match the file's name {name!r}")
        if any(ef.fid == fid for ef in SSSE.efs()):
            f.fail("fid", f"{name} is a national SSSE file, not a regional one")
        sfi = f.byte("sfi") if f.get("sfi", "") != "" else None
        if sfi is not None and not 1 <= sfi <= 30:
            f.fail("sfi", "must be 01..1E, or \"\" (none: SELECT EF by FID first)")
        rows = f.get("items")
        if not isinstance(rows, list) or not rows:
            f.fail("items", "must be a list of { tag, key, zh, en, type, length } tables")
        items: list[DataElement] = []
        for i, row in enumerate(rows, start=1):
            it = Table.of(row, t.origin, f"{f.section}.items.{i}")
            it.refuse_unknown(_ITEM_KEYS)
            fmt = it.choice("type", "an", _ITEM_FORMATS)
            el = DataElement(it.byte("tag"), it.text("key"), it.text("zh"), it.text("en", ""),
                             fmt, it.integer("length", None, 1, 253), f"SSSE{name.upper()}")
            if any(e.tag == el.tag for e in items):
                it.fail("tag", f"{el.tag:02X} is given twice")
            items.append(el)
        ef = EfSpec(name.upper(), fid, sfi, Structure.VARIABLE_RECORDS, f.text("zh"),
                    f.text("en", ""), read=_access_rule(f, "read"),
                    write=_access_rule(f, "write"), tags=tuple(e.tag for e in items))
        out[ef.name] = RegionalFile(ef, tuple(items),
                                    RecordAddress(f.choice("address", "number",
                                                           tuple(RecordAddress))),
                                    f.text("source", ""))
    return out
