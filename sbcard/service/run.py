"""Building the service from the configuration and running it until a signal."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from sbcard.national.config import DriverConfig
from sbcard.national.driver import SSCardDriver
from sbcard.service.app import start_service
from sbcard.service.config import ServiceConfig
from sbcard.service.core import CardService
from sbcard.service.kiosk import PagePins

log = logging.getLogger("sbcard.service")


def sim_driver_config(persona: str, base: Any = None) -> Any:
    """The driver on the in-process simulated card and the simulated PSAM (test engineers'
    ``sbcard serve --sim PERSONA``)."""
    return replace(base or DriverConfig(), sim=persona, key_source="psam", psam="sim",
                   contact_reader=None, contactless_reader=None)


def build_service(config: ServiceConfig, driver_config: Any, *,
                  keep_timings: bool = False) -> CardService:
    """``SSCardDriver`` from the driver configuration (kiosk mode: PINs from the page)."""
    page_pins = None
    if config.kiosk_pin_from_page:
        page_pins = PagePins()
    driver = SSCardDriver(driver_config, pin_source=page_pins)
    reader = (f"sim:{driver_config.sim}" if driver_config.sim
              else driver_config.contact_reader or "default")
    return CardService(driver, config, page_pins=page_pins, reader_name=reader,
                       keep_timings=keep_timings, **watched_readers(driver_config))


def watched_readers(driver_config: Any) -> dict[str, Any]:
    """Whose cards are events: the configured card readers (all when none is named), never
    the PSAM's reader (its card stays in for good)."""
    if driver_config.sim:
        return {}
    named = {r for r in (driver_config.contact_reader, driver_config.contactless_reader) if r}
    psam = driver_config.psam if driver_config.key_source == "psam" else None
    ignored = {psam} if psam and psam != "sim" and not psam.startswith("sim:") else set()
    return {"watched_readers": frozenset(named) or None, "ignored_readers": frozenset(ignored)}


async def serve_forever(service: CardService,
                        on_ready: Callable[[dict[str, str]], None] = lambda urls: None) -> None:
    running = await start_service(service)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    on_ready(running.urls)
    try:
        await stop.wait()
    finally:
        await running.stop()
        close = getattr(service.driver, "close", None)
        if close is not None:
            close()
