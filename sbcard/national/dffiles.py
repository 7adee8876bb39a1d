"""The DF01–DF07 part of the national iReadCard / iWriteCard (+ HSM steps).

Formats (Sichuan reader-interface spec §2.1.2, §3.1.2, §3.2; gdgly/SI_3rdCard
``docs/3-四川省…读写机具规范.pdf``): pFileAddr ``DF01EF0A|37|$DF01EF15|2A|40:2|$``; the output
mirrors it, ``DF01EF0A|CHN|$``; a cyclic file named alone gives every record, each record's
items ``^``-separated and ending with ``^``, records ``|``-separated; a cyclic file is
written by appending records; a transparent file is its content (hex here). pWriteData
mirrors pFileAddr with the values. Values: ``sbcard.card.dftext``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sbcard.apdu import commands as cmds
from sbcard.apdu.channel import ApduChannel
from sbcard.apdu.command import CommandApdu
from sbcard.card.dfs import DF_BY_NAME, KEY_BY_REF, key_ref, split_file_name
from sbcard.card.filesystem import Structure
from sbcard.errors import BadInputError, RefusedError
from sbcard.keys.base import CardContext, KeySource
from sbcard.national import codes
from sbcard.national.codes import NationalError
from sbcard.national.lines import join_fields, split_fields
from sbcard.ops.pin import Pin
from sbcard.ops.records import DfSession, ItemRef, Method, ReadAuth, read_file, write_file


@dataclass(frozen=True)
class DfGroup:
    """One ``$``-terminated part of pFileAddr / pWriteData naming a DF file."""

    file: str
    fields: tuple[str, ...]           # items (pFileAddr) or values (pWriteData)


def is_df_file(name: str) -> bool:
    return name.strip().upper()[:4] in DF_BY_NAME


def _bad(detail: str) -> NationalError:
    return NationalError(codes.BAD_DATA, f"{codes.message(codes.BAD_DATA)}（{detail}）")


def parse_groups(text: str) -> list[DfGroup]:
    """``DF01EF0A|37|$DF01EF15|2A|40:2|$`` → groups; cyclic record texts keep their '^'."""
    out = []
    for part in text.strip().split("$"):
        if not part.strip():
            continue
        fields = split_fields(part.strip())
        if not fields:
            continue
        out.append(DfGroup(fields[0].strip().upper(), tuple(fields[1:])))
    return out


def _items(group: DfGroup) -> tuple[ItemRef, ...]:
    _, ef = _spec(group.file)
    try:
        return tuple(ItemRef.parse(f, ef) for f in group.fields if f.strip())
    except BadInputError as exc:
        raise _bad(str(exc)) from None


def _spec(file: str):
    try:
        return split_file_name(file)
    except BadInputError as exc:
        raise _bad(str(exc)) from None


def check_address(groups: list[DfGroup]) -> None:
    """Every item exists in its file (−23 naming the first that does not)."""
    for g in groups:
        _, ef = _spec(g.file)
        for ref in _items(g):
            if ref.tag is not None and ref.n > ef.tags.count(ref.tag):
                raise _bad(f"{g.file} 没有记录 {ref}")


def read_groups(channel: ApduChannel, groups: list[DfGroup], *, method: Method,
                pin: Pin | None, keys: KeySource | None, ctx: CardContext | None,
                pin_guard: bool) -> str:
    """The iReadCard output for the DF groups."""
    session = DfSession(channel, ctx=ctx)
    auth = ReadAuth(method, pin=pin, keys=keys, force=not pin_guard)
    out = []
    for g in groups:
        try:
            result = read_file(session, g.file, _items(g), auth)
        except RefusedError as exc:
            raise _refusal(exc) from None
        out.append(join_fields(g.file, *result.texts) + "$")
    return "".join(out)


def _refusal(exc: RefusedError) -> NationalError:
    text = str(exc)
    if "needs the PIN" in text:
        return NationalError(codes.BAD_PARAMETER, f"{codes.message(codes.BAD_PARAMETER)}"
                                                  "（该文件需校验密码：iAuthType=1）")
    if "key source" in text or "has no key" in text:
        return NationalError(codes.NO_PSAM, f"{codes.message(codes.NO_PSAM)}（{text}）")
    if "try" in text:
        return NationalError(codes.PIN_CANCELLED, "用户取消密码输入：仅剩1次机会，为防止锁卡"
                                                  "未提交密码")
    return NationalError(codes.BAD_DATA, f"{codes.message(codes.BAD_DATA)}（{text}）")


def write_plan(addr: list[DfGroup], data: list[DfGroup]
               ) -> list[tuple[str, tuple[ItemRef, ...], tuple[str, ...]]]:
    """Pair pFileAddr with pWriteData (same files, same number of items; cyclic: records)."""
    if [g.file for g in addr] != [g.file for g in data]:
        raise _bad("pWriteData 与 pFileAddr 的文件不一致")
    plan: list[tuple[str, tuple[ItemRef, ...], tuple[str, ...]]] = []
    for a, d in zip(addr, data, strict=True):
        _, ef = _spec(a.file)
        if ef.structure in (Structure.CYCLIC, Structure.TRANSPARENT):
            values = tuple(v for v in d.fields if v != "")
            if ef.structure is Structure.TRANSPARENT and len(values) != 1:
                raise _bad(f"{a.file} 为透明文件：写入一项十六进制内容")
            plan.append((a.file, (), values))
            continue
        items = _items(a)
        if len(items) != len(d.fields):
            raise _bad(f"{a.file} 数据项 {len(items)} 个，写入数据 {len(d.fields)} 个")
        plan.append((a.file, items, d.fields))
    return plan


def write_groups(channel: ApduChannel, plan, keys: KeySource, ctx: CardContext | None) -> None:
    session = DfSession(channel, ctx=ctx)
    for file, items, values in plan:
        try:
            write_file(session, file, items, values, keys)
        except RefusedError as exc:
            raise _write_refusal(exc) from None
        except BadInputError as exc:
            raise _bad(str(exc)) from None


def _write_refusal(exc: RefusedError) -> NationalError:
    text = str(exc)
    if "不允许改写" in text or "no write key" in text:
        return _bad(text)
    return _refusal(exc)


def write_key(file: str) -> tuple[int, str]:
    """(card key reference, HSM address) of the file's update key (−23 if not writable)."""
    df, ef = _spec(file)
    ids = ef.write.key_ids()
    if ef.write.never or not ids:
        raise _bad(f"{file} 不允许写入")
    ref = key_ref(df.name, ids[0])
    return ref, _address(ref)


def read_key(file: str) -> tuple[int, str] | None:
    """(RK reference, HSM address) when the file's read can be met by a key; else None."""
    df, ef = _spec(file)
    for c in ef.read.any_of:
        if c.kind in ("key", "pin&key") and c.key_id is not None:
            ref = key_ref(df.name, c.key_id)
            return ref, _address(ref)
    return None


def needs_pin_first(file: str) -> bool:
    """"PIN & RK": the HSM read verifies the PIN before the randoms (§2.2.3 (6))."""
    return any(c.kind == "pin&key" for c in _spec(file)[1].read.any_of)


def _address(ref: int) -> str:
    key = KEY_BY_REF.get(ref)
    if key is None or key.hsm is None:
        raise _bad(f"{key.name if key else ref} 无加密机密钥地址")
    return f"{key.hsm:04X}"


def select_df(channel: ApduChannel, file: str) -> None:
    df, _ = _spec(file)
    channel.check(cmds.select_by_name(df.df_name, fci=False))


def external_auth_with(channel: ApduChannel, ref: int, pkey: bytes) -> None:
    """EXTERNAL AUTHENTICATE with the HSM's answer (A ‖ original) for a DF key."""
    channel.check(CommandApdu(0x00, 0x82, 0x00, ref & 0xFF, pkey,
                              name=f"EXTERNAL AUTHENTICATE {KEY_BY_REF[ref].name}"))


def plain_session(channel: ApduChannel, file: str, ref: int, ctx: CardContext | None
                  ) -> DfSession:
    """A session that knows the DF is selected and the key authenticated (HSM step 2)."""
    df, _ = _spec(file)
    session = DfSession(channel, ctx=ctx, current=df.name)
    session.keys_ok.add(ref)
    return session


def needs_pin(file: str, method: Method) -> bool:
    """The read of ``file`` asks for the PIN under ``method`` (so the PIN source is used)."""
    conds = _spec(file)[1].read.any_of
    if any(c.kind == "pin&key" for c in conds):
        return True
    if not any(c.kind == "pin" for c in conds):
        return False
    return method is Method.PIN or not any(c.kind == "key" for c in conds)


def read_with(session: DfSession, group: DfGroup) -> str:
    """HSM step 2 of a read: the key is authenticated already."""
    try:
        result = read_file(session, group.file, _items(group), ReadAuth(Method.KEY))
    except RefusedError as exc:
        raise _refusal(exc) from None
    return join_fields(group.file, *result.texts) + "$"


def write_with(session: DfSession, plan) -> None:
    """HSM step 2 of a write: the UK key is authenticated already."""
    for file, items, values in plan:
        try:
            write_file(session, file, items, values, None)
        except RefusedError as exc:
            raise _write_refusal(exc) from None
        except BadInputError as exc:
            raise _bad(str(exc)) from None
