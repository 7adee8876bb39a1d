"""Activation at the counter (领卡启用 / 异地激活), spec §8.

The chip has no activation flag: activating means the cardholder replaces the initial PIN
with their own, after the operator has checked the card and the person. The order is chosen so
that nothing irreversible happens until everything checkable has been checked:

1. read and validate the card (expiry, application not blocked);
2. compare the holder's identity with what the operator typed (ID number, optionally name);
3. ask the card how many PIN tries are left (spends none) and refuse at one unless forced;
4. VERIFY the initial PIN — if the card rejects it, stop: the card is probably activated
   already, and no second try is made;
5. CHANGE PIN from the initial PIN to the holder's new PIN;
6. call the back-office hook, if configured.

Every step is written to the audit log before it runs, so a card pulled out mid-way leaves a
record of how far it got.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from sbcard import messages as msg
from sbcard.apdu import commands as cmds
from sbcard.apdu.channel import ApduChannel
from sbcard.apdu.sw import AuthFailedError, BlockedError, CardError
from sbcard.errors import CardRemovedError, MismatchError, RefusedError, SbcardError
from sbcard.keys.base import KeySource
from sbcard.ops.audit import AuditLog, mask_ssn
from sbcard.ops.hook import HookError, check_hook, run_hook
from sbcard.ops.pin import Pin, check_new_pin, guard_tries, pin_status, select_ssse
from sbcard.ops.read import read_card


class AlreadyActivatedError(AuthFailedError):
    """The initial PIN was rejected: most likely the card was activated before."""


class HookFailedError(SbcardError):
    """The card is activated but the back office was not told."""


@dataclass(frozen=True)
class ActivationRequest:
    ssn: str
    operator: str
    initial_pin: Pin
    new_pin: Pin
    name: str | None = None
    force: bool = False
    allow_trivial: bool = False
    hook: str | None = None


@dataclass(frozen=True)
class ActivationResult:
    audit_id: int
    card_id: str | None
    card_no: str | None
    outcome: str
    hook: str | None = None


def _same_name(card: str | None, given: str) -> bool:
    def norm(s: str) -> str:
        return "".join(s.split()).replace("•", "·").replace("・", "·")
    return card is not None and norm(card) == norm(given)


def activate(channel: ApduChannel, req: ActivationRequest, audit: AuditLog, *,
             keys: KeySource | None = None, reader: str | None = None,
             say: Callable[[str], None] = lambda _m: None,
             today: dt.date | None = None) -> ActivationResult:
    check_new_pin(req.new_pin, old=req.initial_pin, allow_trivial=req.allow_trivial)
    hook = check_hook(req.hook) if req.hook else None     # before the card is touched
    for warning in hook.warnings if hook else ():
        say(warning)
    row = audit.start(req.operator, reader)
    step = "read"
    audit.update(row, step=step)
    card_id = card_no = None
    try:
        with channel.exclusive():
            report = read_card(channel, keys=keys, today=today)
            j = report.to_json()
            card_id, card_no = j["card_id"], j["card_no"]
            audit.update(row, card_id=card_id, card_no=card_no, ssn_masked=mask_ssn(j["ssn"]))
            step = "validate"
            audit.update(row, step=step)
            if not report.holder_read:
                raise RefusedError(msg.HOLDER_NEEDS_KEYS)
            expiry = report.value("expiry_date")
            if isinstance(expiry, dt.date) and expiry < (today or dt.date.today()):
                raise RefusedError(msg.CARD_EXPIRED(date=expiry.isoformat()))
            step = "identity"
            audit.update(row, step=step)
            if (j["ssn"] or "").upper() != req.ssn.strip().upper():
                raise MismatchError("the ID number on the card is not the one given: "
                                    "this card does not belong to this person")
            if req.name is not None and not _same_name(j["name"], req.name):
                raise MismatchError("the name on the card is not the one given")
            step = "pin-status"
            audit.update(row, step=step)
            select_ssse(channel)
            status = pin_status(channel)
            guard_tries(status, force=req.force, what="verifying the initial PIN")
            left = "unknown" if status.tries_left is None else str(status.tries_left)
            say(f"verifying the initial PIN 初始密码 ({left} tries left) …")
            step = "verify-initial-pin"
            audit.update(row, step=step)
            r = channel.send(cmds.verify(req.initial_pin.block()))
            if r.sw1 == 0x63 and r.sw2 & 0xF0 == 0xC0:
                raise AlreadyActivatedError(
                    r.sw, "VERIFY initial PIN (rejected: the card is probably activated "
                          "already; no second try was made)")
            if not r.ok:
                raise CardError.for_sw(r.sw, "VERIFY initial PIN")
            step = "change-pin"
            audit.update(row, step=step)
            say("setting the holder's new PIN 设置新密码 …")
            channel.check(cmds.change_pin(req.initial_pin.block(), req.new_pin.block()))
        step = "done"
        audit.update(row, step=step)
        audit.finish(row, "activated")
    except CardRemovedError as exc:
        audit.finish(row, "card removed", f"during {step}: {exc}")
        raise
    except AlreadyActivatedError as exc:
        audit.finish(row, "initial PIN rejected", str(exc))
        raise
    except SbcardError as exc:
        outcome = {MismatchError: "identity mismatch", RefusedError: "refused",
                   BlockedError: "blocked"}.get(type(exc), "failed")
        audit.finish(row, outcome, f"at {step}: {exc}")
        raise
    hook_status = None
    if hook is not None:
        payload = {"event": "activation", "card_id": card_id, "card_no": card_no,
                   "operator": req.operator, "outcome": "activated",
                   "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
        try:
            hook_status = run_hook(hook, payload)
        except (HookError, SbcardError, OSError) as exc:
            audit.update(row, hook=f"failed: {exc}")
            raise HookFailedError(f"card activated, back office NOT told: the hook "
                                  f"{hook.shown} failed: {exc} (audit log entry {row}); do "
                                  "not activate again — tell the back office by hand") from None
        audit.update(row, hook=hook_status)
    return ActivationResult(row, card_id, card_no, "activated", hook_status)
