"""``sbcard readers``, ``sbcard atr``, ``sbcard apdu``."""

from __future__ import annotations

import sys

import click

from sbcard.cli.common import echo_json, echo_table, label, state
from sbcard.errors import ExitCode


@click.command()
@click.option("--json", "as_json", is_flag=True,
              help="Machine-readable output (with --watch: one JSON object per line).")
@click.option("--watch", is_flag=True,
              help="Keep watching: print each reader or card that comes or goes, until "
                   "Ctrl-C (or --timeout).")
@click.option("--timeout", metavar="SECONDS", type=click.FloatRange(min=0), default=None,
              help="With --watch: stop after SECONDS.")
@click.pass_context
def readers(ctx: click.Context, as_json: bool, watch: bool, timeout: float | None) -> None:
    """List PC/SC readers, whether a card is in each, its ATR and a card type guess.

    The index shown is what `--reader N` takes. With `--sim` there is no reader to list.

    \b
    `--watch` is for "the card is in but nothing sees it": it shows, live, what pcscd
    sees — readers plugged and unplugged, cards inserted and removed (with ATR and type),
    pcscd stopping and coming back:
      sbcard readers --watch
      14:02:11  1: ACS ACR39U 00 00  插卡 card inserted  ATR 3B6D…  social security card …
      14:02:15  1: ACS ACR39U 00 00  拔卡 card removed
    """
    from sbcard.ops.readers import reader_reports

    if state(ctx).sim is not None:
        raise click.UsageError("`readers` lists PC/SC readers; it does not apply with --sim")
    if timeout is not None and not watch:
        raise click.UsageError("--timeout goes with --watch")
    if watch:
        _watch(as_json, timeout)
        return
    reports = reader_reports()
    if as_json:
        echo_json([r.to_json() for r in reports])
        return
    if not reports:
        click.echo("no readers 没有读卡器 (is the reader plugged in and pcscd running?)")
        return
    for r in reports:
        card = f"card 有卡  ATR {r.atr}  {r.card_type}" if r.card_present else "no card 无卡"
        click.echo(f"{r.index}: {r.name}  —  {card}")


def _watch(as_json: bool, timeout: float | None) -> None:
    import json
    import time

    from sbcard.ops.readers import watch_readers

    end = None if timeout is None else time.monotonic() + timeout
    try:
        for event in watch_readers(should_stop=lambda: end is not None
                                   and time.monotonic() >= end):
            if as_json:
                click.echo(json.dumps(event.to_json(), ensure_ascii=False))
            else:
                click.echo(event.text())
    except KeyboardInterrupt:
        pass                       # Ctrl-C is how a watch ends: exit 0


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def atr(ctx: click.Context, as_json: bool) -> None:
    """Decode the card's answer to reset (复位信息).

    Shows the interface bytes and protocols (ISO 7816-3) and, for a social security card,
    the meaning of its 13 historical bytes and the card-level diversification factor
    (分散因子, historical bytes 6-13) used to derive the card's keys.
    """
    from sbcard.ops.identify import identify_atr

    with state(ctx).session() as channel:
        report = identify_atr(channel.atr)
    if as_json:
        echo_json(report.to_json())
        return
    j = report.to_json()
    rows = [
        (label("复位信息", "ATR"), j["atr"]),
        (label("卡片类型", "Card type"), j["card_type"]),
        (label("约定", "Convention"), f"TS={j['ts']} {j['convention']}"),
        (label("协议", "Protocols"), ", ".join(j["protocols"])),
        (label("接口字节", "Interface bytes"),
         "  ".join(" ".join(f"{k.upper()}{g['index']}={v}" for k, v in g.items() if k != "index")
                   for g in j["interface_bytes"]) or "-"),
        (label("历史字节", "Historical bytes"), j["historical"]),
    ]
    ss = j["social_security"]
    if ss:
        rows += [
            (label("芯片提供机构", "Chip provider (T1-T2)"), ss["chip_provider"]),
            (label("芯片/COS信息", "Chip/COS info (T3-T5)"), ss["cos_info"]),
            (label("卡片制造机构", "Card maker (T6-T7)"), ss["card_maker"]),
            (label("地区代码前4位", "Region prefix (T8-T9)"), ss["region_prefix"] or "-"),
            (label("卡序列号", "Serial (TA-TD)"), ss["serial"]),
            (label("卡片分散因子", "Card diversification factor"), ss["diversification_factor"]),
        ]
    for w in j["warnings"]:
        rows.append((label("警告", "Warning"), w))
    echo_table(rows)


@click.command()
@click.argument("apdus", nargs=-1, required=True, metavar="HEX...")
@click.option("--raw", is_flag=True,
              help="Send without T=0 help: you see 61xx/6Cxx and issue GET RESPONSE yourself.")
@click.option("--expect", metavar="SW",
              help="Status word every APDU must return, ? for a free digit (e.g. 9000, 63C?). "
                   "Default: 9000 (and 61xx/6Cxx with --raw).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def apdu(ctx: click.Context, apdus: tuple[str, ...], raw: bool, expect: str | None,
         as_json: bool) -> int:
    """Send APDUs exactly as typed; print each response and its status word in words.

    \b
    Hex may be spaced or not; each APDU is one argument (quote spaced ones):
      sbcard apdu 00A404000F7378312E73682EC9E7BBE1B1A3D5CF 00A4020002EF05 00B2070000
      sbcard apdu "00 84 00 00 08"
    `-` reads the APDUs from stdin, one per line (# comments and blank lines skipped):
      sbcard apdu - < apdus.txt
    All APDUs are checked (length, Lc against the data, case 1-4) before the first is sent.
    PIN blocks are masked in what is printed, but argv itself is visible to other users
    (ps): a PIN command warns; prefer `sbcard verify pin` or a script. Without --raw, 61xx
    is fetched with GET RESPONSE and a 6Cxx is corrected only for reads (SELECT, READ,
    GET DATA/CHALLENGE); VERIFY, PIN changes, authentication and writes are sent once and
    their 6Cxx shown. Exit code 5 if a status word is not the one expected.
    """
    from sbcard.apdu.sw import describe_sw
    from sbcard.ops.raw import parse_apdus, send_apdus

    if "-" in apdus:
        if apdus != ("-",):
            raise click.UsageError("`-` (APDUs from stdin) stands alone")
        lines = sys.stdin.read().splitlines()
        apdus = tuple(t for t in (ln.split("#", 1)[0].strip() for ln in lines) if t)
        if not apdus:
            from sbcard.errors import BadInputError

            raise BadInputError("apdu -: no APDU on stdin")
    commands = parse_apdus(list(apdus))
    if any(c.ins in _PIN_INS and c.data for c in commands):
        click.echo("WARNING: a PIN on the command line is visible to other users of this "
                   "machine (ps, shell history); use `sbcard verify pin`/`sbcard pin …` or a "
                   "script with --var-file", err=True)
    pattern = _sw_pattern(expect)
    with state(ctx).session(raw=raw) as channel:
        exchanges = send_apdus(channel, commands)
    failed = [x for x in exchanges if not _sw_ok(x.response.sw, pattern, raw)]
    if as_json:
        echo_json([x.to_json() for x in exchanges])
    else:
        for x in exchanges:
            j = x.to_json()
            click.echo(f">> {j['command']}")
            click.echo(f"<< {(j['response'] + ' ') if j['response'] else ''}{j['sw']}  "
                       f"{describe_sw(x.response.sw)[5:]}")
    return ExitCode.CARD_ERROR if failed else ExitCode.OK


#: VERIFY, CHANGE REFERENCE DATA, CHANGE/RELOAD PIN (80 5E), RESET RETRY COUNTER/UNBLOCK
_PIN_INS = frozenset({0x20, 0x24, 0x5E, 0x2C})


def _sw_pattern(expect: str | None) -> str | None:
    if expect is None:
        return None
    from sbcard.apdu.sw import parse_sw_mask
    from sbcard.errors import BadInputError

    try:
        return parse_sw_mask(expect)
    except BadInputError as exc:
        raise click.BadParameter(str(exc), param_hint="--expect") from None


def _sw_ok(sw: int, pattern: str | None, raw: bool) -> bool:
    if pattern is None:
        return sw == 0x9000 or (raw and (sw >> 8) in (0x61, 0x6C))
    from sbcard.apdu.sw import sw_matches

    return sw_matches(pattern, sw)
