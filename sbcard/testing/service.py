"""``sbcard serve`` in a background thread for tests: its own event loop, free ports.

``ServiceThread(driver, config).start()`` binds the own-API port (and any dialect port set
in ``config``) on 127.0.0.1 and returns once it answers; ``urls`` then holds the base URLs
("api", and "function"/"decard"/"rest" when their ports are set); ``stop()`` ends it.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from dataclasses import replace
from typing import Any

from sbcard.service.app import start_service
from sbcard.service.config import ServiceConfig
from sbcard.service.core import CardService


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def service_config(**settings: Any) -> ServiceConfig:
    """A config for tests: free API port, dialect ports off unless given, short limits."""
    base = ServiceConfig(api_port=0, function_port=0, decard_port=0, rest_port=0,
                         queue_timeout_s=10.0, events_poll_s=0.1)
    return replace(base, **settings)


class ServiceThread:
    def __init__(self, driver: Any, config: ServiceConfig | None = None, *,
                 page_pins: Any = None, keep_timings: bool = False,
                 watch_card: bool = True) -> None:
        self.config = config or service_config()
        self.service = CardService(driver, self.config, page_pins=page_pins,
                                   keep_timings=keep_timings, watch_card=watch_card)
        self.urls: dict[str, str] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._running: Any = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @classmethod
    def around(cls, service: Any) -> ServiceThread:
        """A thread for an already built ``CardService`` (``sbcard.service.run``)."""
        self = cls.__new__(cls)
        self.config = service.config
        self.service = service
        self.urls = {}
        self._loop = self._thread = self._running = self._error = None
        self._ready = threading.Event()
        return self

    @property
    def url(self) -> str:
        return self.urls["api"]

    def start(self, timeout: float = 10.0) -> ServiceThread:
        self._thread = threading.Thread(target=self._main, daemon=True, name="sbcard-serve")
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("sbcard service did not start")
        if self._error is not None:
            raise self._error
        return self

    def _main(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        try:
            self._running = loop.run_until_complete(start_service(self.service))
            self.urls = dict(self._running.urls)
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        loop.run_forever()
        loop.run_until_complete(self._running.stop())
        loop.close()

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(15)
            self._loop = self._thread = None

    def __enter__(self) -> ServiceThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
