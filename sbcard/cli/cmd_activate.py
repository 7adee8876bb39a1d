"""``sbcard activate`` (领卡启用 / 异地激活) and ``sbcard audit`` (the activation log)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from sbcard.cli.cmd_pin import PIN_STDIN_HELP, PinReader
from sbcard.cli.common import echo_json, state
from sbcard.errors import ExitCode

AUDIT_ENV = "SBCARD_AUDIT_DB"


def default_audit_db() -> Path:
    env = os.environ.get(AUDIT_ENV)
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "sbcard" / "activation.sqlite"


@click.command()
@click.option("--id", "ssn", required=True, metavar="ID_NUMBER",
              help="The holder's 社会保障号码 / citizen ID, as on their ID card.")
@click.option("--name", metavar="NAME", help="The holder's name 姓名 (checked when given).")
@click.option("--operator", required=True, envvar="SBCARD_OPERATOR",
              help="Who is at the counter (recorded in the audit log; env SBCARD_OPERATOR).")
@click.option("--hook", metavar="CMD|URL",
              help="Back-office hook after success: a command (JSON on stdin) or an http(s) "
                   "URL (JSON POST).")
@click.option("--audit-db", type=click.Path(dir_okay=False, path_type=Path),
              help=f"Audit log (SQLite). Default ${AUDIT_ENV} or "
                   "~/.local/share/sbcard/activation.sqlite.")
@click.option("--pin-stdin", is_flag=True,
              help=PIN_STDIN_HELP + " Order: initial PIN, new PIN, new PIN.")
@click.option("--force", is_flag=True, help="Go ahead even with one PIN try left.")
@click.option("--allow-trivial", is_flag=True, help="Accept a guessable new PIN.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable result.")
@click.pass_context
def activate(ctx: click.Context, ssn: str, name: str | None, operator: str, hook: str | None,
             audit_db: Path | None, pin_stdin: bool, force: bool, allow_trivial: bool,
             as_json: bool) -> int:
    """Activate a cardholder's card at the counter or remotely (启用).

    \b
    1. reads and checks the card (expiry, application not blocked);
    2. checks the holder: the ID number (and name, if given) must match the card;
    3. asks how many PIN tries are left (spends none), refuses at one unless --force;
    4. verifies the initial PIN 初始密码 — if the card rejects it, stops without a second
       try (the card is probably activated already);
    5. changes it to the holder's new PIN (entered twice);
    6. calls the back-office hook. Every step goes to the audit log first.

    \b
    Exit codes: 0 activated, 6 initial PIN rejected (already activated?), 7 blocked,
    8 refused (expired, one try left, trivial PIN), 9 identity mismatch, 1 hook failed
    (card activated, back office not told), 4 no card or card removed mid-way.
    """
    from sbcard.card.identity import check_ssn
    from sbcard.errors import BadInputError
    from sbcard.hexutil import is_ascii_digits
    from sbcard.ops.activate import ActivationRequest
    from sbcard.ops.activate import activate as run_activation
    from sbcard.ops.audit import AuditLog

    if len(ssn) != 18 or not (is_ascii_digits(ssn[:17]) and (is_ascii_digits(ssn[17])
                                                              or ssn[17] in "Xx")):
        raise BadInputError(f"--id {ssn!r} is not an 18-character 社会保障号码 (17 digits and "
                            "a digit or X)")
    typo = check_ssn(ssn.upper())
    if typo:       # a mistyped number, not a card of someone else: say so before the card
        raise BadInputError(f"--id: {typo[0]} — typo? Nothing was sent to the card")
    if hook:                 # a bad hook is found before any PIN is asked or card touched
        from sbcard.ops.hook import check_hook

        check_hook(hook)
    reader = PinReader(pin_stdin)
    initial = reader.one("initial PIN 初始密码")
    new = reader.new_twice("holder's new PIN 新密码")
    request = ActivationRequest(ssn=ssn, operator=operator, initial_pin=initial, new_pin=new,
                                name=name, force=force, allow_trivial=allow_trivial, hook=hook)
    st = state(ctx)
    log = AuditLog(audit_db or default_audit_db())
    try:
        with st.key_source() as keys, st.session() as channel:
            result = run_activation(
                channel, request, log, keys=keys,
                reader=channel.transport.description,
                say=st.info,
            )
    finally:
        log.close()
    if as_json:
        echo_json({"outcome": result.outcome, "card_id": result.card_id,
                   "card_no": result.card_no, "audit_id": result.audit_id,
                   "hook": result.hook})
    else:
        click.echo(f"activated 已启用: card 卡号 {result.card_no} (audit entry {result.audit_id}"
                   f"{', hook ' + result.hook if result.hook else ''})")
    return ExitCode.OK


@click.command()
@click.option("--audit-db", type=click.Path(dir_okay=False, path_type=Path),
              help="Audit log (default as for `sbcard activate`).")
@click.option("--limit", default=20, show_default=True, help="How many entries, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def audit(ctx: click.Context, audit_db: Path | None, limit: int, as_json: bool) -> None:
    """Show the activation audit log (启用记录), newest first. No PINs are ever stored."""
    from dataclasses import asdict

    from sbcard.ops.audit import AuditLog

    path = audit_db or default_audit_db()
    if not path.exists():
        from sbcard.errors import BadInputError

        raise BadInputError(f"no audit log at {path}")
    log = AuditLog(path)
    try:
        entries = log.entries(limit)
    finally:
        log.close()
    if as_json:
        echo_json([asdict(e) for e in entries])
        return
    from sbcard import messages as msg

    st = state(ctx)
    for e in entries:
        zh = msg.OUTCOMES.get(e.outcome, e.outcome)
        outcome = {"en": e.outcome, "zh": zh}.get(st.lang, f"{zh} {e.outcome}".strip())
        line = msg.AUDIT_LINE(id=e.id, at=e.started_at, operator=e.operator,
                              card_no=e.card_no or "-", step=e.step, outcome=outcome)
        text = line.en if st.lang == "en" else line.zh
        click.echo(f"{text}{' — ' + e.detail if e.detail else ''}"
                   f"{' [hook ' + e.hook + ']' if e.hook else ''}")
