"""Man pages from the CLI itself: ``python -m sbcard.cli.manpages DIR`` writes ``sbcard.1``
and one page per command (``sbcard-read.1``, ``sbcard-verify-pin.1`` …) with click-man.

``.ci/setup`` runs it and installs the pages (``man sbcard``, ``man sbcard-read``); they are
generated, never edited, like docs/cli-reference.md.
"""

from __future__ import annotations

import sys
from pathlib import Path


def write(target: Path) -> list[Path]:
    import click
    from click_man.core import write_man_pages

    from sbcard import __version__
    from sbcard.cli.main import cli

    # click-man walks ``Group.commands``; the lazy group fills nothing there until a command
    # runs, so the pages are made from an eager copy with the same options and help.
    ctx = click.Context(cli, info_name="sbcard")
    commands = {n: c for n in cli.list_commands(ctx) if (c := cli.get_command(ctx, n))}
    eager = click.Group("sbcard", commands=commands,
                        params=cli.params, help=cli.help, context_settings=cli.context_settings)
    target.mkdir(parents=True, exist_ok=True)
    write_man_pages("sbcard", eager, version=__version__, target_dir=str(target))
    return sorted(target.glob("sbcard*.1"))


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.exit("usage: python -m sbcard.cli.manpages DIR")
    pages = write(Path(args[0]))
    print(f"{len(pages)} man pages in {args[0]}")


if __name__ == "__main__":
    main()
