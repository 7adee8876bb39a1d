"""A simulated 社会保障PSAM卡 (spec §5.3): the terminal-side security module, for tests and demos.

It is a card of its own (own ATR, own file system), served the same ways as the user card:
in-process (``sbcard.compose.open_psam(SessionOptions(sim="default"))``) or into
pcscd through vpcd (``sbcard sim serve --psam``). Its roots come from a key file (by default
the public TEST keys the simulated user cards are keyed from), so a PSAM-derived cryptogram
opens a simulated card exactly when a key-file-derived one does.

File system::

    MF 3F00 = DDF "sx1.sh.社会保障" (DES environment, when the persona has it)
      ├─ ADF DF01  AID D15600000590     keys of the DES environment
      └─ DDF DDF3 "sx3.sh.社会保障" (SM4 environment)
           └─ ADF DF01  AID D15600000590  keys of the SM4 environment
    EF 0015 公共信息 and EF 0016 终端机编号 are visible from every DF (SFI 15/16 or SELECT EF).

ASSUMPTIONS: the FID of the SM4 DDF (DDF3) is not published (SSF33's is DDF1); without a
DES environment the MF is a plain MF. Keys are usable only with an ADF selected
(``BF DE`` elsewhere → 6985). ``80 FA`` follows the P1 bits documented in
``sbcard.keys.psam``; it answers 4-byte MACs (DES: leftmost 4 bytes of the last CBC block;
SM4: XOR of the last block's four quarters, as ``card_algos.mac``), and refuses MAC with an
encryption-only key (type 7) and encryption with a MAC-only key (type 6) with 6985. Without a
session key, or a 03/01 MAC part without a 07 first part, it answers 6985. Selecting another
DF or powering off forgets the session key. Nothing about keys ever leaves the simulator.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any

from sbcard.apdu.command import CommandApdu
from sbcard.apdu.sw import SW
from sbcard.card import factors as card_factors
from sbcard.card.profiles import DEFAULT_PROFILE, load_profile
from sbcard.card.profiles.table import Table
from sbcard.crypto import card_algos
from sbcard.crypto.symmetric import Algorithm, encrypt_cbc, encrypt_ecb, xor_bytes
from sbcard.errors import BadInputError
from sbcard.hexutil import parse_hex
from sbcard.keys.builtin import builtin_key_file
from sbcard.keys.keyfile import KeyFile
from sbcard.keys.psam import (
    CIPHER_IV,
    CIPHER_MAC,
    CIPHER_MORE,
    EF_PUBLIC_INFO,
    EF_TERMINAL,
    MAC_LEN,
    PSAM_ADF_FID,
    PSAM_AID,
    PSAM_DDF_NAMES,
    psam_key_map,
)
from sbcard.sim.os_base import CardOS, Reply

MF_FID = 0x3F00
SM4_DDF_FID = 0xDDF3
#: Usage types (low 5 bits of the usage byte) that may encrypt / MAC (spec §5.3).
ENCRYPT_TYPES = frozenset({7, 8})
MAC_TYPES = frozenset({6, 8})
ENVIRONMENTS = (Algorithm.DES, Algorithm.SM4)      # SSF33 has no public definition


@dataclass(frozen=True)
class PsamKey:
    """A key record: usage byte (levels << 5 | type), key ID, algorithm and the root."""

    usage: int
    key_id: int
    algorithm: Algorithm
    value: bytes
    name: str

    @property
    def levels(self) -> int:
        return self.usage >> 5

    @property
    def usage_type(self) -> int:
        return self.usage & 0x1F

    def __repr__(self) -> str:  # never show key bytes
        return f"PsamKey({self.name}, {self.usage:02X} {self.key_id:02X}, {self.algorithm.name})"


@dataclass
class PsamDF:
    fid: int
    name: bytes
    algorithm: Algorithm | None              # environment; None for a plain MF
    is_adf: bool = False
    parent: PsamDF | None = None
    children: list[PsamDF] = field(default_factory=list)
    keys: dict[tuple[int, int], PsamKey] = field(default_factory=dict)  # (type, ID) → key

    def add(self, child: PsamDF) -> PsamDF:
        child.parent = self
        self.children.append(child)
        return child

    @property
    def fci(self) -> bytes:
        prop = bytes((0x88, 0x01, 0x01)) if not self.is_adf else bytes((0x9F, 0x08, 0x01, 0x01))
        body = (bytes((0x84, len(self.name))) + self.name if self.name else b"") + \
            bytes((0xA5, len(prop))) + prop
        return bytes((0x6F, len(body))) + body

    def walk(self) -> list[PsamDF]:
        out = [self]
        for child in self.children:
            out += child.walk()
        return out


@dataclass
class PsamBehaviour:
    """Quirks (all off = a tidy ISO card)."""

    t0_get_response: bool = False   # answer commands with data in and out with 61xx
    enforce_usage: bool = True      # type 7 keys only encrypt, type 6 only MAC


#: The one CLA each PSAM command takes (a known INS with another CLA answers 6E00).
PSAM_CLA: dict[int, int] = {0xA4: 0x00, 0xB0: 0x00, 0xC0: 0x00, 0xDE: 0xBF, 0xFA: 0x80}


@dataclass
class _Session:
    key: PsamKey
    algorithm: Algorithm
    value: bytes


class SimPsam(CardOS):
    """The PSAM. ``power_on() -> ATR``, ``power_off()``, ``process(apdu) -> response``."""

    def __init__(self, atr: bytes, mf: PsamDF, files: dict[int, bytes],
                 behaviour: PsamBehaviour | None = None) -> None:
        super().__init__(atr)
        self.mf = mf
        self.files = {fid: bytearray(data) for fid, data in files.items()}
        self.behaviour = behaviour or PsamBehaviour()
        self.handlers.update({
            0xA4: SimPsam._select,
            0xB0: SimPsam._read_binary,
            0xC0: SimPsam.get_response,
            0xDE: SimPsam._delivery_session_key,
            0xFA: SimPsam._cipher_data,
        })
        self._reset_state()

    @property
    def t0_get_response(self) -> bool:
        return self.behaviour.t0_get_response

    def _reset_state(self) -> None:
        self.current_df = self.mf
        self.current_ef: int | None = None
        self.session: _Session | None = None
        self.mac_chain: bytes | None = None

    def _refuse(self, cmd: CommandApdu) -> Reply | None:
        cla = PSAM_CLA.get(cmd.ins)
        if cla is not None and cmd.cla != cla:
            return b"", SW.CLA_NOT_SUPPORTED
        return None

    # -- files ------------------------------------------------------------------------------
    def _enter(self, df: PsamDF) -> None:
        if df is not self.current_df:
            self.session = None
            self.mac_chain = None
        self.current_df = df
        self.current_ef = None

    def _near(self) -> list[PsamDF]:
        """DFs in ISO search order from the current one: children, itself, parent, siblings."""
        here = self.current_df
        out = [*here.children, here]
        if here.parent is not None:
            out += [here.parent, *here.parent.children]
        return out + self.mf.walk()

    def _select(self, cmd: CommandApdu) -> Reply:
        if cmd.p2 not in (0x00, 0x0C):
            return b"", SW.WRONG_P1P2
        if cmd.p1 == 0x04:
            if not cmd.data:
                return b"", SW.WRONG_LENGTH
            for df in self._near():
                if df.name and df.name.startswith(cmd.data):
                    return self._selected(df, cmd)
            return b"", SW.FILE_NOT_FOUND
        if cmd.p1 not in (0x00, 0x01, 0x02):
            return b"", SW.WRONG_P1P2
        if cmd.p1 == 0x00 and cmd.data in (b"", MF_FID.to_bytes(2, "big")):
            return self._selected(self.mf, cmd)
        if len(cmd.data) != 2:
            return b"", SW.WRONG_LENGTH
        fid = int.from_bytes(cmd.data, "big")
        if fid in self.files and cmd.p1 in (0x00, 0x02):
            self.current_ef = fid
            return b"", SW.OK
        if cmd.p1 in (0x00, 0x01):
            for df in self._near():
                if df.fid == fid and df is not self.mf:
                    return self._selected(df, cmd)
        return b"", SW.FILE_NOT_FOUND

    def _selected(self, df: PsamDF, cmd: CommandApdu) -> Reply:
        self._enter(df)
        return (b"" if cmd.p2 == 0x0C else df.fci), SW.OK

    def _read_binary(self, cmd: CommandApdu) -> Reply:
        if cmd.p1 & 0x80:
            if cmd.p1 & 0x60:
                return b"", SW.WRONG_P1P2
            fid = next((f for f in self.files if f & 0x1F == cmd.p1 & 0x1F), None)
            if fid is None:
                return b"", SW.FILE_NOT_FOUND
            self.current_ef, offset = fid, cmd.p2
        else:
            if self.current_ef is None:
                return b"", SW.NO_CURRENT_EF
            offset = (cmd.p1 << 8) | cmd.p2
        data = self.files[self.current_ef]
        if offset > len(data):
            return b"", SW.WRONG_OFFSET
        want = cmd.le or 256
        chunk = bytes(data[offset:offset + want])
        if cmd.le not in (None, 256) and len(chunk) < want:
            return chunk, SW.END_OF_FILE
        return chunk, SW.OK

    # -- crypto -----------------------------------------------------------------------------
    def _delivery_session_key(self, cmd: CommandApdu) -> Reply:
        """BF DE usage keyID: factors (8·N, card first) ‖ session factor (one block)."""
        df = self.current_df
        if not df.is_adf or df.algorithm is None:
            return b"", SW.CONDITIONS_NOT_SATISFIED
        algorithm = df.algorithm
        factor_bytes = len(cmd.data) - algorithm.block_size
        if factor_bytes < 0 or factor_bytes % card_algos.FACTOR_SIZE:
            return b"", SW.WRONG_LENGTH
        key = df.keys.get((cmd.p1 & 0x1F, cmd.p2))
        if key is None:
            return b"", SW.KEY_NOT_FOUND
        count = factor_bytes // card_algos.FACTOR_SIZE
        if cmd.p1 >> 5 != key.levels or count != key.levels:
            return b"", SW.WRONG_DATA
        factors = [cmd.data[i:i + 8] for i in range(0, factor_bytes, 8)]
        card_key = card_algos.diversify_levels(algorithm, key.value, factors)
        self.session = _Session(key, algorithm, card_algos.session_key(
            algorithm, card_key, cmd.data[factor_bytes:]))
        self.mac_chain = None
        return b"", SW.OK

    def _cipher_data(self, cmd: CommandApdu) -> Reply:
        """80 FA: P1 01 MAC / 02 more follows / 04 data opens with the IV (00 02 05 07 03 01)."""
        if cmd.p2 != 0x00 or cmd.p1 not in (0x00, 0x02, 0x05, 0x07, 0x03, 0x01):
            return b"", SW.WRONG_P1P2
        session = self.session
        if session is None:
            return b"", SW.CONDITIONS_NOT_SATISFIED
        size = session.algorithm.block_size
        if not cmd.data or len(cmd.data) % size:
            return b"", SW.WRONG_LENGTH
        allowed = MAC_TYPES if cmd.p1 & CIPHER_MAC else ENCRYPT_TYPES
        if self.behaviour.enforce_usage and session.key.usage_type not in allowed:
            return b"", SW.CONDITIONS_NOT_SATISFIED
        if not cmd.p1 & CIPHER_MAC:
            self.mac_chain = None
            return encrypt_ecb(session.algorithm, session.value, cmd.data), SW.OK
        if cmd.p1 & CIPHER_IV:
            chain, body = cmd.data[:size], cmd.data[size:]
            if not body and not cmd.p1 & CIPHER_MORE:
                return b"", SW.WRONG_LENGTH
        elif self.mac_chain is None:
            return b"", SW.CONDITIONS_NOT_SATISFIED
        else:
            chain, body = self.mac_chain, cmd.data
        if body:
            chain = encrypt_cbc(session.algorithm, session.value, body, chain)[-size:]
        if cmd.p1 & CIPHER_MORE:
            self.mac_chain = chain
            return b"", SW.OK
        self.mac_chain = None
        return reduce_mac(chain), SW.OK


def reduce_mac(last_block: bytes) -> bytes:
    """4-byte MAC from the last CBC block: DES leftmost 4; 16-byte blocks XOR of the quarters."""
    if len(last_block) == 8:
        return last_block[:MAC_LEN]
    q = [last_block[i:i + 4] for i in range(0, 16, 4)]
    return xor_bytes(xor_bytes(q[0], q[1]), xor_bytes(q[2], q[3]))


# -- personas --------------------------------------------------------------------------------

@dataclass
class PsamPersona:
    name: str
    description: str
    atr: bytes
    public_info: bytes
    terminal: str
    keys: list[PsamKey]
    environments: tuple[Algorithm, ...]
    behaviour: PsamBehaviour
    source: str = ""

    @property
    def t0_get_response(self) -> bool:
        return self.behaviour.t0_get_response

    def build(self) -> SimPsam:
        des = Algorithm.DES in self.environments
        mf = PsamDF(MF_FID, PSAM_DDF_NAMES[Algorithm.DES] if des else b"",
                    Algorithm.DES if des else None)
        for algorithm in self.environments:
            ddf = mf if algorithm is Algorithm.DES else mf.add(
                PsamDF(SM4_DDF_FID, PSAM_DDF_NAMES[algorithm], algorithm))
            adf = ddf.add(PsamDF(PSAM_ADF_FID, PSAM_AID, algorithm, is_adf=True))
            for key in self.keys:
                if key.algorithm is algorithm:
                    adf.keys[(key.usage_type, key.key_id)] = key
        files = {EF_PUBLIC_INFO: self.public_info,
                 EF_TERMINAL: parse_hex(self.terminal, "terminal number")}
        return SimPsam(self.atr, mf, files, replace(self.behaviour))


BUILTIN_DIR = "personas_psam"
PREFIX = "psam:"
_TOP_KEYS = {"name", "description", "profile", "atr", "serial", "terminal", "issuer",
             "version", "key_card_type", "keys", "behaviour"}
_KEY_KEYS = {"file", "environments", "levels", "region", "card_keys"}


def builtin_psam_personas() -> list[str]:
    folder = resources.files(__package__).joinpath(BUILTIN_DIR)
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def load_psam_persona(name_or_path: str) -> PsamPersona:
    """A built-in PSAM persona (``default``, also as ``psam:default``) or a ``.toml`` file."""
    name = name_or_path.removeprefix(PREFIX)
    path = Path(name)
    if path.suffix == ".toml" and path.is_file():
        return psam_persona_from_mapping(_toml(path.read_text("utf-8"), str(path)), str(path))
    entry = resources.files(__package__).joinpath(BUILTIN_DIR, f"{name}.toml")
    if entry.is_file():
        return psam_persona_from_mapping(_toml(entry.read_text("utf-8"), name), name)
    raise BadInputError(f"no PSAM persona {name_or_path!r}: built-in ones are "
                        f"{', '.join(builtin_psam_personas())}, or give a .toml file")


def _toml(text: str, origin: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BadInputError(f"PSAM persona {origin}: {exc}") from None


def _digits(value: object, max_len: int, what: str, origin: str) -> str:
    text = str(value)
    if not text.isascii() or not text.isdigit() or not 1 <= len(text) <= max_len:
        raise BadInputError(f"PSAM persona {origin}: {what}: must be 1 to {max_len} digits")
    return text


def _key_file(source: str, origin: str) -> KeyFile:
    try:
        if "/" not in source and not source.endswith(".toml"):
            return builtin_key_file(source)
        return KeyFile.load(source, check_permissions=False, warn=lambda _m: None)
    except FileNotFoundError:
        raise BadInputError(f"PSAM persona {origin}: [keys] file: no key file {source!r}") from None


def _place_keys(conf: dict[str, Any], profile: str, default_region: str, origin: str,
                environments: tuple[Algorithm, ...]) -> list[PsamKey]:
    """Each mapped card key's root under its PSAM key ID, diversified down to ``levels``."""
    keyfile = _key_file(str(conf.get("file", "test")), origin)
    refs = psam_key_map(load_profile(profile))
    try:
        wanted = (set(refs) if "card_keys" not in conf
                  else {int(str(k), 16) for k in conf["card_keys"]})
    except (TypeError, ValueError):
        raise BadInputError(f"PSAM persona {origin}: [keys] card_keys: must be hex key "
                            "IDs") from None
    region = str(conf.get("region", default_region))
    placed = []
    for root in keyfile.roots:
        ref = refs.get(root.card_key_id)
        if ref is not None and root.version is not None:
            ref = ref.for_version(root.version)      # a version the profile gives an ID for
        if ref is None or root.card_key_id not in wanted or root.algorithm not in environments:
            continue
        levels = int(conf.get("levels", root.levels))
        if not 1 <= levels <= root.levels:
            raise BadInputError(f"PSAM persona {origin}: [keys] levels: must be "
                                f"1..{root.levels} for {root.name} (the key file's root "
                                "level)")
        value = root.value
        if levels < root.levels:
            # Move the root down: apply the factors of the levels the PSAM no longer needs.
            chain = card_factors.chain(None, region, root.levels)
            value = card_algos.diversify_levels(root.algorithm, value, chain[levels:])
        placed.append(PsamKey(ref.usage(levels), ref.psam_key_id, root.algorithm, value,
                              root.name if root.name == ref.name else f"{root.name}/{ref.name}"))
    return placed


def _behaviour(data: dict[str, Any], origin: str) -> PsamBehaviour:
    """``[behaviour]``: known flags only, each true or false."""
    t = Table.of(data.get("behaviour", {}), f"PSAM persona {origin}", "behaviour")
    t.refuse_unknown(f.name for f in fields(PsamBehaviour))
    for key in t.data:
        if not isinstance(t.get(key), bool):
            t.fail(key, f"must be true or false, got {t.get(key)!r}")
    return PsamBehaviour(**t.data)


def psam_persona_from_mapping(data: dict[str, Any], origin: str = "<psam persona>"
                              ) -> PsamPersona:
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise BadInputError(f"PSAM persona {origin}: unknown key(s) {', '.join(sorted(unknown))}")
    conf = dict(data.get("keys", {}))
    if set(conf) - _KEY_KEYS:
        raise BadInputError(f"PSAM persona {origin}: [keys]: unknown key(s) "
                            f"{', '.join(sorted(set(conf) - _KEY_KEYS))}")
    terminal = _digits(data.get("terminal", "519900000001"), 12, "terminal", origin)
    if len(terminal) != 12:
        raise BadInputError(f"PSAM persona {origin}: terminal: must be 12 digits (cn 6)")
    serial = _digits(data.get("serial", "51990000000000000001"), 20, "serial", origin)
    serial_cn = serial + "F" * (20 - len(serial))
    try:
        environments = tuple(Algorithm[str(e).upper()] for e in
                             conf.get("environments", [a.name for a in ENVIRONMENTS]))
    except KeyError as exc:
        raise BadInputError(f"PSAM persona {origin}: [keys] environments: unknown "
                            f"environment {exc}") from None
    behaviour = _behaviour(data, origin)
    if not environments or any(e not in ENVIRONMENTS for e in environments):
        raise BadInputError(f"PSAM persona {origin}: [keys] environments: must be DES and/or SM4")
    public_info = parse_hex(str(data.get("issuer", "01")) + serial_cn
                            + str(data.get("version", "01"))
                            + str(data.get("key_card_type", "01")) + "0000",
                            f"PSAM persona {origin}: issuer, serial, version, key_card_type")
    if len(public_info) != 15:
        raise BadInputError(f"PSAM persona {origin}: issuer, version, key_card_type: must be "
                            "one byte each")
    atr = parse_hex(str(data.get("atr", "3B6D00000081544C008684" + serial_cn[-12:])),
                    f"PSAM persona {origin}: atr")
    keys = _place_keys(conf, str(data.get("profile", DEFAULT_PROFILE)), terminal[:6], origin,
                       environments)
    return PsamPersona(
        name=str(data.get("name", Path(origin).stem)),
        description=str(data.get("description", "")),
        atr=atr, public_info=public_info, terminal=terminal, keys=keys,
        environments=environments, behaviour=behaviour, source=origin)
