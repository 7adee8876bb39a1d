"""Generate docs/cli-reference.md from the commands' own --help, so the two cannot drift.

    python -m sbcard.cli.docgen > docs/cli-reference.md

A test regenerates the text and compares it with the committed file.
"""

from __future__ import annotations

import click

from sbcard.cli.main import COMMANDS, LazyGroup, cli

HEADER = """# Command reference

Generated from `sbcard … --help` by `python -m sbcard.cli.docgen`; do not edit by hand.
Guides: technicians (docs/technicians.md), card bureaus (docs/card-bureau.md), test
engineers (docs/test-engineers.md).
"""


def _walk(cmd: click.Command, path: list[str], parent: click.Context | None = None
          ) -> list[tuple[list[str], click.Context]]:
    """Every command with a context made the way click makes it (settings inherited)."""
    extra = {"terminal_width": 100, "max_content_width": 100} if parent is None else {}
    ctx = cmd.make_context(path[-1], [], parent=parent, resilient_parsing=True, **extra)
    out = [(path, ctx)]
    if isinstance(cmd, click.Group):
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                out.extend(_walk(sub, [*path, name], ctx))
    return out


def command_paths() -> list[str]:
    return [" ".join(p) for p, _ in _walk(cli, ["sbcard"])]


def render() -> str:
    parts = [HEADER]
    for path, ctx in _walk(cli, ["sbcard"]):
        text = ctx.command.get_help(ctx)
        parts.append(f"## `{' '.join(path)}`\n\n```text\n{text}\n```\n")
    return "\n".join(parts)


def main() -> None:
    assert isinstance(cli, LazyGroup) and COMMANDS
    print(render(), end="")


if __name__ == "__main__":
    main()
