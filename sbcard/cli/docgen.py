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


def _walk(cmd: click.Command, path: list[str]) -> list[tuple[list[str], click.Command]]:
    out = [(path, cmd)]
    if isinstance(cmd, click.Group):
        ctx = click.Context(cmd, info_name=path[-1])
        names = cmd.list_commands(ctx)
        for name in names:
            sub = cmd.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                out.extend(_walk(sub, [*path, name]))
    return out


def command_paths() -> list[str]:
    return [" ".join(p) for p, _ in _walk(cli, ["sbcard"])]


def render() -> str:
    parts = [HEADER]
    for path, cmd in _walk(cli, ["sbcard"]):
        ctx = click.Context(cmd, info_name=" ".join(path), terminal_width=100,
                            max_content_width=100)
        text = cmd.get_help(ctx)
        parts.append(f"## `{' '.join(path)}`\n\n```text\n{text}\n```\n")
    return "\n".join(parts)


def main() -> None:
    assert isinstance(cli, LazyGroup) and COMMANDS
    print(render(), end="")


if __name__ == "__main__":
    main()
