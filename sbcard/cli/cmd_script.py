"""``sbcard script run|check``: APDU scripts (scriptor syntax plus expectations and named ops)."""

from __future__ import annotations

from pathlib import Path

import click

from sbcard.cli.common import state
from sbcard.errors import BadInputError, ExitCode


@click.group()
def script() -> None:
    """APDU scripts (脚本): scriptor-compatible, with expectations and named operations.

    See docs/apdu-scripts.md and the recipes in apdu_scripts/.
    """


def _variables(var: tuple[str, ...], csv_file: Path | None, row: int | None) -> dict[str, str]:
    values: dict[str, str] = {}
    if csv_file is not None:
        from sbcard.ops.holders import read_csv_rows

        rows = read_csv_rows(csv_file)
        index = (row or 1) - 1
        if not 0 <= index < len(rows):
            raise BadInputError(f"{csv_file}: no data row {row} (it has {len(rows)})")
        values.update(rows[index])
    for item in var:
        if "=" not in item:
            raise click.BadParameter(f"{item!r} is not NAME=VALUE", param_hint="--var")
        name, _, value = item.partition("=")
        values[name.strip()] = value
    return values


@script.command("run")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--var", multiple=True, metavar="NAME=VALUE", help="Set a variable (repeatable).")
@click.option("--csv", "csv_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Take variables from a CSV file's row (header = variable names).")
@click.option("--row", type=int, metavar="N", help="Which CSV data row (1 = first; default 1).")
@click.option("--dry-run", is_flag=True,
              help="Resolve variables and includes and print every step; touch no card.")
@click.option("--quiet", "-q", is_flag=True, help="Print only failures.")
@click.option("--ca", metavar="CERT.pem,KEY.pem|test",
              help="SM2 CA for `sm2-issue` (`test` = the simulator's public TEST root).")
@click.pass_context
def run_cmd(ctx: click.Context, file: Path, var: tuple[str, ...], csv_file: Path | None,
            row: int | None, dry_run: bool, quiet: bool, ca: str | None) -> int:
    """Run an APDU script against the card.

    \b
    Existing scriptor scripts run unchanged (hex lines, reset, exit, # comments, \\
    continuation). Exit codes: 0 all steps passed, 5 an expectation failed (file:line, the
    APDU, the SW in words), 3 the script is malformed (checked before the first APDU).
    """
    from sbcard.ops.script import ScriptContext, ScriptRunner, parse_script

    parsed = parse_script(file)
    variables = _variables(var, csv_file, row)
    echo = (lambda _line: None) if quiet else click.echo
    if dry_run:
        for line in ScriptRunner(None, ScriptContext(variables=variables)).dry_run(parsed):
            click.echo(line)
        return ExitCode.OK
    st = state(ctx)
    with st.key_source() as keys, st.session() as channel:
        from sbcard.card.profiles import load_profile
        from sbcard.ops.script_ops import OPERATIONS

        authority = None
        if ca is not None:
            from sbcard.ops.pki_issue import CertificateAuthority

            authority = CertificateAuthority.load(ca)
        context = ScriptContext(keys=keys, profile=load_profile("mohrss-2.0"),
                                variables=variables, ca=authority, operations=OPERATIONS)
        ScriptRunner(channel, context, echo=echo).run(parsed)
    return ExitCode.OK


@script.command("check")
@click.argument("files", nargs=-1, required=True,
                type=click.Path(dir_okay=False, path_type=Path))
def check_cmd(files: tuple[Path, ...]) -> None:
    """Check scripts for syntax (APDU lengths, Lc, masks, includes) without a card."""
    from sbcard.ops.script import parse_script

    for f in files:
        parsed = parse_script(f)
        click.echo(f"{f}: {len(parsed.statements)} steps OK")
