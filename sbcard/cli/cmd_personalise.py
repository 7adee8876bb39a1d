"""``sbcard personalise``: a card bureau's batch (批量制卡), resumable and auditable."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import click

from sbcard.cli.common import echo_json, state
from sbcard.errors import BadInputError, ExitCode

#: the batch name (and the name in messages) of holders read from stdin (`personalise -`)
STDIN_BATCH = "stdin"


def _recipe_path(name: str) -> Path:
    from sbcard.ops.recipes import find_recipe

    return find_recipe(name, local=Path.cwd() / "apdu_scripts")


@click.command()
@click.argument("holders", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@click.option("--recipe", type=click.Path(dir_okay=False, path_type=Path),
              help="Recipe script for every card (default: apdu_scripts/personalise-2.0.apdu, "
                   "or -3.0.apdu for SM4 cards).")
@click.option("--journal", metavar="FILE|postgresql://…", envvar="SBCARD_JOURNAL",
              help="Journal database: a SQLite file (default HOLDERS.journal.sqlite beside the "
                   "CSV), or a PostgreSQL URL for several stations sharing one batch (env "
                   "SBCARD_JOURNAL keeps a password out of argv; or use ~/.pgpass).")
@click.option("--resume", is_flag=True, help="Continue a batch started before with this CSV.")
@click.option("--readers", "readers", multiple=True, metavar="READER",
              help="Work several readers in parallel (repeat; default: --reader / auto).")
@click.option("--initial-pin-stdin", is_flag=True,
              help="Read one initial PIN for every card from stdin (when the CSV has no pin).")
@click.option("--report", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
              help="Per-card report: .jsonl (JSON lines) or .csv; `-` = JSON lines on "
                   "stdout (the summary line then goes to stderr).")
@click.option("--release", "release", metavar="CARD_ID",
              help="Mark a card spoiled (lost/broken mid-way) and give its holder back; exits.")
@click.option("--reissue", "reissue", multiple=True, metavar="ID_NUMBER",
              help="Make a new card for a holder who already has one (a lost card): an "
                   "explicit, journaled act (repeat; or a CSV column reissue=1). Without it a "
                   "holder with a finished card never gets a second one.")
@click.option("--status", "show_status", is_flag=True, help="Show the journal of this batch; exit.")
@click.option("--json", "as_json", is_flag=True,
              help="With --status: the journal as JSON (holders masked as in the listing).")
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
@click.option("--progress-every", default=10, show_default=True, type=click.IntRange(1),
              metavar="N", help="When stderr is not a terminal (a log file): one progress "
                                "line per N cards, with the pace and the ETA.")
@click.pass_context
def personalise(ctx: click.Context, holders: Path, recipe: Path | None, journal: str | None,
                resume: bool, readers: tuple[str, ...], initial_pin_stdin: bool,
                report: Path | None, release: str | None, reissue: tuple[str, ...],
                show_status: bool, as_json: bool, ca: str | None,
                robot_get: str | None, robot_done: str | None, robot_error: str | None,
                dry_run: bool, no_progress: bool, progress_every: int) -> int:
    """Personalise cards for the holders in HOLDERS.csv, one card per holder.

    \b
    The whole CSV is validated before any card is touched (ID check digit, GBK names that
    fit 姓名+姓名扩展, dates, region codes, card number check character, duplicates); every bad
    row is reported at once. Each card presented gets the next holder; every step goes to
    the journal first, so a card pulled out or a killed process resumes with --resume: no
    holder gets two cards, no card two holders. CSV columns: ssn, name, sex, ethnicity,
    birthplace, birth_date, card_no, card_type, issue_date, expiry_date [, spec_version, pin].

    \b
    HOLDERS may be `-` (the CSV from stdin): give --journal then (there is no file to put
    it beside); the batch is named `stdin`, and the PINs come from the CSV.

    \b
    Examples:
      sbcard --keys bureau-keys.toml personalise holders.csv --readers 0 --readers 1
      sbcard --sim blank --keys test personalise holders.csv     # simulated blank cards
      sbcard personalise holders.csv --status
    Exit codes: 0 all holders done, 1 some failed or unfinished, 3 bad CSV/recipe,
    8 refused (batch started before without --resume).
    """
    from sbcard.ops.holders import load_holders
    from sbcard.ops.journal import Journal, is_server_url
    from sbcard.ops.preflight import usable_recipes
    from sbcard.ops.script import ScriptContext, ScriptRunner, parse_script

    if as_json and not show_status:
        raise click.UsageError("--json goes with --status")
    csv_data: bytes | None = None
    if str(holders) == "-":
        if initial_pin_stdin:
            raise click.UsageError("the holders CSV and --initial-pin-stdin cannot both come "
                                   "from stdin")
        if not journal and not dry_run:
            raise click.UsageError("personalise - (holders from stdin) needs --journal "
                                   "FILE|URL: there is no CSV file to keep the journal beside")
        if not (release or show_status):
            csv_data = sys.stdin.buffer.read()
        holders = Path(STDIN_BATCH)
    journal_path: str | Path = journal or holders.with_suffix(".journal.sqlite")
    if release or show_status:
        return _journal_admin(holders, journal_path, release, show_status, as_json)
    notices: list[str] = []
    if resume and (is_server_url(journal_path) or Path(journal_path).exists()):
        with Journal(journal_path) as log:         # rows it holds were checked already
            holder_list = load_holders(holders, notices=notices, data=csv_data,
                                       validated=log.known_holders(),
                                       unchanged=log.loaded_before(holders))
    else:
        holder_list = load_holders(holders, notices=notices, data=csv_data)
    has_pin = all(h.values.get("pin") for h in holder_list)
    initial_pin = None
    if initial_pin_stdin:
        from sbcard.ops.pin import Pin

        initial_pin = Pin(sys.stdin.readline().strip()).digits
    elif not has_pin:
        raise BadInputError(f"{holders}: no pin column (or empty pins): give the batch's "
                            "initial PIN with --initial-pin-stdin")
    st = state(ctx)
    if st.sim is not None and (st.trace or st.dump):
        raise click.UsageError("--trace and --dump are not recorded for simulated batches "
                               "(hundreds of cards in one process): serve the blank card with "
                               "`sbcard sim serve` and personalise through --readers instead")
    if recipe is not None:
        recipes = {k: parse_script(recipe) for k in ("2.0", "3.0")}
    else:
        recipes = {"2.0": parse_script(_recipe_path("personalise-2.0.apdu")),
                   "3.0": parse_script(_recipe_path("personalise-3.0.apdu"))}
    generation = _sim_generation(st.sim) if st.sim is not None else None
    recipes, unusable = usable_recipes(
        recipes, has_keys=bool(st.keys or st.psam or st.hsm_command), has_ca=ca is not None,
        generation=generation)
    authority = None
    if ca is not None:
        from sbcard.ops.pki_issue import CertificateAuthority

        authority = CertificateAuthority.load(ca)
    for notice in notices:
        click.echo(f"sbcard: {notice}", err=True)
    if dry_run:
        first = dict(holder_list[0].values)
        first.setdefault("pin", initial_pin or "")
        for key, script in recipes.items():
            click.echo(f"# the {key} recipe (first holder)")
            for line in ScriptRunner(None, ScriptContext(variables=first)).dry_run(script):
                click.echo(line)
        for why in unusable:
            click.echo(f"# {why}: such cards would be refused, nothing written")
        click.echo(f"{holders}: {len(holder_list)} holders valid; nothing was written")
        return ExitCode.OK
    for why in unusable:
        click.echo(f"sbcard: {why}: such cards are refused before anything is written",
                   err=True)
    if ca == "test":
        click.echo("WARNING: certifying with the public TEST root: only for simulated "
                   "cards", err=True)
    with st.key_source() as keys:
        return _run(st, holders, holder_list, journal_path, recipes, keys, authority,
                    initial_pin, resume=resume, reissue=reissue, report=report,
                    readers=readers, robot=(robot_get, robot_done, robot_error),
                    no_progress=no_progress, recipe_name=str(recipe or "auto"),
                    progress_every=progress_every, csv_data=csv_data)


def _sim_generation(persona: str) -> str:
    """The recipe key of the simulated blanks (known without a card)."""
    from sbcard.ops.personalise import recipe_key
    from sbcard.sim.persona import ALGORITHM_IDS, load_persona

    return recipe_key(ALGORITHM_IDS.get(load_persona(persona).algorithm))


def _run(st, holders: Path, holder_list: list, journal_path: str | Path, recipes: dict, keys,
         authority, initial_pin: str | None, *, resume: bool, reissue: tuple[str, ...],
         report: Path | None, readers: tuple[str, ...], robot: tuple, no_progress: bool,
         recipe_name: str, progress_every: int = 10, csv_data: bytes | None = None) -> int:
    from sbcard.card.profiles import profile_for
    from sbcard.compose import SimSlot
    from sbcard.ops.batch_report import OutcomeLog, ReportWriter, describe, summary
    from sbcard.ops.journal import Journal
    from sbcard.ops.personalise import (
        BatchPlan,
        CardSlot,
        PcscSlot,
        Robot,
        check_distinct_slots,
        pcsc_session,
        run_batch,
    )

    # open what can fail on the user's paths before the journal records a batch
    to_stdout = report is not None and str(report) == "-"
    report_writer = None
    if report is not None:
        report_writer = ReportWriter(report, sys.stdout if to_stdout else None)
    try:
        with Journal(journal_path) as log:
            opened = log.open_batch(
                holders, holder_list, recipe_name, resume=resume, reissue=reissue,
                csv_sha256=None if csv_data is None else hashlib.sha256(csv_data).hexdigest())
            counts = log.counts(opened.batch_id)
    except BaseException:
        if report_writer is not None:
            report_writer.close()
        raise
    for notice in opened.notices:
        click.echo(f"sbcard: {notice}", err=True)
    bar = None
    if not no_progress and st.verbosity >= 0:
        from sbcard.cli.progress import BatchProgress

        bar = BatchProgress(counts.total, counts.done, sys.stderr, every=progress_every)
        bar.start()

    def show(o) -> None:
        if bar is not None and o.outcome == "done":
            bar.advance()
        if o.outcome != "done":
            click.echo(("\n" if bar is not None and bar.tty else "") + describe(o), err=True)

    outcomes = OutcomeLog(report_writer, show)
    plan = BatchPlan(opened.batch_id, {h.row: h for h in holder_list}, recipes, keys,
                     profile_for(), initial_pin=initial_pin, ca=authority,
                     on_outcome=outcomes)
    robot_get, robot_done, robot_error = robot
    try:
        if st.sim is not None:
            if robot_get or robot_done or robot_error:
                raise click.UsageError("--robot-* drive readers; they do not apply with --sim")
            cards = counts.total - counts.done
            with Journal(journal_path) as log:
                first_serial = log.reserve_sim_serials(cards)
            slots: list[CardSlot] = [SimSlot(st.sim, cards, first_serial=first_serial)]
        else:
            names = list(readers) or [st.reader or ""]
            trace = (lambda line: click.echo(line, err=True)) if st.trace else None
            driver = Robot(robot_get, robot_done, robot_error) if any(robot) else None
            readers_slots = [PcscSlot(n or None, lambda name: pcsc_session(name, trace),
                                      say=lambda m: click.echo(m, err=True), robot=driver,
                                      reserved=st.reserved)
                             for n in names]
            check_distinct_slots(names, readers_slots)
            slots = list(readers_slots)
        run_batch(slots, journal_path, plan)
    except KeyboardInterrupt:
        click.echo(f"\nsbcard: batch stopped; every card so far is in the journal — run the "
                   f"same command with --resume to continue ({holders.name})", err=True)
        raise
    finally:
        if bar is not None:
            bar.finish()
        if report_writer is not None:
            report_writer.close()
    with Journal(journal_path) as log:
        final = log.counts(opened.batch_id)
    if plan.stop_reason:
        click.echo(f"sbcard: {plan.stop_reason}", err=True)
    click.echo(summary(final), err=to_stdout)      # stdout is the report's with --report -
    if final.done == final.total:
        return ExitCode.OK
    click.echo(f"sbcard: {final.total - final.done} holder(s) without a card yet: run the same "
               "command with --resume to continue", err=True)
    return ExitCode.FAILURE


def _journal_admin(holders: Path, journal_path: str | Path, release: str | None,
                   show_status: bool, as_json: bool = False) -> int:
    from sbcard.ops.batch_report import open_existing, release_card, status_json, status_lines

    log, batch_id = open_existing(holders, journal_path)
    with log:
        if release:
            click.echo(release_card(log, batch_id, release))
            return ExitCode.OK
        if as_json:
            echo_json(status_json(log, batch_id))
            return ExitCode.OK
        for line in status_lines(log, batch_id):
            click.echo(line)
    return ExitCode.OK

