"""``sbcard read``: who the card belongs to and what it is (读卡)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from sbcard.cli.common import echo_encoded, echo_json, echo_table, label, state
from sbcard.errors import ExitCode


@click.command()
@click.option("--json", "as_json", is_flag=True,
              help="Machine-readable output (stable keys; dates as YYYY-MM-DD; null if absent).")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "ireadcardbas"]),
              default=None, help="table (default), json, or ireadcardbas: the national reader "
                                 "interface's iReadCardBas line (|-separated).")
@click.option("--encoding", type=click.Choice(["utf-8", "gbk"]), default="utf-8",
              help="With --format ireadcardbas: the line's encoding (gbk, as the national "
                   "interface returns it).")
@click.option("--redact/--no-redact", "redact", default=None,
              help="--redact masks every personal field: ID number, name and bank card "
                   "number (for screenshots and bug reports); --no-redact masks none, in the "
                   "output and in --trace/--dump alike (the full bank card number is still "
                   "never traced). Default: the output shows the holder and masks the bank "
                   "card number; traces and dumps mask the holder (`sbcard --no-redact` "
                   "unmasks traces and dumps only).")
@click.option("--photo", type=click.Path(dir_okay=False, writable=True, allow_dash=True,
                                         path_type=Path),
              help="Also save the photo (EF08, needs a key source for RKSSSE) to this file; "
                   "`-` writes it to stdout (the holder data then goes to stderr).")
@click.option("--bank", is_flag=True,
              help="Also read the PBOC debit application (bank card number masked, expiry).")
@click.option("--addressing", type=click.Choice(["sfi", "select-ef"]), default="sfi",
              show_default=True,
              help="How files are named first: sfi (READ RECORD with the SFI in P2) or "
                   "select-ef (SELECT EF, then read the current EF, as the public traces "
                   "do). The other way is the fallback when the card refuses the first.")
@click.pass_context
def read(ctx: click.Context, as_json: bool, fmt: str | None, encoding: str,
         redact: bool | None, photo: Path | None, bank: bool, addressing: str) -> int:
    """Read the card's issuer and holder data (发卡机构数据 EF05, 持卡人基本信息 EF06).

    \b
    Examples:
      sbcard read                        # first reader holding a card
      sbcard --reader 1 read --json      # for scripts
      sbcard read --format ireadcardbas  # the national interface's iReadCardBas line
      sbcard --sim v3 read               # 3.0 simulated card (EF06 needs RKSSSE) …
      sbcard --sim v3 --keys test read   # … authenticated with the public test keys
      sbcard --psam "PSAM reader" read   # RKSSSE through a PSAM in a second reader

    Reads by record identifier, so 1.0, 2.0 and 3.0 layouts all decode. Odd content
    (bad check characters, empty fields, expired card) is shown with warnings, never hidden.
    With --photo and no key source, or on a card without a photo, the holder data is still
    shown and the photo row says why there is no file.
    Exit codes: 0 read, 5 the card refused a read (e.g. EF06 or the photo without RKSSSE),
    1 the card holds no photo, 4 no card.
    """
    from sbcard.ops.read import Addressing, read_card

    if as_json and fmt not in (None, "json"):
        raise click.UsageError(f"--json and --format {fmt} ask for two outputs: give one")
    fmt = fmt or ("json" if as_json else "table")
    to_stdout = photo is not None and str(photo) == "-"
    if photo is not None and not to_stdout and not photo.parent.resolve().is_dir():
        from sbcard.errors import BadInputError

        raise BadInputError(f"--photo: folder {photo.parent} does not exist")
    st = state(ctx)
    if redact is False:        # the user wants the holder in full: in the trace/dump too
        st.redact_holder = False
    if fmt == "ireadcardbas":
        extras = [o for o, given in (("--redact/--no-redact", redact is not None),
                                     ("--photo", photo is not None), ("--bank", bank)) if given]
        if extras:     # the national line has a fixed content: say so rather than ignore
            raise click.UsageError(f"{', '.join(extras)} do(es) not go with --format "
                                   "ireadcardbas (the national line's fields are fixed)")
        return _ireadcardbas(st, encoding)
    with st.key_source() as keys, st.session() as channel:
        report = read_card(channel, keys=keys, addressing=Addressing(addressing))
        bank_info = None
        if bank:
            from sbcard.ops.bank import read_bank

            bank_info = read_bank(channel)
        photo_bytes, photo_problem = None, None
        if photo is not None:
            photo_bytes, photo_problem = _read_photo(channel, keys, Addressing(addressing))
    data = report.to_json()
    terminal = getattr(keys, "terminal_number", None)   # a PSAM knows its 终端机编号
    if terminal:
        data["terminal_number"] = terminal
    if redact:
        data = redact_holder(data)
    if bank_info is not None:
        data["bank"] = bank_info.to_json(full_pan=redact is False)
    if photo_bytes and photo is not None:
        if to_stdout:
            import sys

            sys.stdout.flush()
            sys.stdout.buffer.write(photo_bytes)
            sys.stdout.buffer.flush()
        else:
            photo.write_bytes(photo_bytes)
        data["photo"] = {"file": str(photo), "bytes": len(photo_bytes)}
    elif photo_problem is not None:
        data["photo"] = {"file": None, "bytes": 0, "problem": photo_problem[1]}
        click.echo(f"sbcard: photo 照片: {photo_problem[1]}", err=True)
    if fmt == "json":
        echo_json(data, err=to_stdout)
    else:
        echo_table(table_rows(data, report), err=to_stdout)
    if not report.holder_read:
        return ExitCode.CARD_ERROR
    return photo_problem[0] if photo_problem else ExitCode.OK


def _read_photo(channel, keys, addressing) -> tuple[bytes | None, tuple[ExitCode, str] | None]:
    """The photo, or (exit code, why not): holder data is shown either way."""
    from sbcard.apdu.sw import NotFoundError, SecurityStatusError
    from sbcard.ops.read import read_photo

    try:
        data = read_photo(channel, keys=keys, addressing=addressing)
    except SecurityStatusError:
        if keys is not None:
            raise
        return None, (ExitCode.CARD_ERROR, "not read: the photo needs a key source for "
                      "RKSSSE (--keys, --psam or --hsm-command) 照片需要密钥")
    except NotFoundError:
        data = b""
    if not data:
        return None, (ExitCode.FAILURE, "this card holds no photo 卡内无照片; no file written")
    return data, None


def redact_holder(data: dict[str, Any]) -> dict[str, Any]:
    out = dict(data)
    ssn = out.get("ssn")
    if isinstance(ssn, str) and len(ssn) > 8:
        out["ssn"] = ssn[:4] + "*" * (len(ssn) - 8) + ssn[-4:]
    name = out.get("name")
    if isinstance(name, str) and name:
        out["name"] = name[0] + "*" * (len(name) - 1)
    return out


def _ireadcardbas(st: Any, encoding: str) -> int:
    """The national iReadCardBas line: the card is authenticated first (internal
    authentication, and RKSSSE on 3.0 cards) and any failure prints no line at all, only the
    national code and text on stderr (docs/national-interface.md).
    """
    from sbcard.national.flows import read_basic

    with st.key_source() as keys, st.session() as channel:
        terminal = None
        if keys is not None:
            from sbcard.errors import SbcardError

            try:
                terminal = getattr(keys, "terminal_number", None)   # a PSAM's 终端机编号
            except SbcardError:
                terminal = None
        basic = read_basic(channel, keys, terminal_number=terminal)
    echo_encoded(basic.line, encoding)
    return ExitCode.OK


def _code(value: Any, lookup) -> str:
    if value is None:
        return "-"
    found = lookup(value)
    return f"{value} {found[0]} {found[1]}" if found else f"{value} (unknown code 未知代码)"


def table_rows(d: dict[str, Any], report) -> list[tuple[str, str]]:
    from sbcard.card import codes

    def show(value: Any) -> str:
        return "-" if value is None else str(value)

    rows = [
        (label("区划码", "Region code"), _code(d["region_code"], lambda c: codes.province(c[:2]))
         if d["region_code"] else "-"),
        (label("卡的识别码", "Card identification code"), show(d["card_id"])),
        (label("卡的类别", "Card category"), _code(d["card_type"], codes.card_category)),
        (label("规范版本", "Specification version"), show(d["spec_version"])),
        (label("初始化机构编号", "Initialising organisation"), show(d["init_org"])),
        (label("发卡日期", "Issue date"), show(d["issue_date"])),
        (label("卡有效期", "Expiry date"), show(d["expiry_date"])),
        (label("卡号", "Card number"), show(d["card_no"])),
        (label("社会保障号码", "Social security number"), show(d["ssn"])),
        (label("姓名", "Name"), show(d["name"])),
        (label("性别", "Sex"), _code(d["sex"], codes.sex)),
        (label("民族", "Ethnicity"), _code(d["ethnicity"], codes.ethnicity)),
        (label("出生地", "Birthplace"), show(d["birthplace"])),
        (label("出生日期", "Birth date"), show(d["birth_date"])),
        (label("算法", "Algorithm"), f"{show(d['algorithm'])} ({report.algorithm_source})"),
        (label("复位信息", "ATR"), d["atr"]),
    ]
    bank = d.get("bank")
    if bank:
        rows.append((label("银行卡号", "Bank card number"), show(bank.get("pan"))))
        rows.append((label("银行卡有效期", "Bank card expiry"), show(bank.get("expiry"))))
    photo = d.get("photo")
    if photo:
        rows.append((label("照片", "Photo"), photo.get("problem")
                     or f"{photo['bytes']} bytes → {photo['file']}"))
    for w in d["warnings"]:
        rows.append((label("警告", "Warning"), w))
    return rows
