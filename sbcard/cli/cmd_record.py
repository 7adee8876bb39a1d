"""``sbcard record files|read|write``: the DF01–DF07 files of 人社信息函〔2012〕37号 (应用数据),
the SSSE's transparent EF07 指纹 / EF08 相片, and a region's own SSSE files (EF0D in Jiangsu)
as the card profile describes them (``--profile mohrss-3.0+jiangsu``).

Files and items are named as the national reader interface names them: ``DF01EF0A`` and a
record identifier (``37``), ``40:2`` for the second record with identifier 40, a record number
(``1`` = newest) in cyclic files; SSSE files as ``SSSEEF07``. Values are text: cyclic records
and B-TLV items are their items joined and ended with ``^``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from sbcard.cli.cmd_pin import FORCE_HELP, PIN_STDIN_HELP, PinReader
from sbcard.cli.common import echo_json, label, state
from sbcard.errors import BadInputError

PROFILE_HELP = ("Card profile describing the card's files: a generation (mohrss-2.0, 3.0) "
                "with regional overlays after + (mohrss-3.0+jiangsu: EF0D), or a TOML file. "
                "Also maps card keys to PSAM keys (--psam). Default for read/write: mohrss-2.0 "
                "with the overlay that the card's issuing region gets in regions.toml "
                "(Jiangsu, 32…: +jiangsu), said on stderr.")
AUTH_HELP = ("How to meet \"PIN 或 RK\" (PIN or read key): pin = ask for the PIN (default), "
             "key = external authentication with the DF's RK key from --keys/--psam/--hsm "
             "(spends no PIN try). Files that need both or only a key ask for what they need.")


@click.group()
def record() -> None:
    """Read and write the application files DF01–DF07 (应用数据文件).

    \b
    DF01 公共应用 public, DF02 就业与失业 employment, DF03 社会保险1 social insurance,
    DF04 社会保险2 medical, DF07 人事与人才 personnel (DF05/DF06 where a region has them).
    SSSE files: SSSEEF07 指纹 fingerprint and SSSEEF08 相片 photo (RKSSSE key), and a
    region's own files with --profile (SSSEEF0D with mohrss-3.0+jiangsu).
    Start with `sbcard record files` to see each file, its items and the keys it needs.

    \b
    Examples:
      sbcard record files DF01
      sbcard record read DF01EF0A 37 38          # asks for the PIN
      sbcard record read DF02EF07 --auth key --keys test
      sbcard record write DF01EF0A 37=CHN --keys test
      sbcard record write DF02EF07 '2010101^20200101^20221231^测试公司^' --keys test
      sbcard record read SSSEEF07 --keys test --out finger.bin
      sbcard record read SSSEEF0D --profile mohrss-3.0+jiangsu
    """


def _structure_zh(ef) -> str:
    from sbcard.card.filesystem import Structure

    return {Structure.VARIABLE_RECORDS: "变长记录 variable records",
            Structure.FIXED_RECORDS: "定长记录 fixed records",
            Structure.CYCLIC: "循环 cyclic", Structure.TRANSPARENT: "透明 transparent"
            }[ef.structure]


def _access_text(df: str, access, profile=None) -> str:
    from sbcard.card.dfs import KEY_BY_REF, key_ref

    if access.never:
        return "不允许 never"
    if access.free:
        return "无 free"
    parts = []
    ssse_names = {k: r.name for k, r in profile.psam_keys.items()} if profile else {}
    ssse_names.setdefault(0x0A, "RKSSSE")
    ssse_names.setdefault(0x04, "UKSSSE")
    for c in access.any_of:
        key = None if c.key_id is None else KEY_BY_REF.get(key_ref(df, c.key_id))
        name = f"{key.name} ({c.key_id:02X})" if key else ""
        if df == "SSSE" and c.key_id is not None:
            name = f"{ssse_names.get(c.key_id, 'key')} ({c.key_id:02X})"
        parts.append({"pin": "PIN", "key": name, "pin&key": f"PIN & {name}"}[c.kind])
    return " 或 ".join(parts)


def _load_profile(name: str | None):
    from sbcard.card.profiles import load_profile, profile_for

    return profile_for() if name is None else load_profile(name)


@contextlib.contextmanager
def _profile_and_card(st, profile_name: str | None) -> Iterator[tuple[Any, Any]]:
    """(ProfileChoice, a function opening the card session once). With ``--profile`` the
    profile is known before the card is touched; without it the card's issuing region (卡识别码,
    EF05 01) picks the overlay in ``regions.toml`` (``card.profiles.choose_profile``), and the
    choice is said on stderr: never a silent overlay."""
    from sbcard.card.profiles import choose_profile
    from sbcard.ops.read import read_context

    with contextlib.ExitStack() as stack:
        opened: list[Any] = []

        def card() -> Any:
            if not opened:
                opened.append(stack.enter_context(st.session()))
            return opened[0]

        if profile_name is not None:
            yield choose_profile(profile_name, None), card
            return
        choice = choose_profile(None, read_context(card()).region)
        click.echo(choice.notice(), err=True)
        yield choice, card


@record.command("files")
@click.argument("df", required=False, metavar="[DF|SSSE]")
@click.option("--profile", "profile_name", metavar="PROFILE", default=None, help=PROFILE_HELP)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def files_cmd(df: str | None, profile_name: str | None, as_json: bool) -> None:
    """List the files, their access keys and items (from the notice's tables and the profile).

    \b
    No card is used. DF = DF01 … DF07, or SSSE for EF07/EF08 and the profile's regional
    files (default: all).
    """
    from sbcard.card.dfs import DF_BY_NAME, RECORD_FIELDS, SUBITEMS
    from sbcard.ops.records import SSSE_PREFIX, resolve, ssse_files

    profile = _load_profile(profile_name)
    names = [df.upper()] if df else [*DF_BY_NAME, SSSE_PREFIX]
    if any(n not in DF_BY_NAME and n != SSSE_PREFIX for n in names):
        raise BadInputError(f"no DF {df!r}: choose one of {', '.join(DF_BY_NAME)} or SSSE")
    out: list[dict[str, Any]] = []
    for name in names:
        files = (ssse_files(profile) if name == SSSE_PREFIX
                 else tuple(name + ef.name for ef in DF_BY_NAME[name].efs()))
        for file in files:
            spec = resolve(file, profile)
            ef = spec.ef
            items = [{"tag": f"{e.tag:02X}", "count": ef.tags.count(e.tag), "zh": e.zh,
                      "en": e.en, "type": e.fmt, "length": e.length,
                      "sub_items": [{"tag": f"{s.tag:02X}", "zh": s.zh, "en": s.en}
                                    for s in SUBITEMS.get((file, e.tag), ())]}
                     for e in spec.items]
            fields = [{"zh": f.zh, "en": f.en, "type": f.fmt, "length": f.length}
                      for f in RECORD_FIELDS.get(file, ())]
            out.append({"file": file, "df_zh": spec.df.zh, "zh": ef.zh, "en": ef.en,
                        "structure": ef.structure.value,
                        "sfi": None if ef.sfi is None else f"{ef.sfi:02X}",
                        "read": _access_text(spec.df.name, spec.read, profile),
                        "write": _access_text(spec.df.name, spec.write, profile),
                        "records": ef.record_count or None, "size": ef.size or None,
                        "items": items, "record_items": fields})
    if as_json:
        echo_json({"files": out, "profile": profile.name,
                   "source": "人社信息函〔2012〕37号 tables 3–9, appendix B; regional files: "
                             "the card profile"})
        return
    for f in out:
        click.echo(f"{f['file']}  {f['zh']} {f['en']}  "
                   f"[{_structure_zh(resolve(f['file'], profile).ef)}"
                   + (f", {f['records']} 条" if f["records"] else "")
                   + (f", {f['size']} bytes" if f["size"] else "") + "]")
        click.echo(f"    {label('读', 'read')}: {f['read']}    "
                   f"{label('写', 'write')}: {f['write']}")
        for it in f["items"]:
            times = f" ×{it['count']}" if it["count"] > 1 else ""
            click.echo(f"    {it['tag']}{times}  {it['zh']} {it['en']} ({it['type']} "
                       f"{it['length']})")
            for sub in it["sub_items"]:
                click.echo(f"        {sub['tag']}  {sub['zh']} {sub['en']}")
        for i, fld in enumerate(f["record_items"], start=1):
            click.echo(f"    ^{i}  {fld['zh']} {fld['en']} ({fld['type']} {fld['length']})")


def _describe(spec, ref) -> tuple[str, str]:
    if ref.tag is None:
        return f"记录{ref.n}", f"record {ref.n}"
    el = spec.item(ref.tag)
    more = f" {ref.n}" if ref.n > 1 or spec.ef.tags.count(ref.tag) > 1 else ""
    return el.zh + more, el.en + more


@record.command("read")
@click.argument("file", metavar="FILE")
@click.argument("items", nargs=-1, metavar="[ITEM]...")
@click.option("--auth", "method", type=click.Choice(["pin", "key"]), default="pin",
              show_default=True, help=AUTH_HELP)
@click.option("--pin-stdin", is_flag=True, help=PIN_STDIN_HELP)
@click.option("--force", is_flag=True, help=FORCE_HELP)
@click.option("--profile", "profile_name", metavar="PROFILE", default=None, help=PROFILE_HELP)
@click.option("--out", "out", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              default=None, help="Transparent files (SSSEEF07 指纹, SSSEEF08): write the "
                                 "content's bytes to this file instead of printing hex.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def read_cmd(ctx: click.Context, file: str, items: tuple[str, ...], method: str,
             pin_stdin: bool, force: bool, profile_name: str | None, out: Path | None,
             as_json: bool) -> None:
    """Read items of one DF file (读应用数据).

    \b
    FILE: DF01EF0A style, or SSSEEF07 (see `sbcard record files`). ITEM: a record
    identifier in hex (37), with :n for the n-th record of that identifier (40:2); in a
    cyclic file a record number (1 = newest). No ITEM: every item (every record of a cyclic
    file). The PIN is asked for only when the file needs it and --auth is pin; with one try
    left nothing is sent unless --force. Exit codes: 0 read, 5 card refused (6982 without
    the key), 6 wrong PIN, 7 blocked, 8 refused.
    """
    from sbcard.card.filesystem import Structure
    from sbcard.ops.records import (
        DfSession,
        ItemRef,
        Method,
        ReadAuth,
        read_bytes,
        read_file,
        resolve,
    )

    st = state(ctx)
    with _profile_and_card(st, profile_name) as (choice, card):
        profile = choice.profile
        spec = resolve(file, profile)
        ef = spec.ef
        file = spec.name
        if out is not None and ef.structure is not Structure.TRANSPARENT:
            raise click.UsageError(f"--out goes with a transparent file; {file} holds records")
        refs = tuple(ItemRef.parse(i, ef) for i in items) or spec.all_items()
        how = Method(method)
        pin = PinReader(pin_stdin).one("PIN 密码") if spec.read_needs_pin(how) else None
        with st.key_source(profile) as keys:
            channel = card()
            if spec.read_needs_keys(how) and keys is None:
                raise click.UsageError("this read needs a key source: --keys, --psam or --hsm "
                                       "(or --auth pin where the file allows the PIN)")
            auth = ReadAuth(how, pin=pin, keys=keys, force=force)
            if out is not None:
                content = read_bytes(DfSession(channel), file, auth, profile=profile)
            else:
                result = read_file(DfSession(channel), file, refs, auth, profile=profile)
    if out is not None:
        out.write_bytes(content)
        if as_json:
            echo_json({"file": file, "zh": ef.zh, "en": ef.en, "out": str(out),
                       "bytes": len(content), "profile": profile.name})
        else:
            click.echo(f"{file}  {ef.zh} {ef.en}: {len(content)} bytes → {out}")
        return
    rows: list[tuple[str | None, str, str, str]]
    if not result.items:
        rows = [(None, f"记录{i}" if ef.record_count else "内容", f"record {i}"
                 if ef.record_count else "content", t)
                for i, t in enumerate(result.texts, start=1)]
    else:
        rows = [(str(r), *_describe(spec, r), t) for r, t in zip(result.items, result.texts,
                                                                  strict=True)]
    if as_json:
        echo_json({"file": file, "zh": ef.zh, "en": ef.en, "profile": profile.name,
                   "items": [{"item": i, "zh": zh, "en": en, "text": t}
                             for i, zh, en, t in rows]})
        return
    click.echo(f"{file}  {ef.zh} {ef.en}")
    for i, zh, en, t in rows:
        head = f"{i}  " if i else ""
        click.echo(f"  {head}{label(zh, en)}: {t}")


@record.command("write")
@click.argument("file", metavar="FILE")
@click.argument("values", nargs=-1, required=True, metavar="ITEM=VALUE...|RECORD...")
@click.option("--mac", is_flag=True,
              help="Secure messaging: each write carries a MAC under the file's UK key "
                   "(CLA 04) instead of a prior external authentication.")
@click.option("--profile", "profile_name", metavar="PROFILE", default=None, help=PROFILE_HELP)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def write_cmd(ctx: click.Context, file: str, values: tuple[str, ...], mac: bool,
              profile_name: str | None, as_json: bool) -> None:
    """Write items of one DF file with its update key (写应用数据).

    \b
    Record files: ITEM=VALUE pairs (37=CHN, 40:2='400^080901^测试大学^'; an empty VALUE
    clears the item). Cyclic files: one RECORD per argument, items joined by ^, each
    appended as the newest record (the oldest drops out when the file is full). Transparent
    files: the content as hex. Needs a key source holding the DF's UK key (--keys/--psam/
    --hsm). DF04 EF08 (medical transactions) is never writable. Exit codes: 0 written,
    8 refused (no key, not writable), 5 card error.
    """
    from sbcard.card.filesystem import Structure
    from sbcard.ops.records import DfSession, ItemRef, resolve, write_file

    st = state(ctx)
    with _profile_and_card(st, profile_name) as (choice, card):
        profile = choice.profile
        spec = resolve(file, profile)
        ef = spec.ef
        file = spec.name
        refs: tuple[ItemRef, ...] = ()
        texts: tuple[str, ...] = values
        if ef.structure in (Structure.VARIABLE_RECORDS, Structure.FIXED_RECORDS):
            pairs = []
            for v in values:
                name, eq, text = v.partition("=")
                if not eq:
                    raise BadInputError(f"{v!r}: write ITEM=VALUE, e.g. 37=CHN")
                pairs.append((ItemRef.parse(name, ef), text))
            refs = tuple(p[0] for p in pairs)
            texts = tuple(p[1] for p in pairs)
        elif ef.structure is Structure.TRANSPARENT and len(values) != 1:
            raise BadInputError(f"{file} is transparent: give its content as one hex argument")
        with st.key_source(profile) as keys:
            channel = card()
            if keys is None:
                raise click.UsageError("writing needs a key source holding the file's UK key: "
                                       "--keys, --psam or --hsm")
            write_file(DfSession(channel), file, refs, texts, keys, mac=mac, profile=profile)
    if as_json:
        echo_json({"file": file, "written": len(texts), "mac": mac, "profile": profile.name})
        return
    click.echo(f"{file}  {ef.zh}: {len(texts)} {label('项已写入', 'written')}")
