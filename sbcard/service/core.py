"""The service's one object: the driver, its reader queue, the functions it offers and the
card-event hub. Web handlers (``app``) call only this; this calls only the driver."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sbcard.service.adapter import DriverAdapter
from sbcard.service.config import Limits, ServiceConfig
from sbcard.service.functions import (
    CARD_CHANGING,
    FUNCTIONS,
    BadRequest,
    Call,
    offered_by,
)
from sbcard.service.logmask import masked_args
from sbcard.service.queue import CallerGone, ReaderBusy, ReaderQueue

log = logging.getLogger("sbcard.service")

#: Service outcomes that have no national code (the national table stops at the driver).
BUSY = -90          # 读卡器忙: another operation held the reader past the queue timeout
NOT_STARTED = -91   # 请求已取消: the caller left before its turn; nothing was sent to the card
DRIVER_FAULT = -99  # 服务内部错误: the driver raised instead of returning a code

SERVICE_MESSAGES = {
    BUSY: "读卡器忙，请稍后再试 (reader busy: another operation is running)",
    NOT_STARTED: "请求已取消，未操作卡片 (request abandoned before it started)",
    DRIVER_FAULT: "服务内部错误 (internal error in the card driver; see the service log)",
}


@dataclass
class Outcome:
    """A driver result: ``code`` 0 and ``value`` (text or dict), or a code and a message."""

    code: int
    value: Any
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.code == 0


@dataclass
class CardEventHub:
    """Card inserted/removed, pushed to every subscriber (one asyncio.Queue each)."""

    present: bool | None = None               # a card in any watched reader
    by_reader: dict[str, bool] = field(default_factory=dict)
    subscribers: set[asyncio.Queue[dict[str, Any]]] = field(default_factory=set)

    def publish(self, event: dict[str, Any]) -> None:
        for queue in list(self.subscribers):
            if queue.qsize() < 100:          # a stalled subscriber loses events, not memory
                queue.put_nowait(event)


class CardService:
    def __init__(self, driver: Any, config: ServiceConfig, *,
                 watch_card: bool = True, page_pins: Any = None,
                 watched_readers: frozenset[str] | None = None,
                 ignored_readers: frozenset[str] = frozenset(),
                 reader_name: str = "default", keep_timings: bool = False) -> None:
        self.driver = driver
        self.adapter = DriverAdapter(driver, page_pins)
        self.config = config
        self.limits = Limits()
        self.offered = offered_by(driver)
        self.queue = ReaderQueue(reader_name, config.queue_timeout_s, keep_timings)
        self.events = CardEventHub()
        self.reader_name = reader_name
        self._watch_card = watch_card
        self._watched = watched_readers       # None: every reader but the ignored ones
        self._ignored = ignored_readers       # e.g. the PSAM's reader
        self._watcher: threading.Thread | None = None
        self._stopping = threading.Event()

    # -- card operations ----------------------------------------------------------------
    async def call(self, call: Call, abandoned: Callable[[], bool] = lambda: False,
                   via: str = "") -> Outcome:
        fn = getattr(self.driver, call.function)
        names = tuple(p.name for p in FUNCTIONS[call.function])
        return await self.run(fn, *call.args, label=call.function,
                              detail=masked_args(names, call.args), via=via,
                              abandoned=abandoned if call.function in CARD_CHANGING
                              else lambda: False)

    async def run(self, fn: Callable[..., tuple[int, Any]], *args: Any, label: str,
                  detail: str = "", via: str = "",
                  abandoned: Callable[[], bool] = lambda: False) -> Outcome:
        t0 = time.perf_counter()
        try:
            code, value = await self.queue.run(_guarded(fn, label), *args, abandoned=abandoned)
        except ReaderBusy:
            code, value = BUSY, SERVICE_MESSAGES[BUSY]
        except CallerGone:
            code, value = NOT_STARTED, SERVICE_MESSAGES[NOT_STARTED]
        seconds = time.perf_counter() - t0
        log.info("%s %s(%s) -> %d in %.1f ms", via or "-", label, detail, code, seconds * 1e3)
        return Outcome(code, value, seconds)

    # -- card events ----------------------------------------------------------------------
    async def start(self) -> None:
        """Follow the driver's card events in a thread of their own (they block on PC/SC)."""
        watch = getattr(self.driver, "card_events", None)
        if not self._watch_card or watch is None or self._watcher is not None:
            return
        loop = asyncio.get_running_loop()
        self._watcher = threading.Thread(target=self._follow, args=(watch, loop), daemon=True,
                                         name="sbcard-card-events")
        self._watcher.start()

    def _follow(self, watch: Callable[..., Any], loop: asyncio.AbstractEventLoop) -> None:
        while not self._stopping.is_set():
            try:
                for event in watch(poll=self.config.events_poll_s,
                                   should_stop=self._stopping.is_set):
                    loop.call_soon_threadsafe(self._on_card, str(event.reader),
                                              bool(event.present))
            except Exception as exc:  # a lost pcscd must not end the events for good
                log.warning("card events: %s", exc)
            if self._stopping.wait(1.0):
                return

    def _on_card(self, reader: str, present: bool) -> None:
        """One reader's card came or went; the service is "present" while any has one."""
        if reader in self._ignored or (self._watched is not None
                                       and reader not in self._watched):
            return
        if self.events.by_reader.get(reader) == present:
            return
        self.events.by_reader[reader] = present
        self.events.present = any(self.events.by_reader.values())
        self.events.publish(self.event("inserted" if present else "removed", reader))

    async def stop(self) -> None:
        self._stopping.set()
        loop = asyncio.get_running_loop()
        if self._watcher is not None:
            await loop.run_in_executor(None, self._watcher.join, 5.0)
            self._watcher = None
        await loop.run_in_executor(None, self.queue.close)

    def event(self, kind: str, reader: str | None = None) -> dict[str, Any]:
        return {"event": kind, "reader": reader or self.reader_name,
                "present": self.events.present,
                "at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def _guarded(fn: Callable[..., tuple[int, Any]], label: str) -> Callable[..., tuple[int, Any]]:
    """A driver call that cannot take the service down: an exception becomes a code."""

    def run(*args: Any) -> tuple[int, Any]:
        try:
            return fn(*args)
        except Exception:
            log.exception("driver %s raised", label)
            return DRIVER_FAULT, SERVICE_MESSAGES[DRIVER_FAULT]

    return run


__all__ = ["BadRequest", "CardService", "Outcome"]
