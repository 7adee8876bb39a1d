"""``sbcard call FUNCTION ARGS…``: one national reader-interface function, as a station calls it.

For technicians checking a station: the same ``SSCardDriver`` the C library and the local
service use, configured the same way (driver.toml, then the environment), with the global
options (--sim, --reader, --keys, --psam, --hsm-command) on top.
"""

from __future__ import annotations

import inspect
import json
from typing import Any

import click

from sbcard.cli.common import echo_encoded, state


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("function", required=False)
@click.argument("args", nargs=-1)
@click.option("--list", "list_functions", is_flag=True, help="List the functions and exit.")
@click.option("--config", "config_path", metavar="FILE",
              help="Driver configuration file (default: SBCARD_DRIVER_CONFIG, "
                   "~/.config/sbcard/driver.toml, /etc/sbcard/driver.toml).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object: function, code, output.")
@click.option("--encoding", type=click.Choice(["utf-8", "gbk"]), default="utf-8",
              help="Encoding of the output (gbk: as the C library returns it).")
@click.pass_context
def call(ctx: click.Context, function: str | None, args: tuple[str, ...], list_functions: bool,
         config_path: str | None, as_json: bool, encoding: str) -> int:
    """Call a national function and print its return code, then its output (pOutInfo).

    \b
    Examples:
      sbcard --sim v3 --keys test call iReadCardBas 3
      sbcard --sim v3 call iReadCardBas_HSM_Step1 1
      sbcard call iGetReaderInfo
      sbcard call --list

    iType: 1 contact, 2 contactless, 3 auto (contact first), 4 auto (contactless first).
    The exit code follows the return code (0 → 0; −2/−4/−11 → 4; −51 → 6; −52 → 7;
    −2201/−2202/−2203 → 8; card status words → 5). See docs/national-interface.md.
    """
    from sbcard.errors import BadInputError
    from sbcard.national.codes import exit_code_for
    from sbcard.national.driver import NATIONAL_FUNCTIONS, SSCardDriver

    if list_functions or not function:
        for name in NATIONAL_FUNCTIONS:
            params = ", ".join(inspect.signature(getattr(SSCardDriver, name)).parameters)
            click.echo(f"{name}({params.replace('self, ', '').replace('self', '')})")
        return 0
    if function not in NATIONAL_FUNCTIONS:
        raise BadInputError(f"unknown function {function!r}: see `sbcard call --list`")
    driver = SSCardDriver(_config(state(ctx), config_path))
    try:
        method = getattr(driver, function)
        values = _arguments(method, function, args)
        code, text = method(*values)
    finally:
        driver.close()
    if as_json:
        echo_encoded(json.dumps({"function": function, "code": code, "pOutInfo": text},
                                ensure_ascii=False), encoding)
    else:
        echo_encoded(f"{code}\n{text}", encoding)
    return int(exit_code_for(code))


def _config(st: Any, path: str | None) -> Any:
    import os
    from dataclasses import replace

    from sbcard.national.config import load_config

    config = load_config(path, os.environ)
    changes: dict[str, Any] = {}
    if st.sim:
        changes["sim"] = st.sim
    if st.reader:
        changes["contact_reader"] = changes["contactless_reader"] = st.reader
    for kind, attr, value in (("keys", "keys", st.keys), ("psam", "psam", st.psam),
                              ("hsm", "hsm_command", st.hsm_command)):
        if value:
            changes[attr] = value
            changes["key_source"] = kind
    if st.hsm_protocol:
        changes["hsm_protocol"] = st.hsm_protocol
    return replace(config, **changes) if changes else config


def _arguments(method: Any, function: str, args: tuple[str, ...]) -> list[Any]:
    from sbcard.errors import BadInputError

    params = list(inspect.signature(method).parameters.values())
    if len(args) != len(params):
        names = " ".join(p.name for p in params) or "(none)"
        raise BadInputError(f"{function} takes {len(params)} argument(s): {names}")
    values: list[Any] = []
    for p, a in zip(params, args, strict=True):
        if p.annotation in (int, "int"):
            try:
                values.append(int(a))
            except ValueError:
                raise BadInputError(f"{function}: {p.name} must be a number, not {a!r}") from None
        else:
            values.append(a)
    return values
