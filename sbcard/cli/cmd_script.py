"""``sbcard script run|check``: APDU scripts (scriptor syntax plus expectations and named ops)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from sbcard.cli.common import state
from sbcard.errors import BadInputError, ExitCode


@click.group()
def script() -> None:
    """APDU scripts (脚本): scriptor-compatible, with expectations and named operations.

    See docs/apdu-scripts.md. The recipes sbcard ships (apdu_scripts/ in the source tree)
    run by name: `sbcard script run read-basic-info`; `-` reads the script from stdin.
    """


def _var_file(path: Path) -> dict[str, str]:
    """NAME=VALUE lines (``-``: stdin), so a PIN or key need not be on the command line."""
    import sys

    if str(path) == "-":
        text = sys.stdin.read()
    else:
        try:
            text = path.read_text("utf-8")
        except OSError as exc:
            raise BadInputError(f"--var-file {path}: {exc.strerror or exc}") from None
    values = {}
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if "=" not in line:
            raise BadInputError(f"--var-file {path}: line {n} is not NAME=VALUE")
        name, _, value = line.partition("=")
        values[name.strip()] = value.strip()
    return values


def _variables(var: tuple[str, ...], csv_file: Path | None, row: int | None,
               var_file: Path | None = None) -> dict[str, str]:
    values: dict[str, str] = {}
    if var_file is not None:
        values.update(_var_file(var_file))
    if csv_file is not None:
        from sbcard.ops.holders import read_csv_rows

        if str(csv_file) == "-":
            rows = read_csv_rows(Path("stdin"), data=sys.stdin.buffer.read())
        else:
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


def _load_script(file: str):
    """A script file, ``-`` (stdin; includes relative to the current folder) or a shipped
    recipe by name."""
    from sbcard.ops.script import parse_script

    if file == "-":
        return parse_script("<stdin>", _text=sys.stdin.read())
    from sbcard.ops.recipes import find_recipe

    return parse_script(find_recipe(file))


@script.command("run")
@click.argument("file", metavar="FILE|-|RECIPE")
@click.option("--var", multiple=True, metavar="NAME=VALUE",
              help="Set a variable (repeatable). Visible to other users in argv: give PINs "
                   "and keys with --var-file instead.")
@click.option("--var-file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
              help="Variables as NAME=VALUE lines from FILE (- = stdin): PINs and keys stay "
                   "out of argv.")
@click.option("--csv", "csv_file", type=click.Path(dir_okay=False, allow_dash=True,
                                                   path_type=Path),
              help="Take variables from a CSV file's row (header = variable names; - = "
                   "stdin).")
@click.option("--row", type=int, metavar="N", help="Which CSV data row (1 = first; default 1).")
@click.option("--dry-run", is_flag=True,
              help="Resolve variables and includes and print every step; touch no card.")
@click.option("--quiet", "-q", is_flag=True, help="Print only failures.")
@click.option("--ca", metavar="CERT.pem,KEY.pem|test",
              help="SM2 CA for `sm2-issue` (`test` = the simulator's public TEST root).")
@click.pass_context
def run_cmd(ctx: click.Context, file: str, var: tuple[str, ...], var_file: Path | None,
            csv_file: Path | None, row: int | None, dry_run: bool, quiet: bool,
            ca: str | None) -> int:
    """Run an APDU script against the card.

    \b
    Existing scriptor scripts run unchanged (hex lines, reset, exit, # comments, \\
    continuation). Exit codes: 0 all steps passed, 5 an expectation failed (file:line, the
    APDU, the SW in words), 3 the script is malformed (checked before the first APDU).

    \b
    FILE is a script file, `-` for stdin, or the name of a shipped recipe:
      sbcard --sim script run read-basic-info
      echo "00A4040000 expect 9000" | sbcard --sim script run -
    """
    from sbcard.ops.script import ScriptContext, ScriptRunner

    from_stdin = [name for name, value in (("the script", file), ("--var-file", var_file),
                                           ("--csv", csv_file)) if str(value) == "-"]
    if len(from_stdin) > 1:
        raise click.UsageError(f"{' and '.join(from_stdin)} cannot both come from stdin")
    parsed = _load_script(file)
    variables = _variables(var, csv_file, row, var_file)
    echo = (lambda _line: None) if quiet else click.echo
    if dry_run:
        for line in ScriptRunner(None, ScriptContext(variables=variables)).dry_run(parsed):
            click.echo(line)
        return ExitCode.OK
    st = state(ctx)
    with st.key_source() as keys, st.session() as channel:
        from sbcard.card.profiles import profile_for
        from sbcard.ops.script_ops import OPERATIONS

        authority = None
        if ca is not None:
            from sbcard.ops.pki_issue import CertificateAuthority

            authority = CertificateAuthority.load(ca)
        context = ScriptContext(keys=keys, profile=profile_for(),
                                variables=variables, ca=authority, operations=OPERATIONS)
        ScriptRunner(channel, context, echo=echo).run(parsed)
    return ExitCode.OK


@script.command("check")
@click.argument("files", nargs=-1, required=True, metavar="FILE|-|RECIPE...")
def check_cmd(files: tuple[str, ...]) -> None:
    """Check scripts for syntax (APDU lengths, Lc, masks, includes) without a card."""
    for f in files:
        parsed = _load_script(f)
        click.echo(f"{f}: {len(parsed.statements)} steps OK")


@script.command("list")
def list_cmd() -> None:
    """List the recipes sbcard ships (run them by name)."""
    from sbcard.ops.recipes import find_recipe, shipped_recipes

    for name in shipped_recipes():
        click.echo(f"{name:28} {find_recipe(name)}")
