"""``sbcard serve``: the local card service for browser pages (读卡服务)."""

from __future__ import annotations

import click

from sbcard.cli.common import state


@click.command()
@click.option("--sim", "sim_persona", metavar="PERSONA",
              help="Serve the in-process simulated card and PSAM (a persona: demo, v3, "
                   "pinblocked, pulled, …) instead of the configured readers.")
@click.option("--config", "config_path", metavar="FILE",
              help="Configuration file: [service] here, the card side in its other tables "
                   "(default: SBCARD_DRIVER_CONFIG, ~/.config/sbcard/driver.toml, "
                   "/etc/sbcard/driver.toml).")
@click.option("--port", type=click.IntRange(0, 65535), metavar="N",
              help="Port of sbcard's own API and the counter page (default 12380).")
@click.option("--function-port", type=click.IntRange(0, 65535), metavar="N",
              help="Function-style WebSocket port (default 12342; 0 = off).")
@click.option("--decard-port", type=click.IntRange(0, 65535), metavar="N",
              help="Decard-style WebSocket port (default 50150; 0 = off).")
@click.option("--rest-port", type=click.IntRange(0, 65535), metavar="N",
              help="REST-style port, GET /readcard/entry?param=sicard (default 8321; 0 = off).")
@click.option("--allow-origin", "origins", multiple=True, metavar="ORIGIN",
              help="A page origin allowed to call the service (repeatable; adds to "
                   "allowed_origins), e.g. https://his.example.org.")
@click.option("--kiosk-pin-from-page", is_flag=True,
              help="Accept PINs typed on the page (kiosk mode; read the risk in "
                   "docs/local-service.md first). Default: PINs only from the PIN source.")
@click.option("--hsm-mode", type=click.Choice(["page", "bridge"]),
              help="HSM two-step read: by the page (Step1 → its server → Step2), or by the "
                   "service through the configured HSM bridge.")
@click.option("--verbose", "-v", is_flag=True, help="Log every call (masked) to stderr.")
@click.pass_context
def serve(ctx: click.Context, sim_persona: str | None, config_path: str | None,
          port: int | None, function_port: int | None, decard_port: int | None,
          rest_port: int | None, origins: tuple[str, ...], kiosk_pin_from_page: bool,
          hsm_mode: str | None, verbose: bool) -> None:
    """Serve the card to pages on this machine over HTTP and WebSocket (127.0.0.1 only).

    \b
    Three dialects of the vendor services pages already call, plus sbcard's own API:
      ws://127.0.0.1:12342   {"function":"iReadCardBas","iType":3}
      ws://127.0.0.1:50150   {"func":"iReadCardBas","in":["3"]}
      http://127.0.0.1:8321/readcard/entry?param=sicard
      http://127.0.0.1:12380/          the counter page; /v1/card, /v1/openapi.json
    Examples:
      sbcard serve --sim demo                 # a simulated card and PSAM, for page tests
      sbcard serve --allow-origin https://his.example.org
    Runs until Ctrl-C or SIGTERM. Guide: docs/local-service.md.
    """
    import asyncio
    import logging
    from dataclasses import replace

    from sbcard.cli.cmd_call import _config
    from sbcard.service.config import load_service_config
    from sbcard.service.run import build_service, serve_forever, sim_driver_config

    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(message)s")
    config = load_service_config(config_path)
    config = replace(
        config,
        api_port=config.api_port if port is None else port,
        function_port=config.function_port if function_port is None else function_port,
        decard_port=config.decard_port if decard_port is None else decard_port,
        rest_port=config.rest_port if rest_port is None else rest_port,
        hsm_mode=config.hsm_mode if hsm_mode is None else hsm_mode,
        allowed_origins=(*config.allowed_origins, *origins),
        kiosk_pin_from_page=config.kiosk_pin_from_page or kiosk_pin_from_page,
    )
    driver_config = _config(state(ctx), config_path)
    if sim_persona:
        driver_config = sim_driver_config(sim_persona, driver_config)
    service = build_service(config, driver_config)

    def ready(urls: dict[str, str]) -> None:
        for name, url in urls.items():
            click.echo(f"sbcard serve: {name:<8} {url}", err=True)

    asyncio.run(serve_forever(service, ready))
