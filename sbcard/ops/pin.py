"""PIN operations that never spend a try the operator did not ask for.

Every operation first asks the card how many tries are left (VERIFY with no data, which
spends nothing: spec part 5 §6.14) and refuses below a threshold unless forced. A PIN is
held only as a ``Pin`` object whose repr is masked, encoded to the card's cn block at the
last moment, and never logged (the trace layer masks VERIFY/CHANGE PIN data as well).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from itertools import pairwise

from sbcard import messages as msg
from sbcard.apdu import commands as cmds
from sbcard.apdu.channel import ApduChannel
from sbcard.apdu.sw import SW, AuthFailedError, BlockedError, CardError
from sbcard.card.codecs import CN
from sbcard.card.filesystem import (
    KEY_BK,
    KEY_PUK,
    KEY_STK,
    PIN_MAX_DIGITS,
    PIN_MIN_DIGITS,
    SSSE_NAME,
)
from sbcard.errors import BadInputError, RefusedError
from sbcard.keys.base import CardContext, KeySource
from sbcard.ops.auth import external_authenticate, send_with_mac

MIN_PIN, MAX_PIN = PIN_MIN_DIGITS, PIN_MAX_DIGITS

#: PINs too easy to guess to accept as a cardholder's new PIN.
TRIVIAL_PINS = frozenset({
    "123456", "654321", "000000", "111111", "222222", "333333", "444444", "555555",
    "666666", "777777", "888888", "999999", "123123", "112233", "121212", "1234", "0000",
    "1111", "12345678", "87654321", "00000000",
})


@dataclass(frozen=True)
class Pin:
    digits: str = field(repr=False)

    def __post_init__(self) -> None:
        d = self.digits
        if not d:
            raise BadInputError("no PIN given (empty)")
        if not d.isdigit() or not d.isascii():
            raise BadInputError("a PIN is digits only")
        if not MIN_PIN <= len(d) <= MAX_PIN:
            raise BadInputError(f"a PIN has {MIN_PIN} to {MAX_PIN} digits, this one has "
                                f"{len(d)}")

    def __repr__(self) -> str:
        return "Pin(******)"

    __str__ = __repr__

    def block(self) -> bytes:
        """cn encoding: BCD, odd digit counts padded with F (spec part 5, VERIFY)."""
        return CN.encode(self.digits, (len(self.digits) + 1) // 2, what="PIN")

    @property
    def trivial(self) -> bool:
        d = self.digits
        if d in TRIVIAL_PINS or len(set(d)) == 1:
            return True
        steps = {int(b) - int(a) for a, b in pairwise(d)}
        return steps in ({1}, {-1})


def check_new_pin(new: Pin, *, old: Pin | None = None, allow_trivial: bool = False) -> None:
    if not allow_trivial and new.trivial:
        raise RefusedError(msg.TRIVIAL_PIN)
    if old is not None and secrets.compare_digest(new.digits, old.digits):
        raise RefusedError(msg.SAME_PIN)


@dataclass(frozen=True)
class PinStatus:
    tries_left: int | None      # None: no PIN set, or the card does not say
    blocked: bool
    pin_set: bool = True

    def to_json(self) -> dict:
        return {"tries_left": self.tries_left, "blocked": self.blocked, "pin_set": self.pin_set}


def select_ssse(channel: ApduChannel) -> None:
    channel.check(cmds.select_by_name(SSSE_NAME))


def pin_status(channel: ApduChannel) -> PinStatus:
    """Tries left without spending one (VERIFY with no data)."""
    r = channel.send(cmds.verify_query())
    if r.sw == SW.OK:
        return PinStatus(None, False, pin_set=False)
    if r.sw == SW.AUTH_BLOCKED:
        return PinStatus(0, True)
    if r.sw1 == 0x63 and r.sw2 & 0xF0 == 0xC0:
        return PinStatus(r.sw2 & 0x0F, r.sw2 & 0x0F == 0)
    return PinStatus(None, False)          # the card does not answer the query


def guard_tries(status: PinStatus, *, force: bool, what: str) -> None:
    """Refuse to risk the last try (or a try we cannot count) unless the operator forces it."""
    if status.blocked:
        raise BlockedError(SW.AUTH_BLOCKED,
                           "PIN (用户密码已锁定 PIN blocked; use `sbcard pin unblock`)")
    if force:
        return
    if status.tries_left is None and status.pin_set:
        raise RefusedError(msg.TRIES_UNKNOWN(what=what, what_zh=msg.ACTIONS_ZH.get(what, what)))
    if status.tries_left == 1:
        raise RefusedError(msg.LAST_TRY(what=what, what_zh=msg.ACTIONS_ZH.get(what, what)))


def verify_pin(channel: ApduChannel, pin: Pin, *, force: bool = False,
               status: PinStatus | None = None) -> None:
    """Check tries, then VERIFY. Raises AuthFailedError (tries_left) / BlockedError.

    ``status`` is a PinStatus the caller just read in this session (after SELECT SSSE), so a
    CLI can show the tries before prompting without asking the card twice.
    """
    with channel.exclusive():
        if status is None:
            select_ssse(channel)
            status = pin_status(channel)
        guard_tries(status, force=force, what="verifying")
        channel.check(cmds.verify(pin.block()))


def change_pin(channel: ApduChannel, old: Pin, new: Pin, *, force: bool = False,
               allow_trivial: bool = False) -> None:
    """CHANGE PIN (80 5E): the old PIN is checked by the card, one try at risk."""
    check_new_pin(new, old=old, allow_trivial=allow_trivial)
    with channel.exclusive():
        select_ssse(channel)
        guard_tries(pin_status(channel), force=force, what="changing the PIN")
        channel.check(cmds.change_pin(old.block(), new.block()))


def _sm_command(channel: ApduChannel, keys: KeySource, ctx: CardContext, ins: int, p1: int,
                p2: int, data: bytes = b"", *, encrypt: bool = False) -> None:
    """A proprietary secure-messaging command (CLA 84) MACed with STK (§5.7)."""
    name = {0x24: "PIN RELOAD" if p2 else "PIN UNBLOCK", 0x1E: "APPLICATION BLOCK",
            0x16: "CARD BLOCK"}.get(
        ins, f"SM {ins:02X}")
    send_with_mac(channel, keys, ctx, KEY_STK,
                  cmds.CommandApdu(0x84, ins, p1, p2, data, name=name), encrypt=encrypt)


def _puk_then_stk(channel: ApduChannel, keys: KeySource, ctx: CardContext, what: str,
                  p2: int, data: bytes = b"", *, encrypt: bool = False) -> None:
    """PIN CHANGE/UNBLOCK (84 24 00 P2): PUK external authentication, then STK SM (§5.7).

    Both keys are checked before the card is touched, so a missing key costs no try.
    """
    for key_id in (KEY_PUK, KEY_STK):
        if not keys.has_key(key_id):
            raise RefusedError(f"{keys.name} lacks card key {key_id:02X} needed to {what}")
    with channel.exclusive():
        select_ssse(channel)
        external_authenticate(channel, keys, ctx, KEY_PUK)
        _sm_command(channel, keys, ctx, 0x24, 0x00, p2, data, encrypt=encrypt)


def unblock_pin(channel: ApduChannel, keys: KeySource, ctx: CardContext) -> None:
    """PIN UNBLOCK (84 24 00 00): resets the try counter; the PIN stays."""
    _puk_then_stk(channel, keys, ctx, "unblock", 0x00)


def reload_pin(channel: ApduChannel, keys: KeySource, ctx: CardContext, new: Pin, *,
               allow_trivial: bool = False) -> None:
    """PIN RELOAD (84 24 00 01): sets a new PIN without the old one (cardholder forgot it)."""
    check_new_pin(new, allow_trivial=allow_trivial)
    _puk_then_stk(channel, keys, ctx, "reload", 0x01, new.block(), encrypt=True)


def _bk_then_stk(channel: ApduChannel, keys: KeySource, ctx: CardContext, what: str,
                 ins: int, p2: int) -> None:
    """CARD / APPLICATION BLOCK as part 7 §13 orders application maintenance: EXTERNAL
    AUTHENTICATE with the lock control key BK (part 6 table 3: "控制锁定卡片或应用操作的密钥"),
    then the command MACed with STK ("产生应用锁定、卡片锁定…命令的 MAC"). Both keys are
    checked before the card is touched."""
    for key_id in (KEY_BK, KEY_STK):
        if not keys.has_key(key_id):
            raise RefusedError(f"{keys.name} lacks card key {key_id:02X} needed to {what}")
    with channel.exclusive():
        select_ssse(channel)
        external_authenticate(channel, keys, ctx, KEY_BK)
        _sm_command(channel, keys, ctx, ins, 0x00, p2)


def block_application(channel: ApduChannel, keys: KeySource, ctx: CardContext) -> None:
    """APPLICATION BLOCK (84 1E 00 01 ‖ MAC, part 5 §6.1), permanent: SELECT then answers 9303."""
    _bk_then_stk(channel, keys, ctx, "block the application", 0x1E, 0x01)


def block_card(channel: ApduChannel, keys: KeySource, ctx: CardContext) -> None:
    """CARD BLOCK (84 16 00 00 ‖ MAC, part 5 §6.2), permanent: afterwards the card answers
    6A81 to every command."""
    _bk_then_stk(channel, keys, ctx, "block the card", 0x16, 0x00)


__all__ = ["AuthFailedError", "BlockedError", "CardError", "Pin", "PinStatus", "block_application",
           "block_card",
           "change_pin", "check_new_pin", "guard_tries", "pin_status", "reload_pin",
           "unblock_pin", "verify_pin"]
