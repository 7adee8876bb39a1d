"""``sbcard block card|application``: permanent blocks (卡片锁定 / 应用锁定), confirmed by 卡号."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from sbcard.cli.common import echo_json, state
from sbcard.errors import ExitCode, RefusedError

if TYPE_CHECKING:
    from sbcard.ops.block import Target

CONFIRM_HELP = ("The card number (卡号, as `sbcard read` shows it) of the card to block; it "
                "must equal the number read from the card in the reader. Without it, sbcard "
                "asks for it at a terminal and refuses otherwise.")


def _confirmer(confirm: str | None, target: Target):
    def ask(card_no: str) -> str:
        if confirm is not None:
            return confirm
        if not sys.stdin.isatty():
            raise RefusedError(f"blocking the {target} is permanent: give --confirm CARD_NO "
                               "(the card number of this card); nothing was sent")
        click.echo(f"This PERMANENTLY blocks the {target} of card 卡号 {card_no} "
                   "(永久锁定, cannot be undone).", err=True)
        return str(click.prompt("type the card number to confirm 请输入卡号确认",
                                default="", show_default=False, err=True))
    return ask


def _run(ctx: click.Context, target: Target, confirm: str | None, as_json: bool) -> int:
    from sbcard.ops.block import block

    st = state(ctx)
    with st.key_source() as keys, st.session() as channel:
        if keys is None:
            raise click.UsageError(f"block {target} needs a key source with BK and STK (card "
                                   "keys 05, 02): --keys, --psam or --hsm-*")
        result = block(channel, keys, target, _confirmer(confirm, target))
    if as_json:
        echo_json(result.to_json())
    elif target == "card":
        click.echo(f"card 卡号 {result.card_no} blocked 卡片已永久锁定: it now answers 6A81 to "
                   "every command")
    else:
        click.echo(f"SSSE application of card 卡号 {result.card_no} blocked 应用已永久锁定: "
                   "SELECT now answers 9303")
    return ExitCode.OK


@click.group()
def block() -> None:
    """Block a card or its application for good (卡片锁定 / 应用锁定), e.g. a reported loss.

    Both are permanent: no command undoes them. sbcard reads the card number first and blocks
    only when it equals --confirm (or what the operator types at the prompt).
    """


@block.command("card")
@click.option("--confirm", metavar="CARD_NO", default=None, help=CONFIRM_HELP)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def block_card_cmd(ctx: click.Context, confirm: str | None, as_json: bool) -> int:
    """CARD BLOCK (84 16 00 00 + MAC with STK): every application of the card, permanently.

    \b
    Afterwards the card answers 6A81 to every command and does nothing else (part 5 §6.2).
    Needs a key source with BK (card key 05: EXTERNAL AUTHENTICATE first, part 7 §13) and
    STK (02, the MAC).
    Exit codes: 0 blocked, 2 no key source, 7 already blocked (6A81), 8 refused (no
    --confirm and no terminal, or no BK/STK), 9 the card number differs from --confirm,
    4 no card.
    """
    return _run(ctx, "card", confirm, as_json)


@block.command("application")
@click.option("--confirm", metavar="CARD_NO", default=None, help=CONFIRM_HELP)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def block_application_cmd(ctx: click.Context, confirm: str | None, as_json: bool) -> int:
    """APPLICATION BLOCK (84 1E 00 01 + MAC with STK): the SSSE application, permanently.

    \b
    Afterwards SELECT of the SSSE answers 9303 (part 5 §6.1). Needs a key source with BK
    (05) and STK (02).
    Exit codes: 0 blocked, 2 no key source, 7 already blocked (9303), 8 refused,
    9 the card number differs from --confirm, 4 no card.
    """
    return _run(ctx, "application", confirm, as_json)
