"""The optional persona sections, typed and validated: ``[extra.pki]``, ``[extra.purse]``,
``[bank]`` and ``[faults]``.

A persona file is read once (``sbcard.sim.persona``); each of these sections becomes a frozen
dataclass here, so the simulator modules that use them (``sim/pki_app.py``, ``sim/purse.py``,
``sim/pboc.py``, ``sim/faults.py``) read typed values and never a raw TOML table. Every error
is one line in the style of the card profile loader, ``persona FILE: [section] key: what is
wrong``, through the same :class:`~sbcard.card.profiles.table.Table`; unknown keys are refused.

What the values mean, and which are assumptions, is written where they are used: the PKI
application in ``sim/pki_app.py`` (docs/sm2-authentication.md), the medical purse in
``sim/purse.py`` (part 5 §7, part 7 §12; docs/spec-uncertainties.md), the debit application in
``sim/pboc.py``, fault injection in ``sim/faults.py`` (docs/simulator.md).
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from sbcard.apdu import tlv
from sbcard.apdu.sw import SW
from sbcard.card.filesystem import PBOC_DEBIT_AID
from sbcard.card.profiles.table import Table
from sbcard.hexutil import is_ascii_digits

PKI_SECTION = "extra.pki"
PURSE_SECTION = "extra.purse"
BANK_SECTION = "bank"
FAULTS_SECTION = "faults"
#: The tables a persona's ``[extra]`` may hold.
EXTRA_KEYS = ("pki", "purse")



def _flag(t: Table, key: str, default: bool) -> bool:
    value = t.get(key, default)
    if not isinstance(value, bool):
        t.fail(key, f"must be true or false, got {value!r}")
    return value


def _date(t: Table, key: str) -> date | None:
    """A TOML date (``2020-01-01``) or the same as text; None when absent."""
    value = t.get(key)
    if value is None or isinstance(value, date):      # datetime is a date too
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    t.fail(key, f"must be a date YYYY-MM-DD, got {value!r}")


def _digits(t: Table, key: str, default: str, low: int, high: int) -> str:
    value = t.get(key, default)
    if not (isinstance(value, str) and is_ascii_digits(value) and low <= len(value) <= high):
        count = f"{low}" if low == high else f"{low}-{high}"
        t.fail(key, f"must be {count} digits 0-9 as text, got {value!r}")
    return value


def _number(t: Table, key: str, low: float, high: float) -> float | None:
    value = t.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        t.fail(key, f"must be a number {low:g}..{high:g}, got {value!r}")
    return float(value)


def _hex_mask(t: Table, key: str) -> str | None:
    """A command prefix in hex, ``?`` for any digit (``00B2``, ``00A4 04 00``, ``80??``)."""
    value = t.get(key)
    if value is None:
        return None
    text = "".join(value.split()).upper() if isinstance(value, str) else ""
    if not text or len(text) % 2 or any(ch not in string.hexdigits + "?" for ch in text):
        t.fail(key, f"must be a command prefix in hex (whole bytes, ? for any digit), got "
                    f"{value!r}")
    return text


# --------------------------------------------------------------------------- [extra.pki]


@dataclass(frozen=True)
class PkiPersona:
    """``[extra.pki]``: the simulated PKI application (``sim/pki_app.py``)."""

    enabled: bool = True
    #: The card's SM2 private key (32 bytes); None: derived from the persona.
    key: bytes | None = None
    #: Certificate validity; None: the persona's issue / expiry dates.
    not_before: date | None = None
    not_after: date | None = None
    #: A certificate in EF 0018; ``key_pair``: a key pair (EF 0012 not all zeros).
    issued: bool = True
    key_pair: bool = True
    admin_pin: str = "12345678"
    #: Set: signing and key generation need this PKI user PIN verified.
    user_pin: str | None = None

    @classmethod
    def from_table(cls, t: Table) -> PkiPersona:
        t.refuse_unknown(("enabled", "key", "not_before", "not_after", "issued", "key_pair",
                          "admin_pin", "user_pin"))
        issued = _flag(t, "issued", True)
        key_pair = _flag(t, "key_pair", issued)
        if issued and not key_pair:
            t.fail("issued", "true needs a key pair (key_pair = true)")
        return cls(enabled=_flag(t, "enabled", True),
                   key=t.hex("key", size=32) if "key" in t else None,
                   not_before=_date(t, "not_before"), not_after=_date(t, "not_after"),
                   issued=issued, key_pair=key_pair,
                   admin_pin=_digits(t, "admin_pin", "12345678", 4, 16),
                   user_pin=(None if t.get("user_pin") is None
                             else _digits(t, "user_pin", "", 4, 16)))


# --------------------------------------------------------------------------- [extra.purse]


@dataclass(frozen=True)
class PursePersona:
    """``[extra.purse]``: the DF04 offline medical purse (``sim/purse.py``); amounts in fen."""

    cia: int = 0                       # CIA 余额
    self_paid_total: int = 0           # 年度个人自付累计金额
    pool_paid_total: int = 0           # 年度统筹基金支付累计金额
    pay_year: int = 2026
    starting_day: bytes = b"\x01\x01"  # mmdd, BCD
    seq: int = 0                       # 医疗消费交易序号 of the next purchase
    key_index: int = 1
    key_version: int = 1
    dpk: bytes | None = None           # None: derived from the persona
    dtk: bytes | None = None
    purchase_type: int = 0x06

    @classmethod
    def from_table(cls, t: Table) -> PursePersona:
        t.refuse_unknown(("cia", "self_paid_total", "pool_paid_total", "pay_year",
                          "starting_day", "seq", "key_index", "key_version", "dpk", "dtk",
                          "purchase_type"))
        day = t.hex("starting_day", "0101", 2)
        if not _is_mmdd(day):
            t.fail("starting_day", f"must be a day mmdd (BCD), got {day.hex()!r}")
        amount = 0xFFFFFFFF             # 4-byte amounts (part 5 table 60)
        return cls(cia=t.integer("cia", 0, 0, amount),
                   self_paid_total=t.integer("self_paid_total", 0, 0, amount),
                   pool_paid_total=t.integer("pool_paid_total", 0, 0, amount),
                   pay_year=t.integer("pay_year", 2026, 0, 9999),
                   starting_day=day,
                   seq=t.integer("seq", 0, 0, 0xFFFF),
                   key_index=t.integer("key_index", 1, 0, 0xFF),
                   key_version=t.integer("key_version", 1, 0, 0xFF),
                   dpk=t.hex("dpk", size=16) if "dpk" in t else None,
                   dtk=t.hex("dtk", size=16) if "dtk" in t else None,
                   purchase_type=t.byte("purchase_type", "06"))


def _is_mmdd(day: bytes) -> bool:
    text = day.hex()
    return text.isdigit() and 1 <= int(text[:2]) <= 12 and 1 <= int(text[2:]) <= 31


# --------------------------------------------------------------------------- [bank]


@dataclass(frozen=True)
class BankPersona:
    """``[bank]``: the PBOC debit application beside the social security one (``sim/pboc.py``)."""

    pan: str
    expiry: str                        # YYMMDD
    aid: bytes = PBOC_DEBIT_AID
    pdol: bytes = b""
    pdol_length: int = 0               # what the PDOL asks for, in bytes
    gpo_sw: int = SW.OK                  # GET PROCESSING OPTIONS answers this (9000: the AIP/AFL)
    record_sfi: int = 1
    pse: bool = False                  # a contact directory 1PAY.SYS.DDF01 lists the AID
    ppse: bool = False                 # a contactless directory 2PAY.SYS.DDF01 lists it

    @classmethod
    def from_table(cls, t: Table) -> BankPersona:
        t.refuse_unknown(("pan", "expiry", "aid", "pdol", "gpo_sw", "record_sfi", "pse",
                          "ppse"))
        pan = _digits(t, "pan", "", 12, 19)
        expiry = _digits(t, "expiry", "", 6, 6)
        pdol = t.hex("pdol", "")
        try:
            pdol_length = sum(length for _tag, length in tlv.parse_dol(pdol))
        except tlv.TlvError as exc:
            t.fail("pdol", str(exc))
        aid = t.hex("aid", PBOC_DEBIT_AID.hex())
        if not 5 <= len(aid) <= 16:
            t.fail("aid", f"must be 5-16 bytes (ISO 7816-4 AID), got {len(aid)}")
        return cls(pan=pan, expiry=expiry, aid=aid, pdol=pdol, pdol_length=pdol_length,
                   gpo_sw=int.from_bytes(t.hex("gpo_sw", "9000", 2), "big"),
                   record_sfi=t.integer("record_sfi", 1, 1, 10),
                   pse=_flag(t, "pse", False), ppse=_flag(t, "ppse", False))


# --------------------------------------------------------------------------- [faults]


@dataclass(frozen=True)
class FaultAnswer:
    """``[[faults.answer]]``: commands starting with ``match`` get ``data`` ‖ ``sw``."""

    sw: int
    match: str | None = None           # None: every command
    data: bytes = b""
    times: int | None = None           # None: every time


@dataclass(frozen=True)
class FaultsPersona:
    """``[faults]`` (and ``sbcard sim serve`` fault options): faults from power-on."""

    tear_at: int | None = None         # the n-th command tears the card (0 or absent: none)
    tear_on: str | None = None         # the first command with this prefix tears it
    delay_ms: float | None = None      # every answer this late
    answer: tuple[FaultAnswer, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.tear_at or self.tear_on or self.delay_ms or self.answer)

    def adding(self, more: FaultsPersona) -> FaultsPersona:
        """These faults with ``more`` on top (``sbcard sim serve`` options over the persona's
        ``[faults]``): ``more``'s tear and delay where it sets them, both lists of answers."""
        return FaultsPersona(tear_at=more.tear_at or self.tear_at,
                             tear_on=more.tear_on or self.tear_on,
                             delay_ms=more.delay_ms or self.delay_ms,
                             answer=self.answer + more.answer)

    @classmethod
    def from_table(cls, t: Table) -> FaultsPersona:
        t.refuse_unknown(("tear_at", "tear_on", "delay_ms", "answer"))
        rules = t.get("answer", [])
        if not isinstance(rules, list):
            t.fail("answer", f"must be a list of tables ([[faults.answer]]), got {rules!r}")
        answers = []
        for n, rule in enumerate(rules, start=1):
            r = Table.of(rule, t.origin, f"{t.section}.answer.{n}")
            r.refuse_unknown(("match", "sw", "data", "times"))
            answers.append(FaultAnswer(
                sw=int.from_bytes(r.hex("sw", size=2), "big"), match=_hex_mask(r, "match"),
                data=r.hex("data", ""),
                times=r.integer("times", None, 1, 1 << 31) if "times" in r else None))
        tear_at = t.integer("tear_at", 0, 0, 1 << 31) or None
        return cls(tear_at=tear_at, tear_on=_hex_mask(t, "tear_on"),
                   delay_ms=_number(t, "delay_ms", 0, 60_000) or None, answer=tuple(answers))


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class PersonaExtras:
    """The optional sections of one persona, validated (None: the section is absent)."""

    pki: PkiPersona | None = None
    purse: PursePersona | None = None
    bank: BankPersona | None = None
    faults: FaultsPersona | None = None


def extras_from(data: Mapping[str, Any], origin: str) -> PersonaExtras:
    """The optional sections of a persona mapping; ``origin`` as the persona's errors name it
    (``persona FILE``)."""
    extra = Table.of(data.get("extra", {}), origin, "extra")
    extra.refuse_unknown(EXTRA_KEYS)

    def section(value: object, name: str) -> Table | None:
        return None if value is None else Table.of(value, origin, name)

    pki = section(extra.get("pki"), PKI_SECTION)
    purse = section(extra.get("purse"), PURSE_SECTION)
    bank = section(data.get("bank"), BANK_SECTION)
    faults = section(data.get("faults"), FAULTS_SECTION)
    return PersonaExtras(
        pki=PkiPersona.from_table(pki) if pki is not None else None,
        purse=PursePersona.from_table(purse) if purse is not None else None,
        # an empty [bank] table is no debit application (as before: ``if not bank``)
        bank=BankPersona.from_table(bank) if bank is not None and bank.data else None,
        faults=FaultsPersona.from_table(faults) if faults is not None else None,
    )

