"""Authentication and secure messaging on the simulated card (spec §5.2–§5.7).

The card's keys are derived the way an issuer derives them: roots from a key file (by default
the repository's public test keys) diversified with this card's ATR and region. So a key
file that matches the persona's authenticates, and any other fails exactly as on a real card.

Commands: EXTERNAL AUTHENTICATE (00 82, retry counter per key, 6984 without a fresh challenge,
6A88 unknown key, 6983 when the counter is spent), INTERNAL AUTHENTICATE (00 88, IRK),
PIN UNBLOCK/RELOAD (84 24, after PUK external authentication, MAC and enciphered PIN under the
STK session key of the latest challenge), APPLICATION BLOCK (84 1E), CARD BLOCK (84 16).
ASSUMPTION (spec §5.7 leaves it open): the block commands are MACed with STK (card key 02).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

from sbcard.apdu.command import CommandApdu
from sbcard.apdu.sw import SW
from sbcard.card.dfs import DF_BY_NAME, key_ref
from sbcard.card.filesystem import (
    KEY_BK,
    KEY_IRK,
    KEY_PUK,
    KEY_STK,
    PIN_MAX_DIGITS,
    PIN_MIN_DIGITS,
    SSSE,
)
from sbcard.crypto import card_algos
from sbcard.crypto.symmetric import Algorithm
from sbcard.errors import BadInputError
from sbcard.keys.base import CardContext
from sbcard.keys.builtin import builtin_key_file
from sbcard.keys.keyfile import KeyFile
from sbcard.sim.card_os import Handler, Reply, SimCard, decode_pin

if TYPE_CHECKING:
    from sbcard.sim.persona import Persona

DEFAULT_KEY_TRIES = 15
MAC_LEN = 4


def _fits(algorithm, challenge: bytes) -> bool:
    """spec §5.5: a session key or cryptogram is made from R4/R8 in an 8-byte-block (DES)
    environment; a 16-byte challenge there is unusable (6985), never a crash (it was)."""
    return len(challenge) in ((4, 8) if algorithm.block_size == 8 else (4, 8, 16))


class CardKey:
    """A key on the simulated card and its retry counter.

    The value is derived from its root (the issuer's diversification) the first time the card
    uses it, not when the card is built: a card holds some 55 keys (the DF01–DF07 keys among
    them) and a personalisation uses a handful, so deriving every one made building a simulated
    card cost more than personalising it (docs/benchmarks.md). Same value, derived later.
    """

    __slots__ = ("_derive", "_value", "max_tries", "tries")

    def __init__(self, value: bytes | Callable[[], bytes], tries: int, max_tries: int) -> None:
        self._value: bytes | None = value if isinstance(value, bytes) else None
        self._derive: Callable[[], bytes] | None = None if isinstance(value, bytes) else value
        self.tries = tries
        self.max_tries = max_tries

    @property
    def derived(self) -> bool:
        """Whether the value has been computed yet (for tests)."""
        return self._value is not None

    @property
    def value(self) -> bytes:
        if self._value is None:
            assert self._derive is not None
            self._value, self._derive = self._derive(), None
        return self._value

    def __repr__(self) -> str:  # never show key bytes
        return f"CardKey(tries={self.tries}/{self.max_tries})"


@dataclass
class AuthState:
    algorithm: Algorithm
    keys: dict[int, CardKey] = field(default_factory=dict)
    #: Further versions of a key, by (key ID, version): the optional 17th byte of INTERNAL /
    #: EXTERNAL AUTHENTICATE names one (part 5 §6.4.3, §6.7.3); the keys above are
    #: ``base_version``. An unknown version answers 6A88 (密钥未找到, table 16), no try spent.
    versioned: dict[tuple[int, int], CardKey] = field(default_factory=dict)
    base_version: int = 1

    def key(self, key_id: int, data: bytes) -> CardKey | None:
        """The key an authentication command names: Lc 10 = the base key, Lc 11 = by version."""
        if len(data) == 17 and data[16] != self.base_version:
            return self.versioned.get((key_id, data[16]))
        return self.keys.get(key_id)


def install(card: SimCard, persona: Persona) -> None:
    conf = persona.keys or {}
    algorithm = Algorithm[persona.algorithm if persona.algorithm != "3DES" else "DES"]
    if not algorithm.supported:
        return
    source = conf.get("file", "test")
    try:
        keyfile = (builtin_key_file(source) if "/" not in source and not source.endswith(".toml")
                   else KeyFile.load(source, check_permissions=False, warn=lambda _m: None))
    except FileNotFoundError:
        raise BadInputError(f"persona {persona.name}: no key file {source!r}") from None
    region = str(persona.card.get("region", "000000"))
    ctx = CardContext(persona.atr, region, algorithm)
    tries = int(conf.get("tries", DEFAULT_KEY_TRIES))
    state = AuthState(algorithm)
    state.base_version = int(conf.get("version", 1))
    wanted = {int(v) for v in conf.get("versions", [])}
    for root in keyfile.roots:
        if root.algorithm is not algorithm:
            continue
        key = CardKey(partial(root.card_key, ctx), tries, tries)
        if root.version is None:
            state.keys[root.card_key_id] = key
        elif root.version in wanted:
            state.versioned[(root.card_key_id, root.version)] = key
    for kid, left in conf.get("key_tries", {}).items():
        if int(kid, 16) in state.keys:
            state.keys[int(kid, 16)].tries = int(left)
    card.auth = state
    for ins in (0xDC, 0xD6, 0xE2):
        card.handlers[ins] = secured_update(card.handlers[ins])
    card.handlers.update({0x82: h_external_auth, 0x88: h_internal_auth, 0x24: h_pin_sm,
                          0x1E: h_application_block, 0x16: h_card_block})


def key_ref_in(card: SimCard, key_id: int) -> int:
    """The key a command names inside the current DF: a DF's keys have b8 set (part 5 table
    14: specific/DF-level key) and their IDs repeat across DF01–DF07 (part 9 table B1), so the
    current DF scopes them (``sbcard.card.dfs.key_ref``)."""
    name = card.current_df.spec.name
    if key_id & 0x80 and name in DF_BY_NAME:
        return key_ref(name, key_id)
    return key_id


def _state(card: SimCard) -> AuthState:
    assert card.auth is not None, "handlers are installed with their state"
    return card.auth


def h_external_auth(card: SimCard, cmd: CommandApdu) -> Reply:
    st = _state(card)
    if cmd.p1 != 0x00:
        return b"", SW.WRONG_P1P2
    if len(cmd.data) not in (16, 17):
        return b"", SW.WRONG_LENGTH
    key = st.key(key_ref_in(card, cmd.p2), cmd.data)
    if key is None:
        return b"", SW.KEY_NOT_FOUND
    if key.tries == 0:
        return b"", SW.AUTH_BLOCKED
    challenge, card.challenge = card.challenge, None     # a challenge is good for one try
    if challenge is None:
        return b"", SW.NO_CHALLENGE
    if not _fits(st.algorithm, challenge):
        return b"", SW.CONDITIONS_NOT_SATISFIED
    a, x = cmd.data[:8], cmd.data[8:16]
    expected = card_algos.external_auth_data(st.algorithm, key.value, challenge, x)
    if a != expected:
        key.tries -= 1
        card.authenticated.discard(cmd.p2)
        return b"", SW.AUTH_BLOCKED if key.tries == 0 else SW.VERIFY_FAILED | min(key.tries, 0x0F)
    key.tries = key.max_tries
    card.authenticated.add(cmd.p2)
    return b"", SW.OK


def h_internal_auth(card: SimCard, cmd: CommandApdu) -> Reply:
    st = _state(card)
    if len(cmd.data) not in (16, 17):
        return b"", SW.WRONG_LENGTH
    key = st.key(cmd.p2 if cmd.p2 else KEY_IRK, cmd.data)
    if key is None:
        return b"", SW.KEY_NOT_FOUND
    sk = card_algos.session_key(st.algorithm, key.value, cmd.data[:8])
    return card_algos.auth_data(st.algorithm, sk, cmd.data[8:16]), SW.OK


def _check_mac(card: SimCard, cmd: CommandApdu, key_id: int, cla: int = 0x84) -> int | None:
    """None when the MAC over header ‖ Lc ‖ data is right; else the SW to answer."""
    st = _state(card)
    if cmd.cla != cla:
        return SW.SM_DATA_MISSING
    if len(cmd.data) < MAC_LEN:
        return SW.WRONG_LENGTH
    challenge, card.challenge = card.challenge, None
    if challenge is None:
        return SW.NO_CHALLENGE
    if not _fits(st.algorithm, challenge):
        return SW.CONDITIONS_NOT_SATISFIED
    key = st.keys.get(key_ref_in(card, key_id))
    if key is None:
        return SW.KEY_NOT_FOUND
    session = card_algos.session_key(st.algorithm, key.value, challenge)
    body = cmd.header + bytes((len(cmd.data),)) + cmd.data[:-MAC_LEN]
    if card_algos.mac(st.algorithm, session, body) != cmd.data[-MAC_LEN:]:
        return SW.SM_DATA_INCORRECT
    card.sm_session = session
    return None


def secured_update(base: Handler) -> Handler:
    """UPDATE RECORD/BINARY and APPEND RECORD with CLA 04: the MAC (session key of the file's
    write key, from the latest challenge) stands in for a prior EXTERNAL AUTHENTICATE (spec
    §4.1, §5.6)."""
    def handler(card: SimCard, cmd: CommandApdu) -> Reply:
        if cmd.cla != 0x04:
            return base(card, cmd)
        ef = _target_ef(card, cmd)
        if ef is None:
            return b"", SW.FILE_NOT_FOUND
        key_ids = ef.write.key_ids()
        if not key_ids:
            return b"", SW.SECURITY_NOT_SATISFIED
        sw = _check_mac(card, cmd, key_ids[0], cla=0x04)
        if sw is not None:
            return b"", sw
        card.sm_session = None
        plain = CommandApdu(0x00, cmd.ins, cmd.p1, cmd.p2, cmd.data[:-MAC_LEN])
        granted = key_ids[0] not in card.authenticated
        card.authenticated.add(key_ids[0])            # for this one command only
        try:
            return base(card, plain)
        finally:
            if granted:
                card.authenticated.discard(key_ids[0])
    return handler


def _update_sfi(cmd: CommandApdu) -> int:
    if cmd.ins in (0xDC, 0xE2):                       # UPDATE/APPEND RECORD: SFI in P2
        return cmd.p2 >> 3
    return cmd.p1 & 0x1F if cmd.p1 & 0x80 else 0      # UPDATE BINARY: SFI in P1 when b8 set


def _target_ef(card: SimCard, cmd: CommandApdu):
    sfi = _update_sfi(cmd)
    return card.current_ef if sfi == 0 else card.current_df.by_sfi.get(sfi)


def h_pin_sm(card: SimCard, cmd: CommandApdu) -> Reply:
    """84 24 00 00: unblock (MAC only). 84 24 00 01: reload (enc PIN ‖ MAC). Need PUK first."""
    if cmd.p1 != 0x00 or cmd.p2 not in (0x00, 0x01):
        return b"", SW.WRONG_P1P2
    if KEY_PUK not in card.authenticated:
        return b"", SW.SECURITY_NOT_SATISFIED
    sw = _check_mac(card, cmd, KEY_STK)
    if sw is not None:
        return b"", sw
    pin = card.pin
    if cmd.p2 == 0x00:
        pin.tries = pin.max_tries
        return b"", SW.OK
    session, card.sm_session = card.sm_session, None
    assert session is not None, "set by _check_mac"
    try:
        block = card_algos.decrypt_field(_state(card).algorithm, session, cmd.data[:-MAC_LEN])
    except BadInputError:
        return b"", SW.WRONG_DATA
    digits = decode_pin(block)
    if digits is None or not PIN_MIN_DIGITS <= len(digits) <= PIN_MAX_DIGITS:
        return b"", SW.WRONG_DATA
    pin.value = digits
    pin.tries = pin.max_tries
    return b"", SW.OK


def _lock_control(card: SimCard) -> bool:
    """Part 7 §13: application maintenance (card/application block) only after EXTERNAL
    AUTHENTICATE with the lock control key BK (part 6 table 3, 发卡方), then the command
    MACed with STK."""
    return KEY_BK in card.authenticated


def h_application_block(card: SimCard, cmd: CommandApdu) -> Reply:
    if cmd.p1 != 0x00 or cmd.p2 not in (0x00, 0x01):
        return b"", SW.WRONG_P1P2
    if card.current_df.spec is not SSSE:
        return b"", SW.CONDITIONS_NOT_SATISFIED
    if not _lock_control(card):
        return b"", SW.SECURITY_NOT_SATISFIED
    sw = _check_mac(card, cmd, KEY_STK)
    if sw is not None:
        return b"", sw
    card.current_df.blocked = True
    return b"", SW.OK


def h_card_block(card: SimCard, cmd: CommandApdu) -> Reply:
    """84 16 00 00 04 MAC (part 5 §6.2, table 8): afterwards every command of every
    application answers 6A81 and does nothing (``SimCard._refuse``), across resets."""
    if (cmd.p1, cmd.p2) != (0x00, 0x00):
        return b"", SW.WRONG_P1P2
    if not _lock_control(card):
        return b"", SW.SECURITY_NOT_SATISFIED
    sw = _check_mac(card, cmd, KEY_STK)
    if sw is not None:
        return b"", sw
    card.card_blocked = True
    return b"", SW.OK
