"""Reading one TOML table of a card profile, with the one error style of every profile error.

Every problem in a profile file is one line: ``card profile FILE: [section] key: what is
wrong`` (a top-level key has no ``[section]``), raised as :class:`BadInputError`. Each
section's validator reads its table through a :class:`Table`, so no section words its errors
on its own, and keys the section does not know are refused rather than silently ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from sbcard.errors import BadInputError
from sbcard.hexutil import parse_hex


@dataclass(frozen=True)
class Table:
    """One table of a profile (``section`` None: the top level) and where it came from."""

    data: Mapping[str, Any]
    origin: str                     # "card profile mohrss-3.0.toml" or "card profile PATH"
    section: str | None = None

    @classmethod
    def of(cls, value: object, origin: str, section: str) -> Table:
        """``value`` (a TOML value) as the table ``[section]``; an error when it is not one."""
        if not isinstance(value, Mapping):
            raise BadInputError(f"{origin}: [{section}]: must be a table, got {value!r}")
        return cls(value, origin, section)

    def where(self, key: str | None = None) -> str:
        """``card profile FILE: [section] key`` (the prefix of this table's errors)."""
        parts = [f"[{self.section}]"] if self.section else []
        if key is not None:
            parts.append(key)
        return f"{self.origin}: {' '.join(parts)}" if parts else self.origin

    def fail(self, key: str | None, what: str) -> NoReturn:
        raise BadInputError(f"{self.where(key)}: {what}")

    def sub(self, key: str) -> Table:
        """The table under ``key`` (``[access.EF06]``, an inline entry), named by its path."""
        value = self.data[key]
        name = f"{self.section}.{key}" if self.section else key
        if not isinstance(value, Mapping):
            raise BadInputError(f"{self.origin}: [{name}]: must be a table, got {value!r}")
        return Table(value, self.origin, name)

    def refuse_unknown(self, known: Iterable[str]) -> None:
        unknown = sorted(set(self.data) - set(known))
        if unknown:
            self.fail(None, f"unknown key(s) {', '.join(unknown)}")

    def __contains__(self, key: str) -> bool:
        return key in self.data

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    # -- typed readers (``default`` is used when the key is absent) -----------------------
    def text(self, key: str, default: str | None = None) -> str:
        value = self.data.get(key, default)
        if value is None:
            self.fail(key, "missing")
        if not isinstance(value, str):
            self.fail(key, f"must be a string, got {value!r}")
        return value

    def hex(self, key: str, default: str | None = None, size: int | None = None) -> bytes:
        """Hex text (spaced or not); exactly ``size`` bytes when ``size`` is given."""
        raw = parse_hex(self.text(key, default), self.where(key))
        if size is not None and len(raw) != size:
            self.fail(key, f"must be {size} byte(s), got {len(raw)}")
        return raw

    def byte(self, key: str, default: str | None = None) -> int:
        return self.hex(key, default, 1)[0]

    def integer(self, key: str, default: int | None, low: int, high: int) -> int:
        value = self.data.get(key, default)
        if value is None:
            self.fail(key, "missing")
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            self.fail(key, f"must be an integer {low}..{high}, got {value!r}")
        return value

    def choice(self, key: str, default: str, choices: Sequence[str]) -> str:
        value = self.data.get(key, default)
        text = value.lower() if isinstance(value, str) else value
        if text not in choices:
            self.fail(key, f"must be one of {', '.join(choices)}, got {value!r}")
        return str(text)

    def hex_key(self, key: str, size: int = 1) -> int:
        """A table key that is itself hex (``"0A" = …``: a card key ID) as an integer."""
        try:
            raw = bytes.fromhex(key)
        except ValueError:
            raw = b""
        if len(raw) != size:
            self.fail(key, f"must be {size * 2} hex digits (a card key ID)")
        return int.from_bytes(raw, "big")
