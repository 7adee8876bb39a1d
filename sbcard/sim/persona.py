"""Personas: everything that makes one simulated card, in a TOML or JSON file (never pickle).

A persona names a card profile (generation and its access rules), the holder and issuer data
(encoded through the same data-element table the reader decodes with), the PIN and its
counter, keys, and quirks of real cards. Built-in personas live in ``sbcard/sim/personas/``;
all their people and numbers are synthetic.

Raw overrides (``[records]``: ``"EF05.07" = "hex"``) let a persona carry bytes no valid
value produces, such as a card number with a bad check character or a truncated record.

A region's own SSSE record files (the profile's ``[regional_files]``, e.g. Jiangsu EF0D with
``profile = "mohrss-3.0+jiangsu"``) hold the records ``[regional_records]`` gives as raw hex,
in record order: ``EF0D = ["EA0C…", "EB03…"]``. The bytes are written in the persona from
the public evidence (cited there), never encoded by sbcard's reader code.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

from sbcard.apdu.atr import Atr
from sbcard.card.codecs import split_name
from sbcard.card.elements import BY_KEY, element
from sbcard.card.filesystem import (
    MF_FID,
    PIN_MAX_DIGITS,
    PIN_MIN_DIGITS,
    RID_MOHRSS,
    SSSE,
    DfSpec,
    Structure,
)
from sbcard.card.profiles import DEFAULT_PROFILE, CardProfile, load_profile
from sbcard.card.profiles.table import Table
from sbcard.errors import BadInputError, SbcardError
from sbcard.hexutil import parse_hex
from sbcard.sim import auth as sim_auth
from sbcard.sim import faults as sim_faults
from sbcard.sim import pboc as sim_pboc
from sbcard.sim import purse as sim_purse
from sbcard.sim.card_os import Behaviour, PinState, SimCard, SimDF, SimEF
from sbcard.sim.dfs import build_dfs
from sbcard.sim.extras import (
    BankPersona,
    FaultsPersona,
    PkiPersona,
    PursePersona,
    extras_from,
)

ALGORITHM_IDS = {"DES": 0x01, "3DES": 0x01, "SSF33": 0x02, "SM4": 0x03}
MF_SPEC = DfSpec("MF", MF_FID, b"", "主文件", "master file")


@dataclass
class Persona:
    name: str
    description: str
    profile: CardProfile
    atr: bytes
    card: dict[str, Any]
    holder: dict[str, Any]
    pin: dict[str, Any]
    behaviour: Behaviour
    records: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    keys: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    df_records: dict[str, Any] = field(default_factory=dict)   # sbcard.sim.dfs
    regional_records: dict[str, Any] = field(default_factory=dict)
    #: The optional sections, typed and validated (``sbcard.sim.extras``); None: absent.
    pki: PkiPersona | None = None              # [extra.pki]
    purse: PursePersona | None = None          # [extra.purse]
    bank: BankPersona | None = None            # [bank]
    faults: FaultsPersona | None = None        # [faults]

    @property
    def algorithm(self) -> str:
        return str(self.card.get("algorithm", self.profile.algorithm)).upper()

    # -- building the card ----------------------------------------------------------------
    def ssse_fci(self) -> bytes:
        name = SSSE.df_name
        prop = bytes((0x88, 0x01, 0x1E))
        if self.behaviour.fci_algorithm:
            prop += bytes((0x9F, 0x0C, 0x03, 0x86, 0x01, ALGORITHM_IDS[self.algorithm]))
        body = bytes((0x84, len(name))) + name + bytes((0xA5, len(prop))) + prop
        return bytes((0x6F, len(body))) + body

    def record_bytes(self, ef_name: str) -> list[bytearray]:
        ef = SSSE.ef(ef_name)
        values = {**self.card, **self.holder}
        try:
            values.update(_name_values(self.holder.get("name")))
        except BadInputError as exc:
            raise BadInputError(f"persona {self.name}: {exc}") from None
        tags = self.profile.record_tags(ef)
        if ef_name == "EF06" and values.get("name_ext") and 0x4E not in tags:
            raise BadInputError(
                f"persona {self.name}: the name needs 姓名扩展 (tag 4E), which profile "
                f"{self.profile.name} does not have"
            )
        out = []
        for tag in tags:
            override = self.records.get(f"{ef_name}.{tag:02X}")
            if override is not None:
                out.append(bytearray(parse_hex(override, f"persona record {ef_name}.{tag:02X}")))
                continue
            el = element(ef_name, tag)
            value = values.get(el.key)
            if el.key == "card_id" and value is None:
                value = self.card_id()
            try:
                out.append(bytearray(el.encode_record(value)))
            except BadInputError as exc:
                raise BadInputError(f"persona {self.name}: {exc}") from None
        return out

    def _add_regional_files(self, ssse: SimDF) -> None:
        """The profile's regional record files, holding ``[regional_records]``' raw records."""
        for name in self.regional_records:
            if name not in self.profile.regional_files:
                raise BadInputError(f"persona {self.name}: [regional_records] {name}: profile "
                                    f"{self.profile.name} has no such regional file")
        for name, regional in self.profile.regional_files.items():
            ef = regional.ef
            sim_ef = SimEF(ef, ef.read, ef.write)
            rows = self.regional_records.get(name, [])
            if not isinstance(rows, list):
                raise BadInputError(f"persona {self.name}: [regional_records] {name} must be "
                                    "a list of records in hex")
            sim_ef.records = [bytearray(parse_hex(str(r), f"persona {self.name} {name}"))
                              for r in rows]
            ssse.efs[ef.fid] = sim_ef
            if ef.sfi:
                ssse.by_sfi[ef.sfi] = sim_ef

    def card_id(self) -> bytes:
        """卡的识别码: region (3 BCD) ‖ RID D156000005 ‖ serial (4) ‖ auth code (4)."""
        region = str(self.card.get("region", ""))
        serial = str(self.card.get("serial", Atr.parse(self.atr).historical[9:13].hex()))
        auth = str(self.card.get("auth_code", "FFFFFFFF"))
        return parse_hex(region + RID_MOHRSS.hex() + serial + auth, "persona card_id")

    def build_card(self) -> SimCard:
        mf = SimDF.build(MF_SPEC, None, bytes.fromhex("6F0483023F00"))
        ssse = SimDF.build(SSSE, self.profile, self.ssse_fci())
        for ef in ssse.efs.values():
            if ef.spec.structure is Structure.VARIABLE_RECORDS:
                ef.records = self.record_bytes(ef.spec.name)
            elif ef.spec.name in self.files:
                content = parse_hex(self.files[ef.spec.name], f"persona file {ef.spec.name}")
                ef.data[: len(content)] = content
        self._add_regional_files(ssse)
        ssse.blocked = bool(self.card.get("application_blocked", False))
        pin_value = self.pin.get("value")
        max_tries = int(self.pin.get("max_tries", 3))
        pin = PinState(None if pin_value is None else str(pin_value),
                       int(self.pin.get("tries", max_tries)), max_tries)
        apps = {SSSE.df_name: ssse}
        for df in build_dfs(self.profile.dfs, self.df_records, self.name):
            df.parent = ssse
            apps[df.spec.df_name] = df
        card = SimCard(self.atr, mf, apps, pin, self.behaviour,
                       algorithm_id=ALGORITHM_IDS[self.algorithm], profile=self.profile)
        card.card_blocked = bool(self.card.get("card_blocked", False))
        card.persona = self
        _install_extensions(card, self)
        return card


def _install_pki(card: SimCard, persona: Persona) -> None:
    """The PKI application (``sbcard.sim.pki_app``), on a card whose profile has
    ``[sm2_auth]`` only, so a 2.0 card's first call loads none of it. Its SM2 material
    (``sbcard.sim.pki``: SM2, X.509, asn1crypto) loads later still, at the first PKI command
    or read of its files: a 3.0 card's iReadCardBas never does (issue 13; both lazy imports
    are in tests/test_layers.py LAZY_IMPORTS)."""
    if persona.profile.sm2_auth is None:
        return
    from sbcard.sim import pki_app

    pki_app.install(card, persona)


#: The optional simulator modules (authentication, PBOC, PKI, purse, faults): each installs
#: its command handlers and typed state on a freshly built card, in this order. A static
#: tuple of functions, imported like any other module: no registry to mutate.
EXTENSIONS: tuple[Callable[[SimCard, Persona], None], ...] = (
    sim_auth.install, sim_pboc.install, _install_pki, sim_purse.install,
    sim_faults.install_from_persona)


def _install_extensions(card: SimCard, persona: Persona) -> None:
    for install in EXTENSIONS:
        install(card, persona)


def _name_values(name: str | None) -> dict[str, str]:
    if not name:
        return {}
    head, tail = split_name(name)
    return {"name": head, "name_ext": tail}


#: ATR frames around the 13 historical bytes, by ``[atr_parts] form``.
#: contact: ``3B 6D 00 00`` (TB1=00, TC1=00, T=0, no TCK; part 2 §8.3, the public traces).
#: class_b: T0=ED with TB1=00 TC1=00 TD1=80 TD2=1F TA3=42 — class A/B and clock stop
#: announced through T=15 (part 2 §8.3.3, table 8), so a TCK ends the ATR (ISO 7816-3 §8.2.5).
#: contactless: what a PC/SC reader synthesises for an ISO 14443-4 card (PC/SC part 3
#: §3.1.3.2.3): ``3B 8D 80 01`` ‖ historical bytes ‖ TCK, protocol T=1.
ATR_FORMS = {"contact": ("3B6D0000", False), "class_b": ("3BED0000801F42", True),
             "contactless": ("3B8D8001", True)}


def build_atr(card: dict[str, Any], atr_parts: dict[str, Any]) -> bytes:
    """The ATR frame ``form`` around 13 historical bytes laid out as part 2 table 16 says."""
    region = str(card.get("region", "000000"))
    hist = (str(atr_parts.get("chip_provider", "0081"))
            + str(atr_parts.get("cos", "544C00"))
            + str(atr_parts.get("card_maker", "8684"))
            + region[:4]
            + str(card.get("serial", "00000001")))
    form = str(atr_parts.get("form", "contact"))
    if form not in ATR_FORMS:
        raise BadInputError(f"persona ATR form {form!r}: choose {', '.join(ATR_FORMS)}")
    prefix, with_tck = ATR_FORMS[form]
    historical = parse_hex(hist, "persona ATR")
    if len(historical) != 13:
        raise BadInputError(f"persona ATR parts give {len(historical)} historical bytes, not 13")
    raw = parse_hex(prefix, "ATR frame") + historical
    if with_tck:
        tck = 0
        for b in raw[1:]:
            tck ^= b
        raw += bytes([tck])
    return raw


BUILTIN_DIR = "personas"


def builtin_personas() -> list[str]:
    folder = resources.files(__package__).joinpath(BUILTIN_DIR)
    return sorted(p.name.rsplit(".", 1)[0] for p in folder.iterdir()
                  if p.name.endswith((".toml", ".json")))


def _read_mapping(text: str, origin: str, is_json: bool) -> dict[str, Any]:
    try:
        return json.loads(text) if is_json else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise BadInputError(f"persona {origin}: {exc}") from None


def load_persona(name_or_path: str) -> Persona:
    """A built-in persona by name (``demo``) or a ``.toml`` / ``.json`` file."""
    data, origin = _load_mapping(name_or_path)
    return persona_from_mapping(data, origin)


def _load_mapping(name_or_path: str, depth: int = 0) -> tuple[dict[str, Any], str]:
    """The persona's mapping with ``extends = "base"`` resolved (sections merged key by key)."""
    path = Path(name_or_path)
    if path.suffix in (".toml", ".json") and path.is_file():
        data = _read_mapping(path.read_text("utf-8"), str(path), path.suffix == ".json")
        origin = str(path)
    else:
        folder = resources.files(__package__).joinpath(BUILTIN_DIR)
        for suffix in (".toml", ".json"):
            entry = folder.joinpath(name_or_path + suffix)
            if entry.is_file():
                data = _read_mapping(entry.read_text("utf-8"), name_or_path, suffix == ".json")
                origin = name_or_path
                break
        else:
            raise BadInputError(
                f"no persona {name_or_path!r}: built-in ones are "
                f"{', '.join(builtin_personas())}, or give a .toml/.json file"
            )
    return _resolve_extends(data, origin, depth), origin


def _resolve_extends(data: dict[str, Any], origin: str, depth: int = 0) -> dict[str, Any]:
    """``extends = "base"``: the base persona's sections, overridden key by key."""
    data = dict(data)
    base = data.pop("extends", None)
    if base is None:
        return data
    if depth >= 4:
        raise BadInputError(f"persona {origin}: 'extends' chain is too deep")
    merged, _ = _load_mapping(str(base), depth + 1)
    for key, value in data.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


_TOP_KEYS = {"name", "description", "profile", "atr", "atr_parts", "card", "holder", "pin",
             "behaviour", "records", "files", "keys", "bank", "faults", "df_records",
             "regional_records"}


_SECTIONS = ("atr_parts", "card", "holder", "pin", "behaviour", "records", "files", "keys",
             "extra", "df_records", "regional_records")
_MAX_TEXT = 64          # a persona's name


def persona_from_mapping(data: dict[str, Any], origin: str = "<persona>") -> Persona:
    """A persona from its mapping; anything wrong in it is one BadInputError line naming the
    persona (never a TypeError, OverflowError or OSError from deep in the card model)."""
    try:
        return _persona_from_mapping(data, origin)
    except SbcardError:
        raise
    except (TypeError, ValueError, KeyError, IndexError, OverflowError, AttributeError,
            OSError) as exc:
        first = (str(exc).splitlines() or [""])[0][:120]
        raise BadInputError(f"persona {origin}: invalid value ({type(exc).__name__}: "
                            f"{first})") from None


def _check_shape(data: dict[str, Any], origin: str) -> None:
    """Types and ranges first, with messages that name the field."""
    where = f"persona {origin}"
    for section in _SECTIONS:
        if section in data and not isinstance(data[section], dict):
            raise BadInputError(f"{where}: [{section}]: must be a table, got "
                                f"{type(data[section]).__name__}")
    for key in ("name", "description", "profile", "atr"):
        value = data.get(key)
        if value is not None and not isinstance(value, str):
            raise BadInputError(f"{where}: {key}: must be text, got {type(value).__name__}")
    name = str(data.get("name", ""))
    if len(name) > _MAX_TEXT or not name.isprintable():
        raise BadInputError(f"{where}: name: must be one line of at most {_MAX_TEXT} "
                            "characters")
    if not str(data.get("profile", "")).isprintable():
        raise BadInputError(f"{where}: profile: must be one line (a name or a file)")
    for section in ("card", "holder"):
        for key, value in data.get(section, {}).items():
            if key in ("application_blocked", "card_blocked"):
                if not isinstance(value, bool):
                    raise BadInputError(f"{where}: [{section}] {key}: must be true or false, "
                                        f"got {value!r}")
            elif not isinstance(value, str):
                raise BadInputError(f"{where}: [{section}] {key}: must be text (quoted), got "
                                    f"{type(value).__name__}")
    pin = data.get("pin", {})
    for key in ("tries", "max_tries"):
        value = pin.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                  or not 0 <= value <= 15):
            raise BadInputError(f"{where}: [pin] {key}: must be a whole number 0-15 (the "
                                f"card says tries left in one hex digit), got {value!r}")
    if isinstance(pin.get("tries"), int) and pin.get("tries", 0) > pin.get("max_tries", 15):
        raise BadInputError(f"{where}: [pin] tries: is more than max_tries")
    value = pin.get("value")
    if value is not None and not (isinstance(value, str) and value.isascii() and value.isdigit()
                                  and PIN_MIN_DIGITS <= len(value) <= PIN_MAX_DIGITS):
        # part 5 §6.14: VERIFY Lc 02–08 (cn), so 4–16 digits, as every other PIN check
        raise BadInputError(f"{where}: [pin] value: must be {PIN_MIN_DIGITS}-{PIN_MAX_DIGITS} "
                            "digits 0-9 as text")


def _behaviour(data: dict[str, Any], origin: str) -> Behaviour:
    """``[behaviour]``: each key a field of :class:`Behaviour`, of its default's type."""
    t = Table.of(data.get("behaviour", {}), f"persona {origin}", "behaviour")
    defaults = Behaviour()
    t.refuse_unknown(f.name for f in fields(Behaviour))
    values: dict[str, Any] = {}
    for key in t.data:
        if isinstance(getattr(defaults, key), bool):
            value = t.get(key)
            if not isinstance(value, bool):
                t.fail(key, f"must be true or false, got {value!r}")
            values[key] = value
        else:                                   # a status word (sfi_refused_sw)
            value = t.get(key)
            if (not isinstance(value, int) or isinstance(value, bool)
                    or not 0x6000 <= value <= 0x9FFF):
                t.fail(key, f"must be a status word 0x6000..0x9FFF, got {value!r}")
            values[key] = value
    return Behaviour(**values)


def _persona_from_mapping(data: dict[str, Any], origin: str) -> Persona:
    if not isinstance(data, dict):
        raise BadInputError(f"persona {origin}: not a table of sections")
    data = _resolve_extends(data, origin)
    unknown = set(data) - _TOP_KEYS - {"extra"}
    if unknown:
        raise BadInputError(f"persona {origin}: unknown section(s) {', '.join(sorted(unknown))}")
    card = dict(data.get("card", {})) if isinstance(data.get("card", {}), dict) else {}
    holder = dict(data.get("holder", {})) if isinstance(data.get("holder", {}), dict) else {}
    for section, values in (("card", card), ("holder", holder)):
        for key in values:
            if key not in BY_KEY and key not in _CARD_EXTRA:
                raise BadInputError(f"persona {origin}: [{section}] {key}: unknown field (not "
                                    "a data element of sbcard.card.elements nor a card fact)")
    _check_shape(data, origin)
    profile = load_profile(str(data.get("profile", DEFAULT_PROFILE)))
    behaviour = _behaviour(data, origin)
    extras = extras_from(data, f"persona {origin}")
    atr = (parse_hex(data["atr"], f"persona {origin} atr") if "atr" in data
           else build_atr(card, data.get("atr_parts", {})))
    persona = Persona(
        name=str(data.get("name", Path(origin).stem)),
        description=str(data.get("description", "")),
        profile=profile,
        atr=atr,
        card=card,
        holder=holder,
        pin=dict(data.get("pin", {"value": "123456", "tries": 3, "max_tries": 3})),
        behaviour=behaviour,
        records={k.upper(): v for k, v in data.get("records", {}).items()},
        files={k.upper(): v for k, v in data.get("files", {}).items()},
        keys=dict(data.get("keys", {})),
        df_records=dict(data.get("df_records", {})),
        regional_records={k.upper(): v for k, v in data.get("regional_records", {}).items()},
        source=origin,
        pki=extras.pki, purse=extras.purse, bank=extras.bank, faults=extras.faults,
    )
    if persona.algorithm not in ALGORITHM_IDS:
        raise BadInputError(f"persona {origin}: unknown algorithm {persona.algorithm!r}")
    persona.build_card()  # fail now, with the persona named, rather than at first APDU
    return persona


#: Persona fields that are not data elements but shape the card.
_CARD_EXTRA = {"region", "serial", "auth_code", "algorithm", "application_blocked",
               "card_blocked"}
