"""Card profiles: what differs between card generations and regions, kept as TOML data.

Where the public spec leaves something open (EF06 read control on 3.0 cards, SM2 commands,
SM4 diversification), the profile file states the assumption next to the value. Code reads
profiles; it never special-cases a generation by itself.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from sbcard.card.filesystem import SSSE, Access, EfSpec
from sbcard.errors import BadInputError

BUILTIN = ("mohrss-1.0", "mohrss-2.0", "mohrss-3.0")


@dataclass(frozen=True)
class CardProfile:
    name: str
    generation: str
    description: str
    algorithm: str
    ef06_tags: tuple[int, ...]
    access: dict[str, dict[str, Access]] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def read_access(self, ef: EfSpec) -> Access:
        return self.access.get(ef.name, {}).get("read", ef.read)

    def write_access(self, ef: EfSpec) -> Access:
        return self.access.get(ef.name, {}).get("write", ef.write)

    def record_tags(self, ef: EfSpec) -> tuple[int, ...]:
        return self.ef06_tags if ef.name == "EF06" else ef.tags


def _from_mapping(data: dict, origin: str) -> CardProfile:
    try:
        access: dict[str, dict[str, Access]] = {}
        for fname, rules in data.get("access", {}).items():
            SSSE.child(fname)  # unknown file names are errors, not silent no-ops
            access[fname] = {k: Access.parse(v) for k, v in rules.items()}
        known = {"name", "generation", "description", "algorithm", "ef06_tags", "access"}
        return CardProfile(
            name=data["name"],
            generation=str(data["generation"]),
            description=data.get("description", ""),
            algorithm=data.get("algorithm", "DES").upper(),
            ef06_tags=tuple(int(t, 16) for t in data["ef06_tags"]),
            access=access,
            extra={k: v for k, v in data.items() if k not in known},
        )
    except (KeyError, ValueError) as exc:
        raise BadInputError(f"card profile {origin}: missing or bad field {exc}") from None


def load_profile(name_or_path: str) -> CardProfile:
    """A built-in profile by name (``mohrss-3.0``, or just ``3.0``) or a TOML file path."""
    if name_or_path in BUILTIN or f"mohrss-{name_or_path}" in BUILTIN:
        name = name_or_path if name_or_path in BUILTIN else f"mohrss-{name_or_path}"
        text = resources.files(__package__).joinpath(f"{name}.toml").read_text("utf-8")
        return _from_mapping(tomllib.loads(text), name)
    path = Path(name_or_path)
    if not path.is_file():
        raise BadInputError(
            f"no card profile {name_or_path!r}: use one of {', '.join(BUILTIN)} or a TOML file"
        )
    try:
        return _from_mapping(tomllib.loads(path.read_text("utf-8")), str(path))
    except tomllib.TOMLDecodeError as exc:
        raise BadInputError(f"card profile {path}: {exc}") from None
