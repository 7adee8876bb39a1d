"""Named operations of APDU scripts: the card model and the crypto behind one word each.

Each takes the runner (channel, key source, profile, variables), the statement and its
expanded arguments, and returns a short note to show (never a secret).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from sbcard.apdu import commands as cmds
from sbcard.apdu.commands import RecordMode
from sbcard.apdu.sw import CardError
from sbcard.card.codecs import join_name, split_name
from sbcard.card.elements import BY_KEY, split_records
from sbcard.card.filesystem import SSSE
from sbcard.card.profiles import PKI_GENERATION, profile_for
from sbcard.errors import BadInputError
from sbcard.ops.auth import external_authenticate, send_with_mac
from sbcard.ops.pin import Pin, reload_pin, verify_pin
from sbcard.ops.pki_issue import issue_sm2
from sbcard.ops.read import json_field, read_record_by_tag, select_ssse
from sbcard.ops.script import OperationRegistry, ScriptFailed, ScriptRunner, Statement

#: Every named operation of the script syntax, by verb: give it to ``ScriptContext``.
OPERATIONS = OperationRegistry()


@OPERATIONS.register("select-ssse")
def op_select_ssse(runner: ScriptRunner, st: Statement, args: list[str]) -> str:
    info = select_ssse(runner.card)
    alg = "-" if info.algorithm_id is None else f"{info.algorithm_id:02X}"
    return f"SSSE selected (algorithm {alg})"


@OPERATIONS.register("authenticate")
def op_authenticate(runner: ScriptRunner, st: Statement, args: list[str]) -> str:
    try:
        key_id = int(args[0], 16)
    except ValueError:
        raise BadInputError(f"{st.where}: authenticate takes a hex key ID, e.g. 04") from None
    keys = runner._keys(st)
    ctx = runner._card_context()
    external_authenticate(runner.card, keys, ctx, key_id)
    return f"authenticated with card key {key_id:02X} ({keys.name})"


def _element(st: Statement, key: str):
    el = BY_KEY.get(key)
    if el is None:
        known = ", ".join(BY_KEY)
        raise BadInputError(f"{st.where}: unknown data element {key!r} (known: {known})")
    return el


def _write(runner: ScriptRunner, el, value, st: Statement, mac: bool = False) -> None:
    sfi = SSSE.ef(el.ef).record_sfi
    record = el.encode_record(value)
    cmd = cmds.update_record(el.tag, record, sfi=sfi, mode=RecordMode.FIRST_ID)
    if not mac:
        runner.card.check(cmd)
        return
    write_key = SSSE.ef(el.ef).write.key_ids()[0]
    send_with_mac(runner.card, runner._keys(st), runner._card_context(),
                  write_key, replace(cmd, cla=0x04))


@OPERATIONS.register("write-element")
def op_write_element(runner: ScriptRunner, st: Statement, args: list[str]) -> str:
    """``write-element KEY VALUE [mac]``: ``mac`` = secured UPDATE RECORD (CLA 04 + MAC with
    the file's write key, no prior EXTERNAL AUTHENTICATE needed)."""
    key, value = args[0], args[1]
    if len(args) == 3 and args[2].lower() != "mac":
        raise BadInputError(f"{st.where}: write-element KEY VALUE [mac]")
    mac = len(args) == 3
    el = _element(st, key)
    if key == "name":
        head, tail = split_name(value)
        _write(runner, el, head, st, mac)
        tags = runner.ctx.profile.ef06_tags if runner.ctx.profile else (0x4E,)
        if 0x4E in tags:
            _write(runner, BY_KEY["name_ext"], tail, st, mac)
        elif tail:
            raise BadInputError(f"{st.where}: the name needs 姓名扩展 (4E), which this card "
                                "profile lacks")
        return f"{el.zh} written"
    _write(runner, el, value if value != "" else None, st, mac)
    return f"{el.zh} {el.en} written{' (MAC)' if mac else ''}"


@OPERATIONS.register("read-element")
def op_read_element(runner: ScriptRunner, st: Statement, args: list[str]) -> str:
    key = args[0]
    el = _element(st, key)
    ef = SSSE.ef(el.ef)
    ch = runner.card
    r = read_record_by_tag(ch, ef, el.tag)
    if not r.ok:
        raise CardError.for_sw(r.sw, f"READ RECORD {el.ef} tag {el.tag:02X}")
    records = split_records(r.data)
    value = el.decode_value(records[0].value).value if records else None
    if key == "name":
        ext = read_record_by_tag(ch, ef, 0x4E)
        tail = split_records(ext.data)[0].value if ext.ok and ext.data else None
        value = join_name(records[0].value if records else None, tail).value
    shown = json_field(key, value)
    expected = st.expect_data
    if expected is not None:
        want = runner.expand(expected, st)
        if str(shown) != want:
            secret = "******"
            raise ScriptFailed(f"{st.where}: {el.zh} {el.en} on the card is "
                               f"{secret if 'pin' in key else shown!r}, expected {want!r}")
        return f"{el.zh} {el.en} = {shown} ✓"
    runner.vars[key] = "" if shown is None else str(shown)
    return f"{el.zh} {el.en} = {shown}"


@OPERATIONS.register("reload-pin")
def op_reload_pin(runner: ScriptRunner, st: Statement, args: list[str]) -> str:
    reload_pin(runner.card, runner._keys(st), runner._card_context(),
               Pin(args[0]), allow_trivial=True)
    return "PIN set"


@OPERATIONS.register("verify-pin")
def op_verify_pin(runner: ScriptRunner, st: Statement, args: list[str]) -> str:
    verify_pin(runner.card, Pin(args[0]))
    return "PIN correct"


@OPERATIONS.register("sm2-issue")
def op_sm2_issue(runner: ScriptRunner, st: Statement, args: list[str]) -> str:
    """``sm2-issue [ADMIN_PIN [USER_PIN]]``: the card's key pair (generated unless it holds
    one), certificate from --ca, proved. Empty PINs take the profile's defaults."""
    ca = runner.ctx.ca
    if ca is None:
        raise BadInputError(f"{st.where}: sm2-issue needs a certificate authority (--ca)")
    profile = profile_for(PKI_GENERATION)
    v = runner.vars
    today = dt.date.today()

    def day(key: str, default: dt.date) -> dt.date:
        text = v.get(key) or ""
        return dt.date.fromisoformat(text) if text else default

    issued = issue_sm2(runner.card, profile, ca,
                       admin_pin=args[0] if args else None,
                       user_pin=args[1] if len(args) > 1 else None, card_no=v.get("card_no", ""),
                       region=runner._card_context().region,
                       not_before=day("issue_date", today),
                       not_after=day("expiry_date", today.replace(year=today.year + 10)))
    runner._card_ctx = None          # the PKI application is selected now
    made = "generated on the card" if issued.generated else "already on the card (EF 0012)"
    return f"SM2 key pair {made}; certificate {issued.certificate.describe()} written, " \
           "read back and proved by a signature"


@OPERATIONS.register("echo")
def op_echo(runner: ScriptRunner, st: Statement, args: list[str]) -> str:
    return " ".join(runner.expand(a, st, masked=True) for a in st.args)

