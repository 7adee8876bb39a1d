"""The file part of the national iReadCard / iWriteCard (+ HSM steps): DF01–DF07, and the
SSSE files other than EF05/EF06 (those two keep the driver's own path).

Formats (Sichuan reader-interface spec §2.1.2, §3.1.2, §3.2; gdgly/SI_3rdCard
``docs/3-四川省…读写机具规范.pdf``): pFileAddr ``DF01EF0A|37|$DF01EF15|2A|40:2|$``; the output
mirrors it, ``DF01EF0A|CHN|$``; a cyclic file named alone gives every record, each record's
items ``^``-separated and ending with ``^``, records ``|``-separated; a cyclic file is
written by appending records; a transparent file is its content (hex here). pWriteData
mirrors pFileAddr with the values. Values: ``sbcard.card.dftext``.

SSSE files: §2.1.2 (4) names a file "ADF 的文件标识符和 AEF 的文件标识符" (``SSSEEF05``) and a
transparent file by its name alone ("只需指定文件名，函数将读出该文件下的所有文件数据"), so
EF07 指纹 / EF08 相片 are ``SSSEEF07|$`` / ``SSSEEF08|$`` and a region's record file is
``SSSEEF0D|EA|EB|$``. Appendix B.1 gives RKSSSE (004C, "指纹和相片信息读取") and UKSSSE (0094,
"发卡方和个人基本信息更新"). Public reader code does the same: a C++ ``iReadCard_HSM_Step1``
(ActiveX ``CGYHMeterCtrl``, repository not identified) answers ``SSSEEF07``/``SSSEEF08`` with
``004C0A`` and ``iWriteCard_HSM_Step1`` ``SSSEEF05``–``EF07`` with ``009412``; a C++ reader
DLL's file table (``CardFileType.cpp``, repository not identified) lists ``SSSEEF07`` and
``SSSEEF08`` as transparent (type 2, one item ``-``); a public kiosk (JavaScript) writes
``SSSEEF05|05|06|07|$SSSEEF06|…|$SSSEEF08|$`` with iWriteCard. Every file goes through
``sbcard.ops.records`` with the session's card profile, whose access, regional files and
key addresses (``hsm_address_map``) decide.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sbcard.apdu import commands as cmds
from sbcard.apdu.channel import ApduChannel
from sbcard.apdu.command import CommandApdu
from sbcard.card.dfs import DF_BY_NAME, key_ref, ref_name
from sbcard.card.filesystem import Structure
from sbcard.card.profiles import CardProfile
from sbcard.card.profiles.sections import HsmAddress
from sbcard.errors import BadInputError, RefusedError
from sbcard.keys.base import CardContext, KeySource
from sbcard.keys.hsm import HsmError, hsm_address
from sbcard.national import codes
from sbcard.national.codes import NationalError
from sbcard.national.lines import join_fields, split_fields
from sbcard.ops.pin import Pin
from sbcard.ops.records import (
    SSSE_PREFIX,
    DfSession,
    ItemRef,
    Method,
    ReadAuth,
    RecordFile,
    read_file,
    resolve,
    write_file,
)

#: The SSSE files the driver reads by its own path (iReadCardBas's records, ``:n`` items).
BASIC_FILES = ("SSSEEF05", "SSSEEF06")


@dataclass(frozen=True)
class DfGroup:
    """One ``$``-terminated part of pFileAddr / pWriteData naming a DF file."""

    file: str
    fields: tuple[str, ...]           # items (pFileAddr) or values (pWriteData)


def is_df_file(name: str) -> bool:
    return name.strip().upper()[:4] in DF_BY_NAME


def is_file_group(name: str) -> bool:
    """A DF01–DF07 file, or an SSSE file other than EF05/EF06 (EF07, EF08, a region's EF0D):
    the files this module reads and writes through ``ops.records``."""
    text = name.strip().upper()
    return is_df_file(text) or (text.startswith(SSSE_PREFIX) and text not in BASIC_FILES)


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


def _items(group: DfGroup, profile: CardProfile | None = None) -> tuple[ItemRef, ...]:
    ef = _spec(group.file, profile).ef
    if ef.structure is Structure.TRANSPARENT:
        # named alone (§2.1.2 (4)); a public kiosk writes ``SSSEEF08|01|$``: items ignored
        return ()
    try:
        return tuple(ItemRef.parse(f, ef) for f in group.fields if f.strip())
    except BadInputError as exc:
        raise _bad(str(exc)) from None


def _spec(file: str, profile: CardProfile | None = None) -> RecordFile:
    """The file as ``ops.records`` resolves it with ``profile`` (its access, items, keys)."""
    try:
        return resolve(file, profile)
    except BadInputError as exc:
        raise _bad(str(exc)) from None


def check_address(groups: list[DfGroup], profile: CardProfile | None = None) -> None:
    """Every item exists in its file (−23 naming the first that does not)."""
    for g in groups:
        ef = _spec(g.file, profile).ef
        for ref in _items(g, profile):
            if ref.tag is not None and ref.n > ef.tags.count(ref.tag):
                raise _bad(f"{g.file} 没有记录 {ref}")


def read_groups(channel: ApduChannel, groups: list[DfGroup], *, method: Method,
                pin: Pin | None, keys: KeySource | None, ctx: CardContext | None,
                pin_guard: bool, profile: CardProfile | None = None) -> str:
    """The iReadCard output for the file groups."""
    session = DfSession(channel, ctx=ctx)
    auth = ReadAuth(method, pin=pin, keys=keys, force=not pin_guard)
    out = []
    for g in groups:
        try:
            result = read_file(session, g.file, _items(g, profile), auth, profile=profile)
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


def write_plan(addr: list[DfGroup], data: list[DfGroup], profile: CardProfile | None = None
               ) -> list[tuple[str, tuple[ItemRef, ...], tuple[str, ...]]]:
    """Pair pFileAddr with pWriteData (same files, same number of items; cyclic: records)."""
    if [g.file for g in addr] != [g.file for g in data]:
        raise _bad("pWriteData 与 pFileAddr 的文件不一致")
    plan: list[tuple[str, tuple[ItemRef, ...], tuple[str, ...]]] = []
    for a, d in zip(addr, data, strict=True):
        ef = _spec(a.file, profile).ef
        if ef.structure in (Structure.CYCLIC, Structure.TRANSPARENT):
            values = tuple(v for v in d.fields if v != "")
            if ef.structure is Structure.TRANSPARENT and len(values) != 1:
                raise _bad(f"{a.file} 为透明文件：写入一项十六进制内容")
            plan.append((a.file, (), values))
            continue
        items = _items(a, profile)
        if len(items) != len(d.fields):
            raise _bad(f"{a.file} 数据项 {len(items)} 个，写入数据 {len(d.fields)} 个")
        plan.append((a.file, items, d.fields))
    return plan


def write_groups(channel: ApduChannel, plan, keys: KeySource, ctx: CardContext | None,
                 profile: CardProfile | None = None) -> None:
    session = DfSession(channel, ctx=ctx)
    for file, items, values in plan:
        try:
            write_file(session, file, items, values, keys, profile=profile)
        except RefusedError as exc:
            raise _write_refusal(exc) from None
        except BadInputError as exc:
            raise _bad(str(exc)) from None


def _write_refusal(exc: RefusedError) -> NationalError:
    text = str(exc)
    if "不允许改写" in text or "no write key" in text:
        return _bad(text)
    return _refusal(exc)


def write_key(file: str, addresses: Mapping[int, HsmAddress],
              profile: CardProfile | None = None) -> tuple[int, str]:
    """(card key reference, HSM address) of the file's update key (−23 if not writable, or
    when the session's profile gives the key no HSM address)."""
    spec = _spec(file, profile)
    ids = spec.write.key_ids()
    if spec.write.never or not ids:
        raise _bad(f"{file} 不允许写入")
    ref = key_ref(spec.df.name, ids[0])
    return ref, _address(ref, addresses)


def read_key(file: str, addresses: Mapping[int, HsmAddress],
             profile: CardProfile | None = None) -> tuple[int, str] | None:
    """(RK reference, HSM address) when the file's read can be met by a key; else None."""
    spec = _spec(file, profile)
    for c in spec.read.any_of:
        if c.kind in ("key", "pin&key") and c.key_id is not None:
            ref = key_ref(spec.df.name, c.key_id)
            return ref, _address(ref, addresses)
    return None


def needs_pin_first(file: str, profile: CardProfile | None = None) -> bool:
    """"PIN & RK": the HSM read verifies the PIN before the randoms (§2.2.3 (6))."""
    return any(c.kind == "pin&key" for c in _spec(file, profile).read.any_of)


def hsm_key_address(ref: int, addresses: Mapping[int, HsmAddress]) -> str:
    """The HSM address of card key ``ref`` (version 1) in ``addresses``; −23 without one."""
    return _address(ref, addresses)


def _address(ref: int, addresses: Mapping[int, HsmAddress]) -> str:
    """The key's version-1 logical address (appendix B 组数 01) in the session profile's
    ``hsm_address_map``: appendix B's DF keys, the profile's ``[hsm_addresses]`` (SSSE keys,
    a region's DF06 or EF0D keys)."""
    try:
        address = hsm_address(addresses, ref, None)
    except HsmError as exc:
        raise _bad(str(exc)) from None
    if address is None:
        raise _bad(f"{ref_name(ref)} 无加密机密钥地址（卡配置 [hsm_addresses] 未给出）")
    return address


def select_df(channel: ApduChannel, file: str, profile: CardProfile | None = None) -> None:
    channel.check(cmds.select_by_name(_spec(file, profile).df.df_name, fci=False))


def external_auth_with(channel: ApduChannel, ref: int, pkey: bytes) -> None:
    """EXTERNAL AUTHENTICATE with the HSM's answer (A ‖ original) for a DF or SSSE key."""
    channel.check(CommandApdu(0x00, 0x82, 0x00, ref & 0xFF, pkey,
                              name=f"EXTERNAL AUTHENTICATE {ref_name(ref)}"))


def plain_session(channel: ApduChannel, file: str, ref: int, ctx: CardContext | None,
                  profile: CardProfile | None = None) -> DfSession:
    """A session that knows the DF is selected and the key authenticated (HSM step 2)."""
    session = DfSession(channel, ctx=ctx, current=_spec(file, profile).df.name)
    session.keys_ok.add(ref)
    return session


def needs_pin(file: str, method: Method, profile: CardProfile | None = None) -> bool:
    """The read of ``file`` asks for the PIN under ``method`` (so the PIN source is used)."""
    return _spec(file, profile).read_needs_pin(method)


def read_with(session: DfSession, group: DfGroup, profile: CardProfile | None = None) -> str:
    """HSM step 2 of a read: the key is authenticated already."""
    try:
        result = read_file(session, group.file, _items(group, profile), ReadAuth(Method.KEY),
                           profile=profile)
    except RefusedError as exc:
        raise _refusal(exc) from None
    return join_fields(group.file, *result.texts) + "$"


def write_with(session: DfSession, plan, profile: CardProfile | None = None) -> None:
    """HSM step 2 of a write: the UK key is authenticated already."""
    for file, items, values in plan:
        try:
            write_file(session, file, items, values, None, profile=profile)
        except RefusedError as exc:
            raise _write_refusal(exc) from None
        except BadInputError as exc:
            raise _bad(str(exc)) from None
