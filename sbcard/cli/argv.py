"""The command line as people type it, rewritten into the shape click parses.

click only accepts a group's options before the subcommand. Technicians type them where
they think of them (``sbcard read --sim v3``, ``sbcard verify pin --trace``), so options of
the top-level group found after the subcommand are moved in front of it — unless the
subcommand has an option of the same name itself (``sim serve --psam`` stays its own).
Also here: ``--sim`` standing alone means ``--sim demo``, ``-vv`` counts, and the list of
options that are never proposed as a "did you mean" (they can block or expose a card).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import click

#: Options a suggestion must never propose: each one risks a card or a secret.
DANGEROUS_OPTIONS = frozenset({"--force", "--allow-trivial", "--no-redact", "--resume",
                               "--release", "--raw"})

DEFAULT_PERSONA = "demo"


@dataclass(frozen=True)
class _OptionShape:
    takes_value: bool
    optional_value: bool = False        # --sim [PERSONA]


def option_shapes(command: click.Command) -> dict[str, _OptionShape]:
    """Every spelling of the command's options → whether it takes a value."""
    shapes: dict[str, _OptionShape] = {}
    for param in command.params:
        if not isinstance(param, click.Option):
            continue
        takes = not (param.is_flag or param.count)
        for name in (*param.opts, *param.secondary_opts):
            shapes[name] = _OptionShape(takes, optional_value=name == "--sim")
    return shapes


def _split_long(token: str) -> tuple[str, str | None]:
    if token.startswith("--") and "=" in token:
        name, _, value = token.partition("=")
        return name, value
    return token, None


def _is_persona(token: str, personas: Sequence[str]) -> bool:
    return token in personas or (Path(token).suffix in (".toml", ".json")
                                 and Path(token).is_file())


def normalise_sim(args: list[str], commands: Mapping[str, str],
                  personas: Sequence[str] | None = None) -> list[str]:
    """``--sim`` alone (last, or before a command or option) means ``--sim demo``."""
    out = list(args)
    for i, arg in enumerate(out):
        if arg == "--":
            break
        if arg != "--sim":
            continue
        nxt = out[i + 1] if i + 1 < len(out) else None
        if nxt is None or nxt in commands or nxt.startswith("-"):
            out.insert(i + 1, DEFAULT_PERSONA)
        break
    return out


def hoist_global_options(group: click.Group, args: list[str],
                         personas: Sequence[str] = ()) -> list[str]:
    """Move the group's options typed after the subcommand in front of it.

    Walks the command path (``verify pin``), then the leaf command's own tokens: an option
    the leaf knows stays (with its value); an option only the group knows moves. ``--``
    ends the walk. Nothing is guessed about unknown options: click reports them.
    """
    ctx = click.Context(group, info_name="sbcard")
    global_shapes = option_shapes(group)
    head: list[str] = []
    i = 0
    # 1. the group's own options, before the command
    while i < len(args):
        name, inline = _split_long(args[i])
        shape = global_shapes.get(name)
        if args[i] == "--" or shape is None:
            break
        head.append(args[i])
        if shape.takes_value and inline is None and i + 1 < len(args):
            nxt = args[i + 1]
            # ``--sim verify pin``: --sim alone, the command follows (normalise_sim adds demo)
            if not (shape.optional_value and (nxt.startswith("-")
                                              or group.get_command(ctx, nxt) is not None)):
                head.append(nxt)
                i += 1
        i += 1
    # 2. the command path
    path: list[str] = []
    command: click.Command = group
    while i < len(args) and isinstance(command, click.Group):
        token = args[i]
        if token.startswith("-"):
            break
        sub = command.get_command(ctx, token)
        if sub is None:
            break
        path.append(token)
        command = sub
        i += 1
    if command is group:
        return args
    own = option_shapes(command)
    takes_arguments = any(isinstance(p, click.Argument) for p in command.params)
    moved: list[str] = []
    rest: list[str] = []
    while i < len(args):
        token = args[i]
        if token == "--":
            rest.extend(args[i:])
            break
        name, inline = _split_long(token)
        if name in own or name not in global_shapes:
            rest.append(token)
            if name in own and own[name].takes_value and inline is None and i + 1 < len(args):
                rest.append(args[i + 1])
                i += 1
            i += 1
            continue
        shape = global_shapes[name]
        moved.append(token)
        if shape.takes_value and inline is None:
            following = args[i + 1] if i + 1 < len(args) else None
            if shape.optional_value:
                # ``read --sim`` and ``apdu --sim 00A4…``: the next word is the persona only
                # when it cannot be the command's own argument.
                if following is not None and not following.startswith("-") and (
                        not takes_arguments or _is_persona(following, personas)):
                    moved.append(following)
                    i += 1
                else:
                    moved.append(DEFAULT_PERSONA)
            elif following is not None:
                moved.append(following)
                i += 1
        i += 1
    return head + moved + path + rest


def safe_suggestions(option: str, possibilities: Sequence[str] | None,
                     group: click.Group) -> list[str]:
    """click's "did you mean" candidates without the options that can hurt a card.

    The group's options count too (they may be typed after the subcommand): ``--trac``
    proposes ``--trace``, never ``--force``.
    """
    names = [n for n in option_shapes(group) if n.startswith("--")]
    near = difflib.get_close_matches(option, names, n=3, cutoff=0.7)
    candidates = list(dict.fromkeys([*(possibilities or ()), *near]))
    return [p for p in candidates if p not in DANGEROUS_OPTIONS and p != option]


def close_commands(name: str, commands: Sequence[str]) -> list[str]:
    return difflib.get_close_matches(name, list(commands), n=3, cutoff=0.6)


def persona_names() -> list[str]:
    """The built-in personas' names, from the folder listing alone: importing the simulator
    would slow every command's start (``sbcard.sim.persona.builtin_personas`` is the same
    list, for code that loads them anyway). A plain path, not ``importlib.resources``: that
    would import the ``sbcard.sim`` package, and zipfile/tempfile with it."""
    folder = Path(__file__).resolve().parents[1] / "sim" / "personas"
    return sorted(p.name.rsplit(".", 1)[0] for p in folder.iterdir()
                  if p.name.endswith((".toml", ".json")))


def check_sim_value(args: list[str], personas: Sequence[str],
                    commands: Mapping[str, str]) -> None:
    """``sbcard --sim red``: a persona that does not exist is named, with the personas.

    Checked before the command runs, so a typo of a command taken as the persona
    (``red`` for ``read``) is said as such, not as "Missing command".
    """
    from sbcard.errors import BadInputError

    for i, arg in enumerate(args):
        if arg == "--":
            return
        name, inline = _split_long(arg)
        if name != "--sim" or (inline is None and i + 1 == len(args)):
            continue
        value = inline if inline is not None else args[i + 1]
        if value in personas or Path(value).is_file():
            return
        near = close_commands(value, list(commands))
        hint = (f"; did you mean the command {near[0]!r} (`sbcard --sim {near[0]}`)?"
                if near else "")
        raise BadInputError(f"--sim: no persona {value!r}: built-in personas are "
                            f"{', '.join(personas)}, or give a persona (.toml/.json) or dump "
                            f"file{hint}")
