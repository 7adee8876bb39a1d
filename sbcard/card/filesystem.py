"""The card's file system described as data (spec §2): MF → SSSE → EF05/EF06/EF07/EF08.

One description drives reading, personalisation, the simulator's image and the docs. Access
rules are written the way the spec tables write them and parsed into ``Access`` objects:
``free``, ``never``, ``key:0A`` (external authentication with card key 0A), ``pin``,
alternatives joined by ``|`` (``pin|key:8E`` = "PIN 或 RK1DF01") and both at once joined by
``&`` (``pin&key:84`` = "PIN & RK1DF04", 人社信息函〔2012〕37号 table 7). The DF01–DF07 files
are in ``sbcard.card.dfs``.

Generation differences (EF06 read control on 3.0 cards) are not code: a ``CardProfile``
(``sbcard.card.profiles``) overrides access rules by file name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from sbcard.errors import BadInputError


class Structure(Enum):
    DF = "DF"
    VARIABLE_RECORDS = "variable-length records"   # SIMPLE-TLV, record id = tag
    FIXED_RECORDS = "fixed-length records"
    CYCLIC = "cyclic records"
    TRANSPARENT = "transparent"


@dataclass(frozen=True)
class Condition:
    kind: str                # "pin", "key" or "pin&key" (both: PIN verified and the key)
    key_id: int | None = None

    def __str__(self) -> str:
        if self.kind == "pin":
            return "pin"
        return f"{'pin&' if self.kind == 'pin&key' else ''}key:{self.key_id:02X}"


@dataclass(frozen=True)
class Access:
    """Alternatives; empty = free. ``never`` is a single impossible condition."""

    any_of: tuple[Condition, ...] = ()
    never: bool = False

    @property
    def free(self) -> bool:
        return not self.any_of and not self.never

    def key_ids(self) -> tuple[int, ...]:
        return tuple(c.key_id for c in self.any_of
                     if c.kind in ("key", "pin&key") and c.key_id is not None)

    @property
    def needs_pin(self) -> bool:
        """Some alternative asks for the PIN (alone or with a key)."""
        return any(c.kind in ("pin", "pin&key") for c in self.any_of)

    def __str__(self) -> str:
        if self.never:
            return "never"
        return "|".join(str(c) for c in self.any_of) or "free"

    @classmethod
    def parse(cls, text: str) -> Access:
        text = text.strip().lower()
        if text in ("free", "", "无"):
            return cls()
        if text == "never":
            return cls(never=True)
        conds = []
        for part in text.split("|"):
            part = part.strip()
            both = part.startswith("pin&")
            if both:
                part = part[4:]
            if part == "pin" and not both:
                conds.append(Condition("pin"))
            elif part.startswith("key:"):
                try:
                    key_id = int(part[4:], 16)
                except ValueError:
                    raise BadInputError(f"access rule {text!r}: {part!r} is not key:<hex id>") \
                        from None
                conds.append(Condition("pin&key" if both else "key", key_id))
            else:
                raise BadInputError(f"access rule {text!r}: unknown condition {part!r}")
        return cls(tuple(conds))


@dataclass(frozen=True)
class EfSpec:
    name: str                 # "EF05"
    fid: int
    sfi: int | None
    structure: Structure
    zh: str
    en: str
    read: Access
    write: Access
    size: int = 0             # transparent files: size in bytes
    tags: tuple[int, ...] = ()  # record files: data element tags in creation order (2.0/3.0)
    record_size: int = 0      # cyclic / fixed-length record files: bytes per record
    record_count: int = 0     # cyclic / fixed-length record files: records the file holds

    @property
    def record_sfi(self) -> int:
        """The SFI that READ/UPDATE RECORD address this file by (a model error if none)."""
        if self.sfi is None:
            raise ValueError(f"{self.name} has no short file identifier")
        return self.sfi


@dataclass(frozen=True)
class DfSpec:
    name: str                 # "SSSE", "DF01"
    fid: int | None           # None: select by name only (the spec fixes the name, not the FID)
    df_name: bytes            # name / AID used with SELECT by name
    zh: str
    en: str
    children: tuple[EfSpec | DfSpec, ...] = field(default=())

    def child(self, name: str) -> EfSpec | DfSpec:
        for c in self.children:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no file {name}")

    def ef(self, name: str) -> EfSpec:
        """The elementary file ``name`` (KeyError for a DF or an unknown name)."""
        found = self.child(name)
        if not isinstance(found, EfSpec):
            raise KeyError(f"{self.name}/{name} is a DF, not an EF")
        return found

    def efs(self) -> tuple[EfSpec, ...]:
        return tuple(c for c in self.children if isinstance(c, EfSpec))


MF_FID = 0x3F00
RID_MOHRSS = bytes.fromhex("D156000005")
SSSE_NAME = "sx1.sh.社会保障".encode("gbk")
PBOC_DDF_NAME = b"1PAY.SYS.DDF01"      # PSE, contact directory (JR/T 0025; part 5 §6.11)
PBOC_PPSE_NAME = b"2PAY.SYS.DDF01"     # PPSE, contactless directory (JR/T 0025.12)
PBOC_DEBIT_AID = bytes.fromhex("A000000333010101")

#: PIN length in digits: VERIFY carries 02–08 bytes of cn (part 5 §6.14), i.e. up to 16
#: digits; 4 is the spec's minimum for CHANGE PIN.
PIN_MIN_DIGITS, PIN_MAX_DIGITS = 4, 16

#: Card key IDs referenced by EXTERNAL AUTHENTICATE P2 (spec §5.2).
KEY_IRK = 0x00
KEY_STK = 0x02
KEY_UKSSSE = 0x04
KEY_BK = 0x05
KEY_PUK = 0x06
KEY_RKSSSE = 0x0A

_RK = Access.parse(f"key:{KEY_RKSSSE:02X}")
_UK = Access.parse(f"key:{KEY_UKSSSE:02X}")

EF05 = EfSpec("EF05", 0xEF05, 0x05, Structure.VARIABLE_RECORDS, "发卡机构数据文件",
              "card issuer data", read=Access(), write=_UK,
              tags=(0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07))
EF06 = EfSpec("EF06", 0xEF06, 0x06, Structure.VARIABLE_RECORDS, "持卡人基本信息文件",
              "cardholder basic information", read=Access(), write=_UK,
              tags=(0x08, 0x09, 0x4E, 0x0A, 0x0B, 0x0C, 0x0D))
EF07 = EfSpec("EF07", 0xEF07, 0x07, Structure.TRANSPARENT, "指纹数据文件", "fingerprint data",
              read=_RK, write=_UK, size=0x300)
EF08 = EfSpec("EF08", 0xEF08, 0x08, Structure.TRANSPARENT, "照片信息文件", "photo",
              read=_RK, write=_UK, size=0x1000)

SSSE = DfSpec("SSSE", None, SSSE_NAME, "社会保障系统环境", "social security system environment",
              children=(EF05, EF06, EF07, EF08))

#: Tags of the 1.0 layout of EF06 (no name extension 4E), for cards read by record number.
EF06_TAGS_V1 = (0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D)

#: PBOC debit application (JR/T 0025) sharing the chip; only what reading the bank card
#: number needs. Records are EMV templates (tag 70) found through the AFL of GPO.
PBOC_RECORDS = EfSpec("EF01", 0xEF01, 0x01, Structure.FIXED_RECORDS, "金融应用记录文件",
                      "PBOC application records", read=Access(), write=Access(never=True))
PBOC_DEBIT = DfSpec("PBOC", None, PBOC_DEBIT_AID, "金融借记应用", "PBOC debit application",
                    children=(PBOC_RECORDS,))
