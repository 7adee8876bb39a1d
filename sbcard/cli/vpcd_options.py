"""The vpcd options shared by ``sbcard sim serve`` and ``sbcard sim replay``, declared once.

Both commands serve a card into pcscd through the vsmartcard vpcd driver (sbcard/sim/vpcd.py),
so they take the same ``--port``, ``--host`` and ``--wait``. Each is a decorator of its own,
because the two commands list them at different places in their ``--help`` (the CLI reference
keeps its order). Only the two vpcd commands import this module, so no other command loads
``sbcard.sim.vpcd`` for its help.
"""

from __future__ import annotations

import click

from sbcard.sim.vpcd import DEFAULT_PORT

vpcd_port = click.option(
    "--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(1, 65535),
    help=f"vpcd port: {DEFAULT_PORT} is reader 'Virtual PCD 00 00', "
         f"{DEFAULT_PORT + 1} is '… 00 01'.")

vpcd_host = click.option(
    "--host", default="127.0.0.1", show_default=True, help="Where pcscd (vpcd) listens.")

vpcd_wait = click.option(
    "--wait", default=30.0, show_default=True, type=float, metavar="SECONDS",
    help="How long to wait for vpcd before giving up (0 = forever).")
