"""``sbcard personalise``: a card bureau's batch (批量制卡), resumable and auditable."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

import click

from sbcard.cli.common import state
from sbcard.errors import BadInputError, ExitCode

RECIPES_DIR = Path(__file__).resolve().parents[2] / "apdu_scripts"


def _recipe_path(name: str) -> Path:
    for base in (Path.cwd() / "apdu_scripts", RECIPES_DIR):
        if (base / name).is_file():
            return base / name
    raise BadInputError(f"recipe {name} not found (looked in ./apdu_scripts and {RECIPES_DIR});"
                        " give --recipe FILE")


@click.command()
@click.argument("holders", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--recipe", type=click.Path(dir_okay=False, path_type=Path),
              help="Recipe script for every card (default: apdu_scripts/personalise-2.0.apdu, "
                   "or -3.0.apdu for SM4 cards).")
@click.option("--journal", metavar="FILE|postgresql://…",
              help="Journal database: a SQLite file (default HOLDERS.journal.sqlite beside the "
                   "CSV), or a PostgreSQL URL for several stations sharing one batch.")
@click.option("--resume", is_flag=True, help="Continue a batch started before with this CSV.")
@click.option("--readers", "readers", multiple=True, metavar="READER",
              help="Work several readers in parallel (repeat; default: --reader / auto).")
@click.option("--initial-pin-stdin", is_flag=True,
              help="Read one initial PIN for every card from stdin (when the CSV has no pin).")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path),
              help="Per-card report: .jsonl (JSON lines) or .csv.")
@click.option("--release", "release", metavar="CARD_ID",
              help="Mark a card spoiled (lost/broken mid-way) and give its holder back; exits.")
@click.option("--status", "show_status", is_flag=True, help="Show the journal of this batch; exit.")
@click.option("--ca", metavar="CERT.pem,KEY.pem|test",
              help="SM2 CA that certifies 3.0 cards' keys (`test` = the simulator's public "
                   "TEST root; never for real cards).")
@click.option("--robot-get", metavar="CMD",
              help="Card robot/printer: shell command that puts the next card in the reader.")
@click.option("--robot-done", metavar="CMD",
              help="Card robot: command that takes a finished card out.")
@click.option("--robot-error", metavar="CMD",
              help="Card robot: command that takes a failed or torn card to the reject bin. "
                   "Robot commands see SBCARD_READER, SBCARD_CARD_ID, SBCARD_ROW, "
                   "SBCARD_OUTCOME, SBCARD_DETAIL.")
@click.option("--dry-run", is_flag=True,
              help="Validate the CSV and the recipe, print the first card's steps; no card.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.pass_context
def personalise(ctx: click.Context, holders: Path, recipe: Path | None, journal: str | None,
                resume: bool, readers: tuple[str, ...], initial_pin_stdin: bool,
                report: Path | None, release: str | None, show_status: bool, ca: str | None,
                robot_get: str | None, robot_done: str | None, robot_error: str | None,
                dry_run: bool, no_progress: bool) -> int:
    """Personalise cards for the holders in HOLDERS.csv, one card per holder.

    \b
    The whole CSV is validated before any card is touched (ID check digit, GBK names that
    fit 姓名+姓名扩展, dates, region codes, card number check character, duplicates); every bad
    row is reported at once. Each card presented gets the next holder; every step goes to
    the journal first, so a card pulled out or a killed process resumes with --resume: no
    holder gets two cards, no card two holders. CSV columns: ssn, name, sex, ethnicity,
    birthplace, birth_date, card_no, card_type, issue_date, expiry_date [, spec_version, pin].

    \b
    Examples:
      sbcard --keys bureau-keys.toml personalise holders.csv --readers 0 --readers 1
      sbcard --sim blank --keys test personalise holders.csv     # simulated blank cards
      sbcard personalise holders.csv --status
    Exit codes: 0 all holders done, 1 some failed or unfinished, 3 bad CSV/recipe,
    8 refused (batch started before without --resume).
    """
    from sbcard.card.profiles import load_profile
    from sbcard.compose import SimSlot
    from sbcard.ops.holders import load_holders
    from sbcard.ops.journal import Journal
    from sbcard.ops.personalise import (
        BatchPlan,
        PcscSlot,
        check_distinct_slots,
        pcsc_session,
        run_batch,
    )
    from sbcard.ops.script import ScriptContext, ScriptRunner, parse_script

    journal_path: str | Path = journal or holders.with_suffix(".journal.sqlite")
    if release or show_status:
        return _journal_admin(holders, journal_path, release, show_status)
    holder_list = load_holders(holders, need_pin=False)
    has_pin = all(h.values.get("pin") for h in holder_list)
    initial_pin = None
    if initial_pin_stdin:
        from sbcard.ops.pin import Pin

        initial_pin = Pin(sys.stdin.readline().strip()).digits
    elif not has_pin:
        raise BadInputError(f"{holders}: no pin column (or empty pins): give the batch's "
                            "initial PIN with --initial-pin-stdin")
    recipes = {}
    if recipe is not None:
        recipes = {k: parse_script(recipe) for k in ("2.0", "3.0")}
    else:
        recipes = {"2.0": parse_script(_recipe_path("personalise-2.0.apdu")),
                   "3.0": parse_script(_recipe_path("personalise-3.0.apdu"))}
    if dry_run:
        first = dict(holder_list[0].values)
        first.setdefault("pin", initial_pin or "")
        for line in ScriptRunner(None, ScriptContext(variables=first)).dry_run(recipes["2.0"]):
            click.echo(line)
        click.echo(f"{holders}: {len(holder_list)} holders valid; nothing was written")
        return ExitCode.OK

    st = state(ctx)
    # open what can fail on the user's paths before the journal records a batch
    report_file = open(report, "a", encoding="utf-8") if report else None  # noqa: SIM115
    log = Journal(journal_path)
    try:
        batch_id = log.open_batch(holders, holder_list, str(recipe or "auto"), resume=resume)
        counts = log.counts(batch_id)
    except BaseException:
        if report_file is not None:
            report_file.close()
        raise
    finally:
        log.close()
    outcomes: list = []
    lock = threading.Lock()
    bar = None
    if not no_progress and st.verbosity >= 0:
        bar = click.progressbar(length=counts.total, label="personalising 制卡",
                                file=sys.stderr, show_pos=True)
        bar.update(counts.done)

    def on_outcome(o) -> None:
        with lock:
            outcomes.append(o)
            if report_file is not None:
                _write_report(report_file, report, o)
            if bar is not None and o.outcome == "done":
                bar.update(1)
            if o.outcome not in ("done",):
                click.echo(f"\n{o.slot}: card {o.card_id} row {o.row_no}: {o.outcome}"
                           f"{' — ' + o.detail if o.detail else ''}", err=True)

    authority = None
    if ca is not None:
        from sbcard.ops.pki_issue import CertificateAuthority

        authority = CertificateAuthority.load(ca)
        if ca == "test":
            click.echo("WARNING: certifying with the public TEST root: only for simulated "
                       "cards", err=True)
    with st.key_source() as keys:
        plan = BatchPlan(batch_id, {h.row: h for h in holder_list}, recipes, keys,
                         load_profile("mohrss-2.0"), initial_pin=initial_pin, ca=authority,
                         on_outcome=on_outcome)
        if st.sim is not None:
            if robot_get or robot_done or robot_error:
                raise click.UsageError("--robot-* drive readers; they do not apply with --sim")
            slots = [SimSlot(st.sim, counts.total - counts.done)]
        else:
            names = list(readers) or [st.reader or ""]
            trace = (lambda line: click.echo(line, err=True)) if st.trace else None
            robot = None
            if robot_get or robot_done or robot_error:
                from sbcard.ops.personalise import Robot

                robot = Robot(robot_get, robot_done, robot_error)
            slots = [PcscSlot(n or None, lambda name: pcsc_session(name, trace),  # type: ignore
                              say=lambda m: click.echo(m, err=True), robot=robot,
                              reserved=st.reserved)
                     for n in names]
            check_distinct_slots(names, slots)
        try:
            run_batch(slots, journal_path, plan)
        finally:
            if bar is not None:
                bar.render_finish()
            if report_file is not None:
                report_file.close()
    log = Journal(journal_path)
    try:
        final = log.counts(batch_id)
    finally:
        log.close()
    if plan.stop_reason:
        click.echo(f"sbcard: {plan.stop_reason}", err=True)
    click.echo(f"done 完成 {final.done}/{final.total}, failed 失败 {final.failed}, "
               f"unfinished 未完成 {final.pending + final.in_progress}")
    return ExitCode.OK if final.done == final.total else ExitCode.FAILURE


def _write_report(f, path: Path, o) -> None:
    row = o.to_json()
    if path.suffix == ".csv":
        import csv

        if f.tell() == 0:
            csv.writer(f).writerow(list(row))
        csv.writer(f).writerow(["" if v is None else v for v in row.values()])
    else:
        f.write(json.dumps(row, ensure_ascii=False) + "\n")
    f.flush()


def _journal_admin(holders: Path, journal_path: str | Path, release: str | None,
                   show_status: bool) -> int:
    from sbcard.ops.journal import Journal, is_server_url

    if not is_server_url(journal_path) and not Path(journal_path).exists():
        raise BadInputError(f"no journal at {journal_path}")
    log = Journal(journal_path)
    try:
        batch_id = log.find_batch(holders)
        if batch_id is None:
            raise BadInputError(f"{journal_path} has no batch for {holders}")
        if release:
            row_no = log.release(batch_id, release.upper(), "released by operator")
            click.echo(f"card {release} marked spoiled; holder row {row_no} is pending again")
            return ExitCode.OK
        for r in log.holders(batch_id):
            row_no, _ssn, card_no, card_id, status, step, attempts, _reader, detail = r
            click.echo(f"row {row_no:>4} {card_no} card {card_id or '-':32} {status:<11} "
                       f"attempts {attempts} {step or ''}{' — ' + detail if detail else ''}")
        c = log.counts(batch_id)
        click.echo(f"{c.done}/{c.total} done, {c.failed} failed, {c.pending} pending, "
                   f"{c.in_progress} in progress/torn")
    finally:
        log.close()
    return ExitCode.OK
