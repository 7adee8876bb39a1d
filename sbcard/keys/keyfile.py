"""Key file: root keys per card key ID, diversified in software. For development and test.

Format (TOML)::

    # Each [[key]] is a root from which the card's key is derived.
    [[key]]
    name = "RKSSSE"            # for messages only
    card_key_id = "0A"         # EXTERNAL AUTHENTICATE P2 / INTERNAL AUTHENTICATE P2
    df = "DF01"                # only for a key of DF01–DF07 (IDs repeat across DFs)
    algorithm = "SM4"          # DES (8- or 16-byte keys) or SM4
    levels = 2                 # diversifications to the card key: 1 card; 2 city, card;
                               # 3 province, city, card (PSAM usage byte's top 3 bits)
    value = "…32 hex digits…"
    kcv = "A1B2C3"             # optional key check value: E_K(00…)[0:3], checked on load

A source may hold the same ``card_key_id`` for several algorithms (a DES and an SM4 root); the
card's algorithm environment picks. The file must not be readable by other users (refused, as
ssh refuses private keys), and roots known from public test material are announced loudly.
Key bytes never appear in messages.
"""

from __future__ import annotations

import os
import stat
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from sbcard.card.dfs import DF_BY_NAME, key_ref
from sbcard.crypto import card_algos
from sbcard.crypto.symmetric import Algorithm, encrypt_ecb
from sbcard.errors import BadInputError, RefusedError
from sbcard.hexutil import parse_hex
from sbcard.keys.base import CardContext, KeySource

#: Roots seen in public test material and documentation; a card keyed with them is a test card.
WELL_KNOWN_TEST_KEYS = frozenset({
    "00000000000000000000000000000000",
    "11111111111111111111111111111111",
    "0123456789ABCDEFFEDCBA9876543210",
    "404142434445464748494A4B4C4D4E4F",
    "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF",
    "0000000000000000",
    "1111111111111111",
})


@dataclass(frozen=True)
class RootKey:
    name: str
    card_key_id: int
    algorithm: Algorithm
    levels: int
    value: bytes
    version: int | None = None        # key version (None: the card's default key)

    def __repr__(self) -> str:  # never show key bytes
        return (f"RootKey({self.name}, id={self.card_key_id:02X}, {self.algorithm.name}, "
                f"levels={self.levels})")

    def card_key(self, ctx: CardContext) -> bytes:
        return card_algos.diversify_levels(self.algorithm, self.value, ctx.factors(self.levels))


def key_check_value(algorithm: Algorithm, key: bytes) -> str:
    return encrypt_ecb(algorithm, key, bytes(algorithm.block_size))[:3].hex().upper()


class KeyFile(KeySource):
    def __init__(self, roots: list[RootKey], name: str = "key file") -> None:
        self.roots = roots
        self.name = name

    # -- loading --------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike, *, check_permissions: bool = True,
             warn=None) -> KeyFile:
        p = Path(path)
        try:
            mode = p.stat().st_mode
        except FileNotFoundError:
            raise BadInputError(f"key file {p}: no such file") from None
        if check_permissions and mode & (stat.S_IROTH | stat.S_IWOTH):
            raise RefusedError(
                f"key file {p} is readable or writable by other users; "
                f"run `chmod 600 {p}` first"
            )
        try:
            data = tomllib.loads(p.read_text("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise BadInputError(f"key file {p}: {exc}") from None
        source = cls.from_mapping(data, str(p))
        test_keys = [r.name for r in source.roots
                     if data.get("test_keys") or r.value.hex().upper() in WELL_KNOWN_TEST_KEYS]
        if test_keys:
            (warn or _stderr)(
                f"WARNING: key file {p} holds well-known TEST keys ({', '.join(test_keys)}): "
                "only test cards and the simulator accept them"
            )
        return source

    @classmethod
    def from_mapping(cls, data: dict, origin: str = "key file") -> KeyFile:
        roots: list[RootKey] = []
        entries = data.get("key", [])
        if not isinstance(entries, list):
            raise BadInputError(f"{origin}: 'key' must be [[key]] tables, not "
                                f"{type(entries).__name__}")
        seen: dict[tuple[int, Algorithm, int | None], int] = {}
        for i, entry in enumerate(entries, start=1):
            where = f"{origin}: [[key]] #{i}"
            if not isinstance(entry, dict):
                raise BadInputError(f"{where}: not a table of name/algorithm/value/card_key_id")
            try:
                algorithm = Algorithm[str(entry["algorithm"]).upper()]
                algorithm.check_supported()
                value = parse_hex(str(entry["value"]), "value")
                algorithm.check_key(value, "key value")
                levels = int(entry.get("levels", 2))
                key_id = int(str(entry["card_key_id"]), 16)
                df = entry.get("df")
                if df is not None:       # a DF-level key (DF01–DF07): its reference, dfs.key_ref
                    if str(df).upper() not in DF_BY_NAME:
                        raise ValueError(f"df {df!r} is not one of {', '.join(DF_BY_NAME)}")
                    key_id = key_ref(str(df).upper(), key_id)
            except KeyError as exc:
                raise BadInputError(f"{where}: missing or unknown {exc}") from None
            except (ValueError, TypeError) as exc:
                raise BadInputError(f"{where}: {str(exc).splitlines()[0][:120]}") from None
            if not 1 <= levels <= 3:
                raise BadInputError(f"{where}: levels must be 1, 2 or 3, got {levels}")
            kcv = entry.get("kcv")
            if kcv is not None and key_check_value(algorithm, value) != str(kcv).upper():
                raise BadInputError(
                    f"{where} ({entry.get('name', '?')}): key check value does not match; "
                    "the key value is mistyped or belongs to another key"
                )
            version = entry.get("version")
            if version is not None and not (isinstance(version, int) and 0 <= version <= 0xFF):
                raise BadInputError(f"{where}: version must be a number 0..255")
            if (key_id, algorithm, version) in seen:   # which one would be used? refuse
                shown = "" if version is None else f" version {version}"
                raise BadInputError(f"{where}: card_key_id {key_id:02X} ({algorithm.name})"
                                    f"{shown} is also [[key]] #{seen[key_id, algorithm, version]}")
            seen[key_id, algorithm, version] = i
            roots.append(RootKey(str(entry.get("name", f"key {key_id:02X}")), key_id,
                                 algorithm, levels, value, version))
        if not roots:
            raise BadInputError(f"{origin}: no [[key]] entries")
        return cls(roots, f"key file {origin}")

    # -- KeySource --------------------------------------------------------------------------
    def _version_ok(self, root: RootKey) -> bool:
        """With a key version chosen, only roots of that version; without, unversioned ones."""
        return root.version == self.key_version

    def root(self, key_id: int, algorithm: Algorithm) -> RootKey:
        for r in self.roots:
            if r.card_key_id == key_id and r.algorithm is algorithm and self._version_ok(r):
                return r
        version = "" if self.key_version is None else f" version {self.key_version}"
        raise BadInputError(
            f"{self.name} has no {algorithm.name} key{version} for card key {key_id:02X}"
        )

    def has_key(self, key_id: int, algorithm: Algorithm | None = None) -> bool:
        return any(r.card_key_id == key_id and (algorithm is None or r.algorithm is algorithm)
                   and self._version_ok(r) for r in self.roots)

    def _card_key(self, ctx: CardContext, key_id: int) -> bytes:
        return self.root(key_id, ctx.algorithm).card_key(ctx)

    def auth_data(self, ctx: CardContext, key_id: int, challenge: bytes,
                  original: bytes) -> bytes:
        return card_algos.external_auth_data(ctx.algorithm, self._card_key(ctx, key_id),
                                             challenge, original)

    def internal_auth_expected(self, ctx: CardContext, r1: bytes, r2: bytes) -> bytes:
        sk = card_algos.session_key(ctx.algorithm, self._card_key(ctx, 0x00), r1)
        return card_algos.auth_data(ctx.algorithm, sk, r2)

    def _session(self, ctx: CardContext, key_id: int, challenge: bytes) -> bytes:
        return card_algos.session_key(ctx.algorithm, self._card_key(ctx, key_id), challenge)

    def mac(self, ctx: CardContext, key_id: int, challenge: bytes, data: bytes) -> bytes:
        return card_algos.mac(ctx.algorithm, self._session(ctx, key_id, challenge), data)

    def encrypt(self, ctx: CardContext, key_id: int, challenge: bytes, data: bytes) -> bytes:
        return card_algos.encrypt_field(ctx.algorithm, self._session(ctx, key_id, challenge),
                                        data)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)
