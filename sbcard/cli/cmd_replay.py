"""``sbcard sim replay``: serve a session dump into pcscd as a card (回放).

The lead attaches ``replay`` to the ``sbcard sim`` group; ``python -m sbcard.cli.cmd_replay``
runs it on its own.
"""

from __future__ import annotations

from pathlib import Path

import click

from sbcard.cli.vpcd_options import vpcd_host, vpcd_port, vpcd_wait


@click.command()
@click.argument("dump_file", metavar="FILE",
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@vpcd_port
@vpcd_host
@click.option("--strict", is_flag=True,
              help="Every command must be the next one of the dump (masked bytes aside); "
                   "the first that is not ends the replay with exit code 9.")
@click.option("--once", is_flag=True,
              help="Stop (exit 0) once the last exchange of the dump has been answered.")
@click.option("--unknown-sw", default="6F00", show_default=True, metavar="SW",
              help="Status word for a command the dump does not hold.")
@vpcd_wait
@click.option("--quiet", "-q", is_flag=True,
              help="Do not print power/reset events and loose matches (misses still show).")
def replay(dump_file: Path, port: int, host: str, strict: bool, once: bool, unknown_sw: str,
           wait: float, quiet: bool) -> int:
    """Serve a session dump (sbcard --dump FILE …) into pcscd as a card.

    \b
    The card answers with the dump's ATR, and each command with the recorded response of
    the next matching recorded command. Masked commands (VERIFY, key loads) match on
    their visible bytes and length. A command the dump does not hold gets 6F00 and a line
    on stderr; with --strict it ends the replay (exit 9).
    Example:
      sbcard --sim demo --dump read.dump read           # record
      sbcard sim replay read.dump --port 35964 &        # replay into 'Virtual PCD 00 01'
      sbcard -r "Virtual PCD 00 01" read                # same output as when recorded
    """
    import logging
    import threading

    from sbcard.errors import BadInputError
    from sbcard.sim.replay import ReplayCard, ReplayEvent, ReplayMismatchError
    from sbcard.sim.vpcd import VpcdServer

    try:
        sw = int(unknown_sw, 16)
        if len(unknown_sw) != 4:
            raise ValueError
    except ValueError:
        raise click.BadParameter(f"{unknown_sw!r} is not a status word like 6F00",
                                 param_hint="--unknown-sw") from None
    logging.getLogger("sbcard.sim.replay").addHandler(logging.NullHandler())
    failures: list[ReplayMismatchError] = []
    server: VpcdServer | None = None

    def event(what: str) -> None:
        if not quiet:
            click.echo(f"replay[{dump_file.name}] {what}", err=True)

    def on_replay(ev: ReplayEvent) -> None:
        if ev.how in ("unknown", "mismatch"):
            click.echo(f"replay[{dump_file.name}] {ev.message}", err=True)
        else:
            event(ev.message)

    def stop_soon() -> None:
        # The answer to the current command is sent after ``process`` returns: stop a moment
        # later, so the client gets it before the card leaves the reader.
        running = server
        if running is None:                    # not serving yet: nothing to stop
            return
        timer = threading.Timer(0.2, running.stop)
        timer.daemon = True
        timer.start()

    def on_mismatch(error: ReplayMismatchError) -> None:
        failures.append(error)
        stop_soon()

    card = ReplayCard.load(dump_file, strict=strict, unknown_sw=sw, on_event=on_replay,
                           on_mismatch=on_mismatch, on_finished=stop_soon if once else None)
    if not card.exchanges:
        raise BadInputError(f"{dump_file}: the dump holds no exchanges to replay")
    server = VpcdServer(card, host=host, port=port, on_event=event)
    click.echo(f"replaying {dump_file} ({len(card.exchanges)} exchanges, recorded from "
               f"{card.dump.reader or 'unknown reader'}) to vpcd at {host}:{port} "
               f"(ATR {card.atr.hex().upper()})", err=True)
    try:
        server.serve_forever(max_wait=wait or None)   # TransportError if vpcd is not there
    except KeyboardInterrupt:
        server.stop()
    if failures:
        raise failures[0]
    click.echo(f"replay[{dump_file.name}] done: {card.answered} answered from the dump, "
               f"{len(card.misses)} not in it", err=True)
    return 0


def _main() -> None:
    """``python -m sbcard.cli.cmd_replay FILE …`` with sbcard's one-line errors and exit codes."""
    from sbcard.cli.exits import run_command

    run_command(replay, None, "sbcard sim replay")


if __name__ == "__main__":
    _main()
