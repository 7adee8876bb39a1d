"""``sbcard sim``: the simulated social security card (模拟卡)."""

from __future__ import annotations

import click

from sbcard.cli.common import echo_json
from sbcard.cli.vpcd_options import vpcd_host, vpcd_port, vpcd_wait


@click.group()
def sim() -> None:
    """The simulated social security card (模拟卡).

    \b
    The same simulator serves two ways:
      sbcard --sim PERSONA <command>   in-process, no pcscd needed (fast tests, demos)
      sbcard sim serve                 into pcscd through the vsmartcard vpcd driver, so
                                       pcsc_scan, scriptor, opensc-tool and sbcard itself
                                       see it as a card in reader "Virtual PCD 00 00"
    """


@sim.command()
@click.option("--persona", "-p", default="demo", show_default=True, metavar="NAME|FILE",
              help="Built-in persona name or a .toml/.json persona file.")
@vpcd_port
@vpcd_host
@click.option("--t0", is_flag=True,
              help="Answer like a T=0 card: 61xx to commands that return data.")
@vpcd_wait
@click.option("--quiet", "-q", is_flag=True, help="Do not print power/reset events.")
@click.option("--psam", is_flag=True,
              help="Serve the simulated PSAM (社会保障PSAM卡) instead of a user card; "
                   "use --port 35964 to put it beside a card in the first slot.")
@click.option("--psam-persona", default=None, metavar="NAME|FILE",
              help="PSAM persona: built-in name (default, city, t0quirks) or a .toml file; "
                   "implies --psam.")
@click.option("--tear-at", type=click.IntRange(1), metavar="N",
              help="Fault: the N-th command after power-on tears the card (power lost).")
@click.option("--tear-on", metavar="HEX",
              help="Fault: the first command starting with HEX (e.g. 00DC) tears the card.")
@click.option("--fail", "fail", multiple=True, metavar="HEX=SW",
              help="Fault: commands starting with HEX answer SW (e.g. 00B2=6A83); repeatable.")
@click.option("--delay-ms", type=click.FloatRange(0), metavar="MS",
              help="Fault: answer every command MS milliseconds late.")
def serve(persona: str, port: int, host: str, t0: bool, wait: float, quiet: bool,
          psam: bool, psam_persona: str | None, tear_at: int | None, tear_on: str | None,
          fail: tuple[str, ...], delay_ms: float | None) -> None:
    """Serve a simulated card into pcscd (needs pcscd with vsmartcard-vpcd).

    \b
    Example (Debian: apt-get install pcscd vsmartcard-vpcd pcsc-tools):
      sbcard sim serve &                       # demo card in 'Virtual PCD 00 00'
      pcsc_scan -r                             # the card is listed
      echo 00A404000F7378312E73682EC9E7BBE1B1A3D5CF | scriptor -r "Virtual PCD 00 00"
      sbcard --reader "Virtual PCD 00 00" atr
      sbcard sim serve -p blank --tear-on 00DC   # a card that loses power while writing

    Runs until interrupted (Ctrl-C); reconnects if pcscd restarts (and after a tear, as if
    the card were put back). Fault options add to the persona's [faults] section.
    """
    from dataclasses import replace

    from sbcard.card.profiles.table import Table
    from sbcard.sim.extras import FaultsPersona
    from sbcard.sim.persona import load_persona
    from sbcard.sim.vpcd import VpcdServer
    from sbcard.transport.base import VirtualCard

    card: VirtualCard
    if psam or psam_persona is not None:
        from sbcard.sim.psam import load_psam_persona

        psam_loaded = load_psam_persona(psam_persona or "default")
        if t0:
            psam_loaded.behaviour = replace(psam_loaded.behaviour, t0_get_response=True)
        card, kind = psam_loaded.build(), "PSAM persona"
        name, atr = psam_loaded.name, psam_loaded.atr
    else:
        loaded = load_persona(persona)
        if t0:
            loaded.behaviour = replace(loaded.behaviour, t0_get_response=True)
        options: dict[str, object] = {key: value for key, value in
                                      (("tear_at", tear_at), ("tear_on", tear_on),
                                       ("delay_ms", delay_ms)) if value}
        answers = []
        for item in fail:
            match, sep, sw = item.partition("=")
            if not sep or len(sw) != 4:
                raise click.BadParameter(f"{item!r} is not HEX=SW (e.g. 00B2=6A83)",
                                         param_hint="--fail")
            answers.append({"match": match, "sw": sw})
        if answers:
            options["answer"] = answers
        more = FaultsPersona.from_table(Table(options, "sbcard sim serve", "faults"))
        loaded.faults = (loaded.faults or FaultsPersona()).adding(more)
        card, kind = loaded.build_card(), "persona"
        name, atr = loaded.name, loaded.atr

    def event(what: str) -> None:
        if not quiet:
            click.echo(f"sim[{name}] {what}", err=True)

    server = VpcdServer(card, host=host, port=port, on_event=event)
    click.echo(f"serving {kind} {name!r} to vpcd at {host}:{port} "
               f"(ATR {atr.hex().upper()})", err=True)
    try:
        server.serve_forever(max_wait=wait or None)   # TransportError if vpcd is not there
    except KeyboardInterrupt:
        server.stop()


@sim.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def personas(as_json: bool) -> None:
    """List the built-in personas (all synthetic people and numbers)."""
    from sbcard.sim.persona import builtin_personas, load_persona

    rows = []
    for name in builtin_personas():
        p = load_persona(name)
        rows.append({"name": name, "profile": p.profile.name, "algorithm": p.algorithm,
                     "description": p.description})
    if as_json:
        echo_json(rows)
        return
    for r in rows:
        click.echo(f"{r['name']:<10} {r['profile']:<11} {r['algorithm']:<5} {r['description']}")


def _attach_replay() -> None:
    from sbcard.cli.cmd_replay import replay

    sim.add_command(replay)


_attach_replay()
