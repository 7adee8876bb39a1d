"""The ``sbcard`` command: a thin click layer over the library.

Subcommands live in their own modules and are imported only when run (``LazyGroup``), so
``sbcard --help`` starts without pyscard, cryptography or gmssl.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import click

from sbcard import __version__

#: name → "module:attribute", in the order ``--help`` lists them.
COMMANDS: dict[str, str] = {
    "readers": "sbcard.cli.cmd_card:readers",
    "atr": "sbcard.cli.cmd_card:atr",
    "read": "sbcard.cli.cmd_read:read",
    "verify": "sbcard.cli.cmd_pin:verify",
    "pin": "sbcard.cli.cmd_pin:pin",
    "record": "sbcard.cli.cmd_record:record",
    "block": "sbcard.cli.cmd_block:block",
    "activate": "sbcard.cli.cmd_activate:activate",
    "audit": "sbcard.cli.cmd_activate:audit",
    "apdu": "sbcard.cli.cmd_card:apdu",
    "script": "sbcard.cli.cmd_script:script",
    "personalise": "sbcard.cli.cmd_personalise:personalise",
    "crypto": "sbcard.cli.cmd_crypto:crypto",
    "sim": "sbcard.cli.cmd_sim:sim",
    "call": "sbcard.cli.cmd_call:call",
    "serve": "sbcard.cli.cmd_serve:serve",
}

#: other spellings people type → the command's name (not listed in --help)
ALIASES: dict[str, str] = {"personalize": "personalise"}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(ALIASES.get(name, name))
        if target is None:
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)

    def resolve_command(self, ctx: click.Context, args: list[str]
                        ) -> tuple[str | None, click.Command | None, list[str]]:
        name = click.utils.make_str(args[0])
        if self.get_command(ctx, name) is None and not name.startswith("-"):
            from sbcard.cli.argv import close_commands

            near = close_commands(name, [*COMMANDS, *ALIASES])
            hint = f" Did you mean {' or '.join(repr(n) for n in near)}?" if near else ""
            ctx.fail(f"No such command {name!r}.{hint} (commands: {', '.join(COMMANDS)})")
        return super().resolve_command(ctx, args)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Short help comes from a static table so --help imports no command module.
        rows = [(name, SHORT_HELP.get(name, "")) for name in COMMANDS]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


SHORT_HELP = {
    "call": "Call a national reader-interface function (iReadCardBas …), print code and output. "
            "调用接口",
    "serve": "Local card service for browser pages: 3 vendor dialects, own API, counter page. "
             "读卡服务",
    "readers": "List readers, card presence, ATR and card type. 列出读卡器",
    "atr": "Decode the card's ATR (historical bytes, diversification factor). 解析复位信息",
    "read": "Read issuer and holder data (EF05/EF06), optionally bank number, photo. 读卡",
    "verify": "Check the PIN, or that the card is genuine (internal auth). 校验",
    "pin": "PIN status, change, reload (重置) and unblock (解锁). 密码管理",
    "record": "Read/write the DF01–DF07 files (户籍, 就业, 社保, 医疗, 人事). 应用数据",
    "block": "Block a card (84 16) or its application (84 1E) for good. 卡片/应用锁定",
    "activate": "Activate a holder's card: identity check, initial PIN → new PIN. 启用",
    "audit": "Show the activation audit log. 启用记录",
    "apdu": "Send raw APDUs exactly as typed and show the decoded status words. 发送APDU",
    "script": "Run or check APDU scripts (scriptor syntax + expectations, named ops). 脚本",
    "personalise": "Batch personalisation from a holders CSV, journaled, resumable. 批量制卡",
    "crypto": "SM3/SM4/DES, card MAC, key diversification, auth data, SM2 by hand. 密码运算",
    "sim": "Simulated social security card: serve into pcscd, list personas. 模拟卡",
}


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-r", "--reader", metavar="READER", envvar="SBCARD_READER",
              help="Reader index, exact name or unique name fragment (env SBCARD_READER). "
                   "Default: the only reader, else the first one holding a card.")
@click.option("--sim", "sim", metavar="PERSONA", default=None,
              help="Use the in-process simulated card instead of PC/SC: a built-in persona "
                   "name (demo, v1, v3, t0quirks; see `sbcard sim personas`) or a persona "
                   "file. `--sim` alone means `--sim demo`.")
@click.option("--keys", metavar="FILE|test", envvar="SBCARD_KEYS",
              help="Key source: a key file (chmod 600) of root keys, diversified in software; "
                   "`test` = the public test keys of the simulated cards (env SBCARD_KEYS).")
@click.option("--psam", metavar="READER|sim",
              help="Key source: a PSAM card in this reader (`sim` = in-process simulated PSAM, "
                   "`sim:NAME` = the simulated PSAM persona NAME, e.g. sim:jiangsu).")
@click.option("--hsm-command", metavar="CMD",
              help="Key source: an HSM in step mode; CMD gets one request on stdin and "
                   "answers on stdout: JSON, or the national strings with --hsm-protocol "
                   "national (docs/keys.md).")
@click.option("--hsm-stdio", is_flag=True,
              help="Key source: HSM step mode by hand (requests on stderr, answers on stdin).")
@click.option("--hsm-protocol", "hsm_protocol", type=click.Choice(["national", "json"]),
              envvar="SBCARD_HSM_PROTOCOL", default=None, metavar="NAME",
              help="How --hsm-command is spoken to (env SBCARD_HSM_PROTOCOL): `json` (sbcard's "
                   "JSON requests; the default) or `national` (the national HSM strings, "
                   "`03|0090|R|X|` → hex, as in the public HSM-mode trace; docs/keys.md). "
                   "`sbcard call` defaults to the driver configuration's.")
@click.option("--key-version", "key_version", type=click.IntRange(0, 255), default=None,
              envvar="SBCARD_KEY_VERSION", metavar="N",
              help="Card key version: sent as the 17th byte of INTERNAL/EXTERNAL AUTHENTICATE "
                   "(Lc 11, part 5 §6.4.3); picks the key file root, PSAM key ID and HSM "
                   "address of that version. Default: the card's default key (Lc 10).")
@click.option("--trace", is_flag=True,
              help="Print every APDU exchange to stderr with timing and the SW in words "
                   "(PINs, keys and PANs masked).")
@click.option("--dump", metavar="FILE", envvar="SBCARD_DUMP", default=None,
              type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="Record the session to FILE (env SBCARD_DUMP): header, every APDU with "
                   "timing, masked like --trace; replay it with `sbcard sim replay FILE`. "
                   "A PSAM key source's session goes to FILE.psam. Not `-`: stdout "
                   "carries the command's own output, and a dump mixed into it could be "
                   "neither replayed nor read.")
@click.option("--wait", metavar="SECONDS", envvar="SBCARD_WAIT", default=0.0,
              type=click.FloatRange(min=0),
              help="Wait up to SECONDS for the card to be inserted (env SBCARD_WAIT), so the "
                   "command can be started first. Default 0: the card must be in the reader.")
@click.option("-v", "--verbose", count=True,
              help="-v: show the steps of an operation (one line per card command, what is "
                   "waited for); -vv: also every APDU, as --trace.")
@click.option("--no-redact", "no_redact", is_flag=True,
              help="--trace and --dump show the holder's ID number and name (EF06) in full; "
                   "by default they are masked, since traces and dumps are made to be shared.")
@click.option("-q", "--quiet", is_flag=True,
              help="Only results and errors: no progress bars, tries-left notes or hints.")
@click.option("--sim-state", metavar="FILE", envvar="SBCARD_SIM_STATE", default=None,
              type=click.Path(dir_okay=False, path_type=Path),
              help="With --sim: keep the simulated card's memory (PIN and its tries, files, "
                   "blocked flags) in FILE between commands (env SBCARD_SIM_STATE). Without "
                   "it every command starts from the persona.")
@click.option("--lang", type=click.Choice(["zh", "en", "both"]), envvar="SBCARD_LANG",
              default=None,
              help="Language of messages for the operator (env SBCARD_LANG). Default from the "
                   "locale: zh for Chinese, en for English, both otherwise. Table labels "
                   "are always both.")
@click.version_option(__version__, "-V", "--version", prog_name="sbcard")
@click.pass_context
def cli(ctx: click.Context, reader: str | None, sim: str | None, keys: str | None,
        psam: str | None, hsm_command: str | None, hsm_stdio: bool, hsm_protocol: str | None,
        key_version: int | None,
        trace: bool,
        dump: Path | None, wait: float, no_redact: bool, verbose: int, quiet: bool,
        sim_state: Path | None,
        lang: str | None) -> None:
    """sbcard — toolkit for the chip of the social security card (社会保障卡).

    \b
    Examples:
      sbcard readers                    # which readers, which cards
      sbcard --sim atr                  # decode the ATR of the demo simulated card
      sbcard apdu 00A404000F7378312E73682EC9E7BBE1B1A3D5CF   # SELECT SSSE
      sbcard sim serve                  # put the demo card into pcscd (Virtual PCD 00 00)

    Exit codes: 0 ok, 1 failure, 2 usage, 3 bad input, 4 reader/card link, 5 card error
    status, 6 PIN wrong, 7 blocked, 8 refused for safety, 9 data mismatch.
    """
    from sbcard.cli.common import CliState
    from sbcard.messages import default_lang

    if quiet and (verbose or trace):
        raise click.UsageError("-q/--quiet goes with neither -v/--verbose nor --trace")
    if dump is not None and str(dump) == "-":
        raise click.UsageError("--dump needs a file, not - (stdout carries the command's "
                               "output; use --trace to see the exchanges on stderr)")
    ctx.obj = CliState(reader=reader, sim=sim, trace=trace or verbose >= 2, keys=keys,
                       psam=psam, hsm_command=hsm_command, hsm_stdio=hsm_stdio,
                       hsm_protocol=hsm_protocol, dump=dump,
                       wait=wait, verbosity=-1 if quiet else verbose,
                       redact_holder=not no_redact, lang=lang or default_lang(),
                       sim_state=sim_state, key_version=key_version)


def _command_line(args: list[str]) -> list[str]:
    """The arguments as typed → as click parses them (sbcard.cli.argv says why)."""
    from sbcard.cli.argv import (
        check_sim_value,
        hoist_global_options,
        normalise_sim,
        persona_names,
    )

    personas = persona_names()
    commands = {**COMMANDS, **ALIASES}
    out = normalise_sim(hoist_global_options(cli, args, personas), commands, personas)
    check_sim_value(out, personas, commands)
    return out


def main(argv: list[str] | None = None) -> None:
    from sbcard.cli.exits import run_command

    typed = sys.argv[1:] if argv is None else list(argv)
    run_command(cli, lambda: _command_line(typed), "sbcard", typed=typed)
