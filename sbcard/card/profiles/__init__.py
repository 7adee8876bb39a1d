"""Card profiles: what differs between card generations and regions, kept as TOML data.

Where the public spec leaves something open (EF06 read control on 3.0 cards, SM2 commands,
SM4 diversification), the profile file states the assumption next to the value. Code reads
profiles; it never special-cases a generation by itself.

One loader (:func:`load_profile`) validates every section of a profile file into typed,
frozen data (``sections.py``), so code reads ``profile.psam_keys`` or ``profile.sm2_auth``,
never a raw TOML table. Every error is one line, ``card profile FILE: [section] key: what is
wrong`` (``table.py``); unknown sections and keys are refused. :func:`profile_for` picks the
built-in profile of a card generation; :data:`DEFAULT_PROFILE` is the one used when nothing
tells the generation.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from sbcard.card.codes import SPEC_VERSION, spec_version_key
from sbcard.card.codes import algorithm as algorithm_code
from sbcard.card.dfs import DF_BY_NAME
from sbcard.card.elements import elements_of
from sbcard.card.filesystem import SSSE, Access, EfSpec
from sbcard.card.profiles.sections import (
    ISSUE_SECTION,
    SECTION,
    SIGN_SECTION,
    HsmAddress,
    IssueConfig,
    PsamKeyRef,
    ReadConfig,
    RegionalFile,
    Sm2AuthConfig,
    hsm_addresses_from,
    pki_sign_from,
    psam_keys_from,
    regional_files_from,
)
from sbcard.card.profiles.table import Table
from sbcard.errors import BadInputError

BUILTIN = ("mohrss-1.0", "mohrss-2.0", "mohrss-3.0")
#: Regional overlays shipped with sbcard (``region-NAME.toml``): what a region adds to a
#: generation's profile, named after it with ``+``: ``mohrss-3.0+jiangsu``.
REGIONS = ("jiangsu",)
#: What an overlay may give: the region's own files and the keys that guard them.
OVERLAY_KEYS = ("name", "description", "regional_files", "psam_keys", "hsm_addresses")
#: The profile used when nothing tells the card's generation (a persona without ``profile``,
#: a script or batch without a card read yet, the HSM's address table, the PSAM key map).
DEFAULT_PROFILE = "mohrss-2.0"
#: The first generation whose profile describes the PKI application (``[sm2_auth]``,
#: ``[pki_sign]``, ``[sm2_issue]``): what SM2 commands use when the card's profile has none.
PKI_GENERATION = "3.0"
#: The card algorithm names a profile may give (the SSSE FCI's 9F0C ids 01/02/03).
ALGORITHMS = ("DES", "3DES", "SSF33", "SM4")


@dataclass(frozen=True)
class CardProfile:
    name: str
    generation: str
    description: str
    algorithm: str
    ef06_tags: tuple[int, ...]
    access: Mapping[str, Mapping[str, Access]] = field(default_factory=dict)
    #: ``[read]``: how reads name the file first.
    read: ReadConfig = field(default_factory=ReadConfig)
    #: ``[psam_keys]``: card key ID → the PSAM key that diversifies it.
    psam_keys: Mapping[int, PsamKeyRef] = field(default_factory=dict)
    #: ``[hsm_addresses]``: card key ID → HSM logical address (or one per key version).
    hsm_addresses: Mapping[int, HsmAddress] = field(default_factory=dict)
    #: ``key_version``: the card key version authentication names (None: the default key).
    key_version: int | None = None
    #: ``dfs``: the application DFs under the SSSE the card carries (``sbcard.card.dfs``).
    dfs: tuple[str, ...] = ()
    #: ``[sm2_auth]``: the PKI application and its authentication command (3.0 cards).
    sm2_auth: Sm2AuthConfig | None = None
    #: ``[pki_sign]`` over ``[sm2_auth]``: the data-signing command.
    pki_sign: Sm2AuthConfig | None = None
    #: ``[sm2_issue]``: issuing the card's SM2 key pair and certificate.
    sm2_issue: IssueConfig | None = None
    #: ``[regional_files]``: the region's own SSSE record files (EF0D in Jiangsu), by name.
    regional_files: Mapping[str, RegionalFile] = field(default_factory=dict)
    #: Where the profile came from (``card profile mohrss-3.0.toml``), for messages.
    origin: str = field(default="", compare=False)

    def read_access(self, ef: EfSpec) -> Access:
        return self.access.get(ef.name, {}).get("read", ef.read)

    def write_access(self, ef: EfSpec) -> Access:
        return self.access.get(ef.name, {}).get("write", ef.write)

    def record_tags(self, ef: EfSpec) -> tuple[int, ...]:
        return self.ef06_tags if ef.name == "EF06" else ef.tags


# --------------------------------------------------------------------------- sections


def _access(t: Table) -> dict[str, dict[str, Access]]:
    access: dict[str, dict[str, Access]] = {}
    for fname in t.data:
        try:
            SSSE.child(fname)            # unknown file names are errors, not silent no-ops
        except (KeyError, BadInputError):
            t.fail(fname, "no such file in the SSSE")
        rules = t.sub(fname)
        rules.refuse_unknown({"read", "write"})
        parsed: dict[str, Access] = {}
        for kind in rules.data:
            try:
                parsed[kind] = Access.parse(rules.text(kind))
            except BadInputError as exc:
                rules.fail(kind, str(exc))
        access[fname] = parsed
    return access


def _ef06_tags(t: Table) -> tuple[int, ...]:
    tags = t.get("ef06_tags")
    if not isinstance(tags, list) or not tags:
        t.fail("ef06_tags", f"must be a list of record tags in hex (\"08\"), got {tags!r}")
    return tuple(Table({"ef06_tags": tag}, t.origin).byte("ef06_tags") for tag in tags)


def _dfs(t: Table) -> tuple[str, ...]:
    names = t.get("dfs", [])
    if not isinstance(names, list) or any(n not in DF_BY_NAME for n in names):
        t.fail("dfs", f"must be a list of {', '.join(DF_BY_NAME)}, got {names!r}")
    return tuple(names)


#: Each section of a profile file and its validator: the one list of what a profile holds.
SECTIONS: dict[str, Callable[[Table], Any]] = {
    "access": _access,
    "read": ReadConfig.from_table,
    "psam_keys": psam_keys_from,
    "hsm_addresses": hsm_addresses_from,
    SECTION: Sm2AuthConfig.from_table,
    ISSUE_SECTION: IssueConfig.from_table,
    SIGN_SECTION: lambda t: t,           # validated over [sm2_auth] below
    "regional_files": regional_files_from,
}
#: The top-level keys of a profile file.
TOP_KEYS = ("name", "generation", "description", "algorithm", "ef06_tags", "key_version",
            "dfs")


def profile_from_mapping(data: Mapping[str, Any], origin: str) -> CardProfile:
    """Validate a parsed profile file (``origin``: ``card profile FILE``) into a CardProfile."""
    top = Table(data, origin)
    top.refuse_unknown((*TOP_KEYS, *SECTIONS))
    sections = {name: fn(Table.of(data[name], origin, name))
                for name, fn in SECTIONS.items() if name in data}
    sm2_auth: Sm2AuthConfig | None = sections.get(SECTION)
    pki_sign = None
    if SIGN_SECTION in sections:
        if SECTION not in data:
            top.fail(None, f"[{SIGN_SECTION}] needs [{SECTION}] (it changes its command)")
        pki_sign = pki_sign_from(Table(data[SECTION], origin, SECTION), sections[SIGN_SECTION])
    generation = top.get("generation")
    if not isinstance(generation, str | int | float) or isinstance(generation, bool):
        top.fail("generation", f"must be a version such as \"3.0\", got {generation!r}")
    algorithm = top.text("algorithm", "DES").upper()
    if algorithm not in ALGORITHMS:
        top.fail("algorithm", f"must be one of {', '.join(ALGORITHMS)}, got {algorithm!r}")
    return CardProfile(
        name=top.text("name"),
        generation=str(generation),
        description=top.text("description", ""),
        algorithm=algorithm,
        ef06_tags=_ef06_tags(top),
        access=sections.get("access", {}),
        read=sections.get("read", ReadConfig()),
        psam_keys=sections.get("psam_keys", {}),
        hsm_addresses=sections.get("hsm_addresses", {}),
        key_version=(top.integer("key_version", None, 0, 255) if "key_version" in top
                     else None),
        dfs=_dfs(top),
        sm2_auth=sm2_auth,
        pki_sign=pki_sign,
        sm2_issue=sections.get(ISSUE_SECTION),
        regional_files=sections.get("regional_files", {}),
        origin=origin,
    )


# --------------------------------------------------------------------------- loading


def _read_toml(path: Path | None, builtin: str | None) -> tuple[dict[str, Any], str]:
    """A profile or overlay file's mapping and its ``card profile FILE`` origin."""
    if builtin is not None:
        text = resources.files(__package__).joinpath(f"{builtin}.toml").read_text("utf-8")
        return tomllib.loads(text), f"card profile {builtin}.toml"
    assert path is not None
    try:
        return tomllib.loads(path.read_text("utf-8")), f"card profile {path}"
    except tomllib.TOMLDecodeError as exc:
        raise BadInputError(f"card profile {path}: {exc}") from None


def _base_mapping(name_or_path: str) -> tuple[dict[str, Any], str]:
    if name_or_path in BUILTIN or f"mohrss-{name_or_path}" in BUILTIN:
        return _read_toml(None, name_or_path if name_or_path in BUILTIN
                          else f"mohrss-{name_or_path}")
    path = Path(name_or_path)
    if not path.is_file():
        raise BadInputError(
            f"no card profile {name_or_path!r}: use one of {', '.join(BUILTIN)} or a TOML file"
            f" (with regional overlays: {BUILTIN[-1]}+{REGIONS[0]})")
    return _read_toml(path, None)


def _overlay_mapping(name_or_path: str) -> tuple[dict[str, Any], str]:
    if name_or_path in REGIONS:
        data, origin = _read_toml(None, f"region-{name_or_path}")
    elif Path(name_or_path).is_file():
        data, origin = _read_toml(Path(name_or_path), None)
    else:
        raise BadInputError(f"no regional overlay {name_or_path!r}: use one of "
                            f"{', '.join(REGIONS)} or a TOML file")
    Table(data, origin).refuse_unknown(OVERLAY_KEYS)
    return data, origin


def overlay(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``extra``'s tables merged in, key by key (the overlay wins)."""
    merged = dict(base)
    for key, value in extra.items():
        if key in ("name", "description"):
            continue
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


@functools.lru_cache(maxsize=16)
def _builtin(name: str) -> CardProfile:
    """A shipped profile (with shipped overlays), parsed once per process (frozen)."""
    return _compose(name)


def _compose(name: str) -> CardProfile:
    """``BASE`` or ``BASE+OVERLAY[+OVERLAY…]``: the base profile, each overlay merged in."""
    base, *overlays = name.split("+")
    data, origin = _base_mapping(base)
    names = [str(data.get("name", base))]
    descriptions = [str(data.get("description", ""))]
    for part in overlays:
        extra, extra_origin = _overlay_mapping(part)
        data = overlay(data, extra)
        origin = f"{origin} + {extra_origin.removeprefix('card profile ')}"
        names.append(str(extra.get("name", Path(part).stem)))
        descriptions.append(str(extra.get("description", "")))
    if overlays:
        data = {**data, "name": "+".join(names),
                "description": "; ".join(d for d in descriptions if d)}
    return profile_from_mapping(data, origin)


def load_profile(name_or_path: str) -> CardProfile:
    """A built-in profile by name (``mohrss-3.0``, or just ``3.0``) or a TOML file path; a
    regional overlay follows with ``+`` (``mohrss-3.0+jiangsu``, ``2.0+my-region.toml``)."""
    if Path(name_or_path).is_file():           # a file whose name holds a + is still a file
        data, origin = _read_toml(Path(name_or_path), None)
        return profile_from_mapping(data, origin)
    parts = name_or_path.split("+")
    if (parts[0] in BUILTIN or f"mohrss-{parts[0]}" in BUILTIN) and all(
            p in REGIONS for p in parts[1:]):
        base = parts[0] if parts[0] in BUILTIN else f"mohrss-{parts[0]}"
        return _builtin("+".join([base, *parts[1:]]))
    return _compose(name_or_path)


def profile_for(card: str | Mapping[str, Any] | None = None) -> CardProfile:
    """The built-in profile of a card; :data:`DEFAULT_PROFILE` for None.

    ``card`` is either

    * the EF05 规范版本 as read from the card (``"3.00"``, ``"2.0\\0"``; empty means a 1.0
      card, spec §3.1) or a generation (``"3.0"``): its first three characters decide
      (``card.codes.spec_version_key``); or
    * the card's own data as ``sbcard read --json`` reports it (``CardReport.to_json()``):
      see :func:`generation_of`.
    """
    if card is None:
        return load_profile(DEFAULT_PROFILE)
    version = card if isinstance(card, str) else generation_of(card)
    if version is None:
        return load_profile(DEFAULT_PROFILE)
    key = spec_version_key(version)
    if SPEC_VERSION.lookup(key) is None:
        known = ", ".join(n.removeprefix("mohrss-") for n in BUILTIN)
        raise BadInputError(f"no card profile for specification version {version!r}: known "
                            f"generations are {known}")
    return load_profile(f"mohrss-{key}")


#: The EF05 data elements written at personalisation (卡的类别, 发卡日期, 卡有效期, 社会保障卡
#: 卡号); 卡的识别码 and 初始化机构编号 are written earlier, at card initialisation (persona
#: ``blank``). A card with none of them is blank, and its empty version tells nothing.
_PERSONALISED = tuple(el.key for el in elements_of("EF05")
                      if el.key not in ("spec_version", "card_id", "init_org"))


def generation_of(card: Mapping[str, Any]) -> str | None:
    """The 规范版本 that decides a card's profile, from its data as ``read --json`` gives it.

    In this order:

    1. ``spec_version`` (EF05 tag 03), when the card has one: it decides.
    2. ``algorithm`` (the SSSE FCI's 9F0C/86 id, a ``read --json`` name such as
       ``"SM4 (16-byte blocks)"``, or the id itself): SM4 gives the one built-in profile whose
       ``algorithm`` is SM4 (third generation). ASSUMPTION: only third-generation cards run
       SM4 (mohrss-3.0.toml, "SM4 environment"); earlier profiles are DES, and the 1.0 spec
       (LB002-2000) predates SM4.
    3. An empty version on a personalised card (EF05 has a card number, type or date) is a
       1.0 card (spec §3.1, reader interface §10.2): ``""``.
    4. Otherwise (a blank card awaiting personalisation, or no EF05 data given): None, the
       default profile.
    """
    version = card.get("spec_version")
    if isinstance(version, str) and version.strip("\x00 "):
        return version
    algorithm = _algorithm_name(card.get("algorithm"))
    if algorithm is not None:
        for name in BUILTIN:
            profile = _builtin(name)
            if profile.algorithm == algorithm == "SM4":
                return profile.generation
    if "spec_version" in card and any(card.get(key) for key in _PERSONALISED):
        return ""
    return None


def _algorithm_name(value: object) -> str | None:
    """The :data:`ALGORITHMS` name of an FCI algorithm id (3, ``"03"``) or of the name
    ``read --json`` shows (``"SM4 (16-byte blocks)"``, ``"DES/3DES (8-byte blocks)"``)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    found = algorithm_code(value)
    text = found[0] if found is not None else str(value)
    words = text.replace("/", " ").split()
    return words[0].upper() if words and words[0].upper() in ALGORITHMS else None


# --------------------------------------------------------------------------- region choice


@dataclass(frozen=True)
class RegionRule:
    """One row of ``regions.toml``: cards whose issuing region starts with ``prefix`` get
    ``overlay``; ``source`` says why (the public evidence)."""

    prefix: str
    overlay: str
    source: str


def _region_rules(data: Mapping[str, Any], origin: str) -> tuple[RegionRule, ...]:
    top = Table(data, origin)
    top.refuse_unknown(("by_region",))
    table = Table.of(top.get("by_region", {}), origin, "by_region")
    rules = []
    for prefix in table.data:
        if not (prefix.isascii() and prefix.isdigit() and 2 <= len(prefix) <= 6):
            table.fail(prefix, "the key is the first 2 to 6 digits of a GB/T 2260 region code")
        entry = table.sub(prefix)
        entry.refuse_unknown(("overlay", "source"))
        name = entry.text("overlay")
        if name not in REGIONS:
            entry.fail("overlay", f"{name!r} is not a shipped overlay ({', '.join(REGIONS)})")
        rules.append(RegionRule(prefix, name, entry.text("source")))
    return tuple(rules)


@functools.lru_cache(maxsize=1)
def region_rules() -> tuple[RegionRule, ...]:
    """The shipped table ``regions.toml`` (issuing-region prefix → regional overlay)."""
    data, origin = _read_toml(None, "regions")
    return _region_rules(data, origin)


def rule_for_region(region: str | None,
                    rules: tuple[RegionRule, ...] | None = None) -> RegionRule | None:
    """The rule with the longest prefix of ``region`` (the 6-digit 发卡地区行政区划代码)."""
    if not region:
        return None
    found = [r for r in (region_rules() if rules is None else rules)
             if region.startswith(r.prefix)]
    return max(found, key=lambda r: len(r.prefix), default=None)


@dataclass(frozen=True)
class ProfileChoice:
    """The profile a command works with, and how it came to be chosen (always said)."""

    profile: CardProfile
    how: str                        # "named" (operator), "region" (regions.toml), "default"
    region: str | None = None
    rule: RegionRule | None = None

    def notice(self) -> str:
        """One line for stderr: which profile, and why."""
        if self.how == "named":
            return f"card profile {self.profile.name} (named)"
        if self.rule is not None:
            return (f"card profile {self.profile.name}: issuing region {self.region} starts "
                    f"with {self.rule.prefix} → overlay {self.rule.overlay} (regions.toml: "
                    f"{self.rule.source}); name another with --profile or driver.toml "
                    "[card] profile")
        where = f"issuing region {self.region}" if self.region else "no issuing region read"
        return (f"card profile {self.profile.name}: {where}, no regional overlay in "
                "regions.toml; name one with --profile or driver.toml [card] profile")


def choose_profile(named: str | None, region: str | None,
                   base: CardProfile | None = None) -> ProfileChoice:
    """``named`` (the operator's ``--profile``) when given; else ``base`` (default
    :func:`profile_for`) with the overlay ``regions.toml`` gives the card's issuing region,
    unless ``base`` already carries regional files."""
    if named:
        return ProfileChoice(load_profile(named), "named", region)
    prof = base or profile_for()
    rule = rule_for_region(region)
    if rule is None or prof.regional_files or prof.name not in BUILTIN:
        return ProfileChoice(prof, "default", region)
    return ProfileChoice(load_profile(f"{prof.name}+{rule.overlay}"), "region", region, rule)
