"""A card operating system that answers like a MOHRSS social security card.

The simulator is built from the same card model the toolkit reads with (``sbcard.card``), plus a
persona (holder data, generation, PIN, keys, quirks). It keeps the state a real card keeps:
current DF/EF, record pointer, the last challenge (valid once), security status per key,
PIN try counter, and the blocked flags. Commands are dispatched by INS to small handlers; each
returns ``(data, sw)``. Crypto-dependent commands are registered by ``sbcard.sim.auth``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sbcard.apdu.command import CommandApdu
from sbcard.apdu.sw import SW
from sbcard.card.filesystem import (
    PIN_MAX_DIGITS,
    PIN_MIN_DIGITS,
    Access,
    DfSpec,
    EfSpec,
    Structure,
)
from sbcard.card.profiles import CardProfile
from sbcard.sim.os_base import CardOS, Handler, Reply

if TYPE_CHECKING:
    from sbcard.sim.auth import AuthState
    from sbcard.sim.faults import FaultInjector
    from sbcard.sim.persona import Persona
    from sbcard.sim.pki_app import PkiState
    from sbcard.sim.purse import PurseState

#: 00 ISO, 04 ISO with secure messaging, 80/84 proprietary (plain / MAC), B0 medical purse.
SUPPORTED_CLA = frozenset({0x00, 0x04, 0x80, 0x84, 0xB0})


@dataclass
class SimEF:
    spec: EfSpec
    read: Access
    write: Access
    records: list[bytearray] = field(default_factory=list)
    data: bytearray = field(default_factory=bytearray)

    @property
    def is_records(self) -> bool:
        return self.spec.structure in (Structure.VARIABLE_RECORDS, Structure.FIXED_RECORDS,
                                       Structure.CYCLIC)


@dataclass
class SimDF:
    spec: DfSpec
    fci: bytes
    efs: dict[int, SimEF]              # by FID
    by_sfi: dict[int, SimEF]
    blocked: bool = False
    parent: SimDF | None = None        # a DF under another (DF01–DF07 under the SSSE)

    @classmethod
    def build(cls, spec: DfSpec, profile: CardProfile | None, fci: bytes) -> SimDF:
        efs: dict[int, SimEF] = {}
        for ef in spec.efs():
            read = profile.read_access(ef) if profile else ef.read
            write = profile.write_access(ef) if profile else ef.write
            sim_ef = SimEF(ef, read, write)
            if ef.structure is Structure.TRANSPARENT:
                sim_ef.data = bytearray(b"\x00" * ef.size)
            efs[ef.fid] = sim_ef
        return cls(spec, fci, efs, {e.spec.sfi: e for e in efs.values() if e.spec.sfi})


@dataclass
class PinState:
    value: str | None            # digits; None = no PIN set
    tries: int
    max_tries: int

    @property
    def blocked(self) -> bool:
        return self.value is not None and self.tries == 0


@dataclass
class Behaviour:
    """Quirks of real cards the simulator can reproduce (all off = a tidy ISO card)."""

    t0_get_response: bool = False   # answer case-3/4 commands that return data with 61xx
    # Le=00 on a command that returns data answers 6Cxx with the actual length: part 5 §6.10.4
    # (READ RECORD "当 Le=00 时，应以 6Cxx 返回可读的实际长度") says every card does, so it is
    # the default. false = a COS that, like a plain ISO 7816-4 card, answers the data to Le=00
    # (an assumption about non-conforming cards, no public trace of one). A wrong non-zero Le
    # is 6Cxx on every persona.
    le_zero_6c: bool = True
    multi_record: bool = True       # READ RECORD P1..last (P2 mode 101) supported
    fci_algorithm: bool = True      # FCI of SSSE carries 9F0C/86 with the algorithm id
    # A COS that reads only the current EF: every public trace selects the EF first
    # (00A4020002EF05) and reads with P2 SFI bits 0 (SI_3rdCard docs/加密机方式指令流.txt,
    # docs/EgAPP-20180611.log); SFI-referenced READ RECORD/BINARY then answers this SW
    # (part 5 table 5: 6A86 wrong P1/P2; 6A82 and 6A81 are other COS' choices).
    sfi_read: bool = True
    sfi_refused_sw: int = SW.WRONG_P1P2


def decode_pin(data: bytes) -> str | None:
    """cn PIN block → digits; None if a nibble is not a digit before the F padding."""
    digits = []
    text = data.hex().upper()
    stripped = text.rstrip("F")
    for ch in stripped:
        if not ch.isdigit():
            return None
        digits.append(ch)
    return "".join(digits)


class SimCard(CardOS):
    """The card. ``process(apdu) -> response`` is all a reader sees."""

    def __init__(self, atr: bytes, mf: SimDF, apps: dict[bytes, SimDF], pin: PinState,
                 behaviour: Behaviour, *, algorithm_id: int, profile: CardProfile | None = None
                 ) -> None:
        super().__init__(atr)
        self.mf = mf
        self.apps = apps                 # selectable by DF name / AID
        self.pin = pin
        self.behaviour = behaviour
        self.algorithm_id = algorithm_id
        self.profile = profile
        self.card_blocked = False
        self.handlers.update(BASE_HANDLERS)
        # State of the optional modules (sbcard.sim.persona.EXTENSIONS), each its own type.
        self.persona: Persona | None = None
        self.auth: AuthState | None = None
        self.sm_session: bytes | None = None          # STK session key of the latest MAC
        self.pki: PkiState | None = None
        self.purse: PurseState | None = None          # DF04 medical purse (sim/purse.py)
        self.faults: FaultInjector | None = None
        self._reset_state()

    @property
    def t0_get_response(self) -> bool:
        return self.behaviour.t0_get_response

    # -- life cycle ---------------------------------------------------------------------
    def _reset_state(self) -> None:
        self.current_df: SimDF = self.mf
        self.current_ef: SimEF | None = None
        self.record_ptr: int | None = None
        self.challenge: bytes | None = None
        self.authenticated: set[int] = set()
        self.pin_verified = False

    # -- dispatch -----------------------------------------------------------------------
    def _refuse(self, cmd: CommandApdu) -> Reply | None:
        if self.card_blocked:
            return b"", SW.FUNCTION_NOT_SUPPORTED
        if cmd.cla not in SUPPORTED_CLA:
            return b"", SW.CLA_NOT_SUPPORTED
        if (cmd.ins in self.handlers and self.current_df.blocked
                and cmd.ins not in (0xA4, 0xC0)):
            return b"", SW.APPLICATION_BLOCKED
        return None

    # -- helpers for handlers -----------------------------------------------------------
    def satisfied(self, access: Access) -> bool:
        if access.never:
            return False
        if access.free:
            return True
        for cond in access.any_of:
            if cond.kind == "pin" and self.pin_verified:
                return True
            if cond.kind == "key" and cond.key_id in self.authenticated:
                return True
            if (cond.kind == "pin&key" and self.pin_verified    # "PIN & RK1DF04" (table 7)
                    and cond.key_id in self.authenticated):
                return True
        return False

    def select_app(self, df: SimDF) -> None:
        """Selecting another application clears security state and the challenge."""
        if df is not self.current_df:
            self.authenticated.clear()
            self.pin_verified = False
            self.challenge = None
        self.current_df = df
        self.current_ef = None
        self.record_ptr = None

    def ef_for(self, sfi: int) -> SimEF | None:
        """SFI 0 means the current EF; any other SFI selects that EF of the current DF."""
        if sfi == 0:
            return self.current_ef
        ef = self.current_df.by_sfi.get(sfi)
        if ef is not None and ef is not self.current_ef:
            self.current_ef = ef
            self.record_ptr = None
        return ef


# -- command handlers ----------------------------------------------------------------------

def le_reply(card: SimCard, cmd: CommandApdu, data: bytes, *, le_zero_rule: bool = True
             ) -> Reply:
    """Answer with ``data`` honouring Le the way the spec's cards do (6Cxx on a wrong Le).

    ``le_zero_rule``: Le=00 counts as wrong (part 5 §6.10.4, stated for READ RECORD) unless
    the persona's ``le_zero_6c`` is off. Commands outside that rule (the PKI ones, no public
    source for their Le handling) pass False and answer the data to Le=00, so a signature is
    never lost to a 6Cxx the T=0 layer may not re-send. Data of 256 bytes or more answers
    Le=00 with 256 bytes: 6Cxx cannot name that length.
    """
    le = cmd.le
    zero_is_wrong = le_zero_rule and card.behaviour.le_zero_6c and len(data) < 256
    if le is None or (le == 256 and not zero_is_wrong):
        return data[:256], SW.OK
    if le != len(data):
        return b"", SW.WRONG_LE | (len(data) & 0xFF)
    return data, SW.OK


def h_select(card: SimCard, cmd: CommandApdu) -> Reply:
    p1, p2 = cmd.p1, cmd.p2
    if p2 not in (0x00, 0x0C, 0x02):
        return b"", SW.WRONG_P1P2
    if p1 == 0x04:                                   # by DF name
        for name, df in card.apps.items():
            if cmd.data and name.startswith(cmd.data):
                if df.blocked:
                    card.select_app(df)
                    return b"", SW.APPLICATION_BLOCKED
                card.select_app(df)
                return (b"" if p2 == 0x0C else df.fci), SW.OK
        return b"", SW.FILE_NOT_FOUND
    if p1 in (0x00, 0x02, 0x01):                     # by file identifier
        if p1 == 0x00 and (not cmd.data or cmd.data == b"\x3f\x00"):
            card.select_app(card.mf)
            return (b"" if p2 == 0x0C else card.mf.fci), SW.OK
        if len(cmd.data) != 2:
            return b"", SW.WRONG_LENGTH
        fid = int.from_bytes(cmd.data, "big")
        ef = card.current_df.efs.get(fid)
        if ef is not None:
            card.current_ef = ef
            card.record_ptr = None
            return b"", SW.OK
        child = _child_df(card, fid) if p1 in (0x00, 0x01) else None
        if child is not None:
            card.select_app(child)
            return (b"" if p2 == 0x0C else child.fci), SW.OK
        return b"", SW.FILE_NOT_FOUND
    return b"", SW.WRONG_P1P2


def _child_df(card: SimCard, fid: int) -> SimDF | None:
    """A DF by FID as ISO 7816-4 scopes it: a child of the current DF (or a sibling of it),
    else a DF directly under the MF. DF01 under the SSSE and a PKI ADF with FID DF01 under
    the MF are different files."""
    found = [df for df in card.apps.values() if df.spec.fid == fid]
    here = card.current_df
    for df in found:
        if df.parent is not None and (df.parent is here or df.parent is here.parent):
            return df
    return next((df for df in found if df.parent is None), None)


def _record_index(ef: SimEF, tag: int, mode: int, ptr: int | None) -> int | None:
    ids = [r[0] if r else None for r in ef.records]
    order = range(len(ids))
    if mode == 0b000:                                # first occurrence
        cands = list(order)
    elif mode == 0b001:                              # last occurrence
        cands = list(reversed(order))
    elif mode == 0b010:                              # next occurrence after the pointer
        cands = list(range((ptr + 1) if ptr is not None else 0, len(ids)))
    else:                                            # previous occurrence before the pointer
        cands = list(reversed(range(0, ptr if ptr is not None else len(ids))))
    for i in cands:
        if ids[i] == tag:
            return i
    return None


def _refuse(card: SimCard, ef: SimEF | None, sfi: int, *, records: bool,
            access: str) -> int | None:
    """The SW that refuses this file access, or None: no file, wrong structure, security."""
    if ef is None:
        return SW.NO_CURRENT_EF if sfi == 0 else SW.FILE_NOT_FOUND
    if ef.is_records != records:
        return SW.INCOMPATIBLE_FILE
    if not card.satisfied(getattr(ef, access)):
        return SW.SECURITY_NOT_SATISFIED
    return None


def h_read_record(card: SimCard, cmd: CommandApdu) -> Reply:
    sfi, mode = cmd.p2 >> 3, cmd.p2 & 0x07
    if sfi == 0x1F:
        return b"", SW.WRONG_P1P2
    if sfi and not card.behaviour.sfi_read:
        return b"", card.behaviour.sfi_refused_sw
    ef = card.ef_for(sfi)
    refused = _refuse(card, ef, sfi, records=True, access="read")
    if refused is not None:
        return b"", refused
    assert ef is not None
    recs = ef.records
    if mode == 0b100:                                # record number P1 (00 = current)
        idx = (card.record_ptr if cmd.p1 == 0 else cmd.p1 - 1)
        if idx is None or not 0 <= idx < len(recs):
            return b"", SW.RECORD_NOT_FOUND
        return _record_reply(card, cmd, recs, idx)
    if mode in (0b101, 0b110):                       # P1 to last / last to P1
        if not card.behaviour.multi_record:
            return b"", SW.WRONG_P1P2
        if not 1 <= cmd.p1 <= len(recs):
            return b"", SW.RECORD_NOT_FOUND
        chosen = recs[cmd.p1 - 1:] if mode == 0b101 else list(reversed(recs[cmd.p1 - 1:]))
        return le_reply(card, cmd, b"".join(bytes(r) for r in chosen))
    if mode <= 0b011:                                # by record identifier
        idx = _record_index(ef, cmd.p1, mode, card.record_ptr)
        if idx is None:
            return b"", SW.RECORD_NOT_FOUND
        return _record_reply(card, cmd, recs, idx)
    return b"", SW.WRONG_P1P2


def _record_reply(card: SimCard, cmd: CommandApdu, recs: list[bytearray], idx: int) -> Reply:
    """Record ``idx`` by Le; only an answered read moves the record pointer (a 6Cxx is an
    error status: the command was not done, so "next" stays where it was)."""
    data, sw = le_reply(card, cmd, bytes(recs[idx]))
    if sw == SW.OK:
        card.record_ptr = idx
    return data, sw


def h_update_record(card: SimCard, cmd: CommandApdu) -> Reply:
    sfi, mode = cmd.p2 >> 3, cmd.p2 & 0x07
    ef = card.ef_for(sfi)
    refused = _refuse(card, ef, sfi, records=True, access="write")
    if refused is not None:
        return b"", refused
    assert ef is not None
    if not cmd.data:
        return b"", SW.WRONG_LENGTH
    new = bytearray(cmd.data)
    if ef.spec.record_size and len(new) != ef.spec.record_size:   # fixed-length records
        return b"", SW.WRONG_LENGTH
    if ef.spec.structure is Structure.VARIABLE_RECORDS and (
        len(new) < 2 or new[1] != len(new) - 2
    ):
        return b"", SW.LC_INCONSISTENT                           # not one SIMPLE-TLV
    if mode == 0b100:
        idx = card.record_ptr if cmd.p1 == 0 else cmd.p1 - 1
        if idx is None or not 0 <= idx < len(ef.records):
            return b"", SW.RECORD_NOT_FOUND
    elif mode <= 0b011:
        if new[0] != cmd.p1:
            return b"", SW.WRONG_DATA                       # data tag must be the record identifier
        found = _record_index(ef, cmd.p1, mode, card.record_ptr)
        if found is None:                            # identifier mode appends when missing
            ef.records.append(new)
            card.record_ptr = len(ef.records) - 1
            return b"", SW.OK
        idx = found
    else:
        return b"", SW.WRONG_P1P2
    ef.records[idx] = new
    card.record_ptr = idx
    return b"", SW.OK


def h_append_record(card: SimCard, cmd: CommandApdu) -> Reply:
    """00 E2 00 P2: a new record in a cyclic file (ISO 7816-4 §7.3.7). It becomes record 1,
    the older ones move up and the oldest falls out when the file is full; the notice's
    cyclic files (tables 5 and 7: DF02 EF07/EF16, DF04 EF08/EF15) "新增记录" this way
    (reader-interface spec §3.1.2: "当拟写入的文件为循环文件时…函数将新增记录")."""
    if cmd.p1 != 0x00 or cmd.p2 & 0x07:
        return b"", SW.WRONG_P1P2
    sfi = cmd.p2 >> 3
    ef = card.ef_for(sfi)
    refused = _refuse(card, ef, sfi, records=True, access="write")
    if refused is not None:
        return b"", refused
    assert ef is not None
    if ef.spec.structure is not Structure.CYCLIC:
        return b"", SW.INCOMPATIBLE_FILE
    if len(cmd.data) != ef.spec.record_size:
        return b"", SW.WRONG_LENGTH
    ef.records.insert(0, bytearray(cmd.data))
    del ef.records[ef.spec.record_count:]
    card.record_ptr = 0
    return b"", SW.OK


def _binary_target(card: SimCard, cmd: CommandApdu) -> tuple[SimEF | None, int, int]:
    if cmd.p1 & 0x80:
        sfi = cmd.p1 & 0x1F
        return card.ef_for(sfi), cmd.p2, sfi
    return card.current_ef, ((cmd.p1 & 0x7F) << 8) | cmd.p2, 0


def h_read_binary(card: SimCard, cmd: CommandApdu) -> Reply:
    if cmd.p1 & 0x80 and not card.behaviour.sfi_read:
        return b"", card.behaviour.sfi_refused_sw
    ef, offset, sfi = _binary_target(card, cmd)
    refused = _refuse(card, ef, sfi, records=False, access="read")
    if refused is not None:
        return b"", refused
    assert ef is not None
    if offset > len(ef.data):
        return b"", SW.WRONG_OFFSET
    want = cmd.le or 256
    chunk = bytes(ef.data[offset:offset + want])
    if cmd.le not in (None, 256) and len(chunk) < want:
        return chunk, SW.END_OF_FILE
    return chunk, SW.OK


def h_update_binary(card: SimCard, cmd: CommandApdu) -> Reply:
    ef, offset, sfi = _binary_target(card, cmd)
    refused = _refuse(card, ef, sfi, records=False, access="write")
    if refused is not None:
        return b"", refused
    assert ef is not None
    if offset + len(cmd.data) > len(ef.data):
        return b"", SW.WRONG_OFFSET if offset > len(ef.data) else SW.WRONG_LENGTH
    ef.data[offset:offset + len(cmd.data)] = cmd.data
    return b"", SW.OK


def h_get_challenge(card: SimCard, cmd: CommandApdu) -> Reply:
    if cmd.le not in (4, 8, 16):
        return b"", SW.WRONG_LENGTH
    card.challenge = secrets.token_bytes(cmd.le)
    return card.challenge, SW.OK


def h_get_response(card: SimCard, cmd: CommandApdu) -> Reply:
    return card.get_response(cmd)


def _pin_failed(card: SimCard) -> Reply:
    card.pin.tries = max(0, card.pin.tries - 1)
    card.pin_verified = False
    if card.pin.tries == 0:
        return b"", SW.AUTH_BLOCKED
    return b"", SW.VERIFY_FAILED | card.pin.tries


def h_verify(card: SimCard, cmd: CommandApdu) -> Reply:
    if cmd.p1 != 0x00 or cmd.p2 != 0x00:
        return b"", SW.WRONG_P1P2
    pin = card.pin
    if not cmd.data:                                 # Lc=0: ask for the counter, spend nothing
        if pin.value is None:
            return b"", SW.OK
        if pin.blocked:
            return b"", SW.AUTH_BLOCKED
        return b"", SW.VERIFY_FAILED | pin.tries
    if not 2 <= len(cmd.data) <= 8:
        return b"", SW.WRONG_LENGTH
    if pin.value is None:
        return b"", SW.KEY_NOT_FOUND
    if pin.blocked:
        return b"", SW.AUTH_BLOCKED
    digits = decode_pin(cmd.data)
    if digits is None:
        return b"", SW.WRONG_DATA
    if secrets.compare_digest(digits, pin.value):
        pin.tries = pin.max_tries
        card.pin_verified = True
        return b"", SW.OK
    return _pin_failed(card)


def h_change_pin(card: SimCard, cmd: CommandApdu) -> Reply:
    """80 5E 01 00: old PIN ‖ FF ‖ new PIN, both cn (spec part 5, CHANGE PIN)."""
    if cmd.cla & 0xF0 != 0x80 or cmd.p1 != 0x01 or cmd.p2 != 0x00:
        return b"", SW.WRONG_P1P2
    if b"\xff" not in cmd.data or not 5 <= len(cmd.data) <= 17:
        return b"", SW.WRONG_DATA if cmd.data else SW.WRONG_LENGTH
    pin = card.pin
    if pin.value is None:
        return b"", SW.KEY_NOT_FOUND
    if pin.blocked:
        return b"", SW.AUTH_BLOCKED
    sep = cmd.data.index(b"\xff")
    old, new = decode_pin(cmd.data[:sep]), decode_pin(cmd.data[sep + 1:])
    if old is None or new is None or not PIN_MIN_DIGITS <= len(new) <= PIN_MAX_DIGITS:
        return b"", SW.WRONG_DATA
    if not secrets.compare_digest(old, pin.value):
        return _pin_failed(card)
    pin.value = new
    pin.tries = pin.max_tries
    return b"", SW.OK


BASE_HANDLERS: dict[int, Handler] = {
    0xA4: h_select,
    0xB2: h_read_record,
    0xDC: h_update_record,
    0xE2: h_append_record,
    0xB0: h_read_binary,
    0xD6: h_update_binary,
    0x84: h_get_challenge,
    0xC0: h_get_response,
    0x20: h_verify,
    0x5E: h_change_pin,
}
