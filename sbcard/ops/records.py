"""Read and write the records of DF01–DF07 (人社信息函〔2012〕37号), with the access each needs.

Addresses are the national ones (reader-interface spec §2.1.2, gdgly/SI_3rdCard
``docs/3-四川省…读写机具规范.pdf``): a file ``DF01EF15`` and, in record files, items by record
identifier, ``40:2`` = the second record with identifier 40; in cyclic files a record number
(1 = newest) or nothing (every record); a transparent file as a whole.

Access (notice tables 4–8, ``EfSpec.read/write``) is met the way that spec's §2.1.3 step 6
says: "PIN 或 RK" by the PIN or by EXTERNAL AUTHENTICATE with the DF's RK key as the caller
chooses (``ReadAuth.method``), "PIN & RK" by the key first and then the PIN, a key alone by
the key. Writes authenticate with the file's UK key (§3.1.3 step 6) or, with ``mac=True``,
send UPDATE/APPEND RECORD under secure messaging (CLA 04, MAC under the UK key), as SSSE
writes may. A PIN try is only ever spent when the caller gave a PIN and a file needs it;
the last try is kept unless ``force`` (the guard of ``sbcard verify pin``).
Selecting another DF clears the card's security state, so each DF authenticates afresh.

SSSE files go by the national form too (``SSSEEF07``, the reader-interface spec's
``SSSEEF05|01|07|$``): the transparent EF07 指纹 and EF08 相片 (read key RKSSSE, card key 0A,
人社信息函〔2012〕37号 table 3), and a region's own record files as its card profile describes
them (``[regional_files]``, e.g. Jiangsu EF0D in ``mohrss-3.0+jiangsu``): their items, access
keys, and whether records are named by number after SELECT EF (``address = "number"``, no SFI)
all come from the profile, not from code.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum

from sbcard.apdu import commands as cmds
from sbcard.apdu.channel import ApduChannel
from sbcard.apdu.command import CommandApdu
from sbcard.apdu.commands import RecordMode
from sbcard.apdu.sw import SW, CardError
from sbcard.card import dftext
from sbcard.card.dfs import (
    DF_BY_NAME,
    ITEMS,
    RECORD_FIELDS,
    key_ref,
    record_number,
    ref_name,
    split_file_name,
)
from sbcard.card.elements import DataElement, split_records
from sbcard.card.filesystem import KEY_IRK, SSSE, Access, DfSpec, EfSpec, Structure
from sbcard.card.profiles import CardProfile, profile_for
from sbcard.card.profiles.sections import RecordAddress
from sbcard.errors import BadInputError, RefusedError
from sbcard.hexutil import parse_hex
from sbcard.keys.base import CardContext, KeySource
from sbcard.ops.auth import external_authenticate, internal_authenticate, send_with_mac
from sbcard.ops.pin import Pin, guard_tries, pin_status
from sbcard.ops.read import read_context, select_ef

#: The national prefix of SSSE files in pFileAddr (``SSSEEF05|01|07|$``).
SSSE_PREFIX = "SSSE"


@dataclass(frozen=True)
class RecordFile:
    """One file as ``record read/write`` address it: its DF, EF, items and access."""

    name: str                       # DF01EF0A, SSSEEF07, SSSEEF0D
    df: DfSpec
    ef: EfSpec
    items: tuple[DataElement, ...]
    read: Access
    write: Access
    by_number: bool = False         # records named by number (P2 …100), not by identifier

    def item(self, tag: int) -> DataElement:
        for el in self.items:
            if el.tag == tag:
                return el
        raise BadInputError(f"{self.name} has no data item with tag {tag:02X}")

    def record_number(self, tag: int, n: int = 1) -> int:
        return record_number(self.ef, tag, n)

    def all_items(self) -> tuple[ItemRef, ...]:
        """Every item of the file in record order, a repeated identifier counted (``40:2``)."""
        seen: dict[int, int] = {}
        out = []
        for tag in self.ef.tags:
            seen[tag] = seen.get(tag, 0) + 1
            out.append(ItemRef(tag, seen[tag]))
        return tuple(out)

    def read_needs_pin(self, method: Method) -> bool:
        """The read asks for the PIN under ``method``: "PIN & RK", a PIN-only file, or a
        "PIN 或 RK" file read the PIN way (the rule ``_meet_read`` follows)."""
        conds = self.read.any_of
        if any(c.kind == "pin&key" for c in conds):
            return True
        if not any(c.kind == "pin" for c in conds):
            return False
        return method is Method.PIN or not any(c.kind == "key" for c in conds)

    def read_needs_keys(self, method: Method) -> bool:
        """The read needs a key source under ``method`` (the same rule, for the RK side)."""
        conds = self.read.any_of
        if any(c.kind == "pin&key" for c in conds):
            return True
        return (any(c.kind == "key" for c in conds)
                and (method is Method.KEY or not any(c.kind == "pin" for c in conds)))


def ssse_files(profile: CardProfile | None = None) -> tuple[str, ...]:
    """The SSSE files ``record`` commands address: the transparent EF07/EF08 and the
    profile's regional files."""
    prof = profile or profile_for()
    return tuple(SSSE_PREFIX + n for n in (
        *(ef.name for ef in SSSE.efs() if ef.structure is Structure.TRANSPARENT),
        *prof.regional_files))


def resolve(file: str, profile: CardProfile | None = None) -> RecordFile:
    """``DF01EF0A`` (notice tables 4–9) or ``SSSEEFxx``: the national EF07/EF08, or a
    regional file of ``profile`` (default: :func:`profile_for`)."""
    text = file.strip().upper()
    if not text.startswith(SSSE_PREFIX):
        df, ef = split_file_name(text)
        return RecordFile(text, df, ef, ITEMS.get(text, ()), ef.read, ef.write)
    prof = profile or profile_for()
    name = text[len(SSSE_PREFIX):]
    regional = prof.regional_files.get(name)
    if regional is not None:
        return RecordFile(text, SSSE, regional.ef, regional.items, regional.ef.read,
                          regional.ef.write, regional.address is RecordAddress.NUMBER)
    national = [ef.name for ef in SSSE.efs() if ef.structure is Structure.TRANSPARENT]
    if name in national:
        ef = SSSE.ef(name)
        return RecordFile(text, SSSE, ef, (), prof.read_access(ef), prof.write_access(ef))
    files = [SSSE_PREFIX + n for n in (*national, *prof.regional_files)]
    hint = "" if prof.regional_files else (" (a region's own files come with its profile, "
                                          "e.g. --profile mohrss-3.0+jiangsu)")
    raise BadInputError(f"{file!r}: profile {prof.name} knows the SSSE files "
                        f"{', '.join(files)}{hint}; EF05/EF06 are read with `sbcard read`")


class Method(StrEnum):
    """How to meet "PIN 或 RK" (the national iAuthType: 1 PIN, 2 RK key)."""

    PIN = "pin"
    KEY = "key"


@dataclass(frozen=True)
class ItemRef:
    """One item of a DF file: a record identifier and occurrence (``40:2``), a cyclic record
    number (``tag`` None, ``n`` the number, 1 = newest), or None/0 for the whole file."""

    tag: int | None
    n: int = 1

    @classmethod
    def parse(cls, text: str, ef: EfSpec) -> ItemRef:
        t = text.strip()
        head, _, count = t.partition(":")
        try:
            value = int(head, 16 if ef.structure is not Structure.CYCLIC else 10)
            n = int(count) if count else 1
        except ValueError:
            raise BadInputError(f"{ef.name}: {text!r} is not an item (hex record identifier, "
                                "optionally :n) or a record number") from None
        if ef.structure is Structure.CYCLIC:
            if not 1 <= value <= ef.record_count or count:
                raise BadInputError(f"{ef.name}: record number {text!r} is not "
                                    f"1..{ef.record_count}")
            return cls(None, value)
        if n < 1:
            raise BadInputError(f"{ef.name}: occurrence :{count} is not 1 or more")
        return cls(value, n)

    def __str__(self) -> str:
        if self.tag is None:
            return str(self.n)
        return f"{self.tag:02X}" + (f":{self.n}" if self.n != 1 else "")


@dataclass
class ReadAuth:
    """What the caller allows for reads. ``pin`` is only used when a file needs it."""

    method: Method = Method.PIN
    pin: Pin | None = None
    keys: KeySource | None = None
    force: bool = False           # spend even the last PIN try


@dataclass
class DfSession:
    """Security state known to be on the card now (cleared when another DF is selected)."""

    channel: ApduChannel
    ctx: CardContext | None = None
    current: str | None = None
    pin_ok: bool = False
    keys_ok: set[int] = field(default_factory=set)

    genuine: bool = False

    def context(self) -> CardContext:
        if self.ctx is None:
            self._left_df()                # read_context selects the SSSE
            self.ctx = read_context(self.channel)
        return self.ctx

    def _left_df(self) -> None:
        self.current, self.pin_ok, self.keys_ok = None, False, set()

    def _precheck(self, keys: KeySource, ctx: CardContext) -> None:
        """INTERNAL AUTHENTICATE with the IRK, in the SSSE where that key lives (part 9
        table B1: IRK 00 is a DDF key), before any DF key try is put at risk."""
        if self.genuine or not keys.has_key(KEY_IRK):
            return
        if self.current is not None:
            self.channel.check(cmds.select_by_name(SSSE.df_name, fci=False))
            self._left_df()
        internal_authenticate(self.channel, keys, ctx)
        self.genuine = True

    def select(self, df: DfSpec) -> None:
        if self.current == df.name:
            return
        self.channel.check(cmds.select_by_name(df.df_name, fci=False))
        self.current, self.pin_ok, self.keys_ok = df.name, False, set()

    def authenticate(self, df: DfSpec, key_id: int, keys: KeySource | None) -> None:
        ref = key_ref(df.name, key_id)
        if ref in self.keys_ok:
            return
        if keys is None:
            raise RefusedError(f"{df.name}: this file needs the card key {ref_name(ref)}; give a "
                               "key source (--keys / --psam / --hsm)")
        if not keys.has_key(ref):
            raise RefusedError(f"{keys.name} has no key for {ref_name(ref)}; nothing was sent")
        ctx = self.context()
        self._precheck(keys, ctx)
        self.select(df)
        external_authenticate(self.channel, keys, ctx, ref, precheck=False)
        self.keys_ok.add(ref)

    def verify(self, df: DfSpec, pin: Pin | None, force: bool) -> None:
        if self.pin_ok:
            return
        if pin is None:
            raise RefusedError(f"{df.name}: this file needs the PIN (用户密码); nothing was "
                               "sent (give --pin-stdin or choose the key method)")
        self.select(df)
        guard_tries(pin_status(self.channel), force=force, what="verifying")
        self.channel.check(cmds.verify(pin.block()))
        self.pin_ok = True


def _meet_read(session: DfSession, df: DfSpec, access: Access, auth: ReadAuth) -> None:
    if access.free:
        return
    if access.never:
        raise RefusedError(f"{df.name} file cannot be read")
    conds = access.any_of
    both = [c for c in conds if c.kind == "pin&key"]
    keys_only = [c for c in conds if c.kind == "key"]
    pin_alt = any(c.kind == "pin" for c in conds)
    if both:                                   # "PIN & RK": key first, then the PIN (§2.1.3)
        assert both[0].key_id is not None
        session.authenticate(df, both[0].key_id, auth.keys)
        session.verify(df, auth.pin, auth.force)
    elif keys_only and (not pin_alt or auth.method is Method.KEY):
        assert keys_only[0].key_id is not None
        session.authenticate(df, keys_only[0].key_id, auth.keys)
    else:
        session.verify(df, auth.pin, auth.force)


def _read_file_records(session: DfSession, ef: EfSpec) -> list[bytes]:
    r = session.channel.send(cmds.read_record(1, sfi=ef.record_sfi, mode=RecordMode.FROM_P1))
    if r.sw == SW.RECORD_NOT_FOUND:
        return []
    if r.ok and ef.structure is not Structure.CYCLIC:
        return [bytes(x.value) for x in split_records(r.data)]
    if (r.ok and ef.record_size and len(r.data) < 256
            and len(r.data) % ef.record_size == 0):
        return [r.data[i:i + ef.record_size] for i in range(0, len(r.data), ef.record_size)]
    if not r.ok and r.sw not in (SW.WRONG_P1P2, SW.FUNCTION_NOT_SUPPORTED,
                                 SW.INS_NOT_SUPPORTED):
        raise CardError.for_sw(r.sw, f"READ RECORD {ef.name}")
    out = []                                 # one record at a time (no multi-record mode)
    for number in range(1, (ef.record_count or 254) + 1):
        r = session.channel.send(cmds.read_record(number, sfi=ef.record_sfi,
                                                  le=ef.record_size or 256))
        if r.sw == SW.RECORD_NOT_FOUND:
            break
        if not r.ok:
            raise CardError.for_sw(r.sw, f"READ RECORD {ef.name} record {number}")
        out.append(r.data if ef.structure is Structure.CYCLIC
                   else bytes(split_records(r.data)[0].value))
    return out


def _read_item(session: DfSession, spec: RecordFile, ref: ItemRef) -> bytes:
    """The value of the n-th record with identifier ``tag``: first, then next occurrences;
    in a file named by number (a regional file), the record of the item's place."""
    assert ref.tag is not None
    file, ef = spec.name, spec.ef
    el = spec.item(ref.tag)
    sfi = ef.sfi or 0                          # no SFI: the current EF (selected before)
    if spec.by_number:
        r = session.channel.send(cmds.read_record(spec.record_number(ref.tag, ref.n), sfi=sfi,
                                                  le=el.record_len))
        if not r.ok:
            raise CardError.for_sw(r.sw, f"READ RECORD {file} {ref}")
    mode = RecordMode.FIRST_ID
    for _ in range(0 if spec.by_number else ref.n):
        r = session.channel.send(cmds.read_record(ref.tag, sfi=sfi, mode=mode,
                                                  le=el.record_len))
        if not r.ok:
            raise CardError.for_sw(r.sw, f"READ RECORD {file} {ref}")
        mode = RecordMode.NEXT_ID
    records = split_records(r.data)
    if not records or records[0].tag != ref.tag:
        raise CardError(SW.WRONG_DATA, f"READ RECORD {file} {ref}: the card answered another "
                        "record")
    return bytes(records[0].value)


@dataclass(frozen=True)
class FileRead:
    """What was read from one file, as national-format texts in request order."""

    file: str
    items: tuple[ItemRef, ...]
    texts: tuple[str, ...]


def read_file(session: DfSession, file: str, items: tuple[ItemRef, ...], auth: ReadAuth,
              *, profile: CardProfile | None = None) -> FileRead:
    """Read ``items`` of ``file`` (``DF01EF15``, ``SSSEEF0D``) after meeting its read access;
    texts as ``sbcard.card.dftext`` writes them (cyclic: one text per record, newest first;
    transparent: the file's hex). ``profile`` describes SSSE regional files."""
    spec = resolve(file, profile)
    file, df, ef = spec.name, spec.df, spec.ef
    session.select(df)
    _meet_read(session, df, spec.read, auth)
    session.select(df)
    if ef.structure is Structure.TRANSPARENT:
        return FileRead(file, (), (_read_binary(session, ef).hex().upper(),))
    if ef.sfi is None:
        select_ef(session.channel, ef)
    if ef.structure is Structure.CYCLIC:
        records = _read_file_records(session, ef)
        chosen = records if not items else [
            records[i.n - 1] if i.n <= len(records) else b"" for i in items]
        return FileRead(file, items, tuple(dftext.record_text(file, r) if r else ""
                                           for r in chosen))
    texts = []
    for ref in items:
        value = _read_item(session, spec, ref)
        assert ref.tag is not None
        texts.append(dftext.item_text(file, spec.item(ref.tag), value))
    return FileRead(file, items, tuple(texts))


def read_bytes(session: DfSession, file: str, auth: ReadAuth, *,
               profile: CardProfile | None = None) -> bytes:
    """The whole content of a transparent file (``SSSEEF07`` 指纹, ``SSSEEF08``,
    ``DF01EF16``) as bytes, after meeting its read access (EF07: RKSSSE, card key 0A)."""
    spec = resolve(file, profile)
    if spec.ef.structure is not Structure.TRANSPARENT:
        raise BadInputError(f"{spec.name} is a record file, not a transparent one")
    session.select(spec.df)
    _meet_read(session, spec.df, spec.read, auth)
    session.select(spec.df)
    return _read_binary(session, spec.ef)


def _read_binary(session: DfSession, ef: EfSpec) -> bytes:
    data = b""
    while len(data) < ef.size:
        want = min(0xE0, ef.size - len(data))
        if not data:
            r = session.channel.send(cmds.read_binary(0, want, sfi=ef.record_sfi))
        else:
            r = session.channel.send(cmds.read_binary(len(data), want))
        if not r.ok:
            raise CardError.for_sw(r.sw, f"READ BINARY {ef.name}")
        if not r.data:
            break
        data += r.data
    return data


def split(file: str) -> tuple[DfSpec, EfSpec]:
    return split_file_name(file)


def write_file(session: DfSession, file: str, items: tuple[ItemRef, ...],
               texts: tuple[str, ...], keys: KeySource | None, *, mac: bool = False,
               profile: CardProfile | None = None) -> None:
    """Write ``texts`` to ``items`` of ``file``: record files item by item (UPDATE RECORD),
    a cyclic file one new record per text (APPEND RECORD), a transparent file whole. A file
    without SFI (a regional file) is selected by FID after the authentication."""
    spec = resolve(file, profile)
    file, df, ef = spec.name, spec.df, spec.ef
    if spec.write.never:
        raise RefusedError(f"{file} ({ef.zh}) is not writable: the card's own transactions "
                           "write it (notice table 7: 不允许改写)")
    key_ids = spec.write.key_ids()
    if not key_ids:
        raise RefusedError(f"{file} has no write key")
    commands = _write_commands(spec, items, texts)
    ctx = session.context()
    session.select(df)
    if not mac:
        session.authenticate(df, key_ids[0], keys)
        if ef.sfi is None:
            select_ef(session.channel, ef)
        for cmd in commands:
            session.channel.check(cmd)
        return
    if keys is None:
        raise RefusedError(f"{file}: secure messaging needs a key source")
    if ef.sfi is None:
        select_ef(session.channel, ef)
    for cmd in commands:
        send_with_mac(session.channel, keys, ctx, key_ref(df.name, key_ids[0]),
                      replace(cmd, cla=0x04))


def _write_commands(spec: RecordFile, items: tuple[ItemRef, ...],
                    texts: tuple[str, ...]) -> list[CommandApdu]:
    file, ef = spec.name, spec.ef
    sfi = ef.sfi or 0                          # no SFI: the current EF (selected first)
    if ef.structure is Structure.TRANSPARENT:
        data = parse_hex(texts[0], f"{file} content") if texts else b""
        if len(data) > ef.size:
            raise BadInputError(f"{file}: {len(data)} bytes, the file holds {ef.size}")
        return [cmds.update_binary(off, data[off:off + 0xE0], sfi=ef.record_sfi if off == 0
                                   else None) for off in range(0, len(data), 0xE0)]
    if ef.structure is Structure.CYCLIC:
        if file not in RECORD_FIELDS:
            raise BadInputError(f"{file}: no record layout")
        return [CommandApdu(0x00, 0xE2, 0x00, ef.record_sfi << 3,
                            dftext.record_bytes(file, t), name=f"APPEND RECORD {file}")
                for t in texts]
    if len(items) != len(texts):
        raise BadInputError(f"{file}: {len(items)} items but {len(texts)} values")
    out = []
    for ref, text in zip(items, texts, strict=True):
        assert ref.tag is not None
        el = spec.item(ref.tag)
        record = el.encode_record_raw(dftext.item_value(file, el, text))
        if ref.n == 1 and not spec.by_number:
            out.append(cmds.update_record(ref.tag, record, sfi=sfi))
        else:
            out.append(cmds.update_record(spec.record_number(ref.tag, ref.n), record,
                                          sfi=sfi, mode=RecordMode.NUMBER))
    return out


def known_dfs() -> tuple[str, ...]:
    return tuple(DF_BY_NAME)
