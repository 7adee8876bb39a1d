"""One card operation at a time per reader, in a worker thread, with a queue timeout.

The driver is synchronous (PC/SC calls block), so each reader gets one worker thread and
an asyncio lock in front of it. A caller waits for the lock at most ``queue_timeout_s``.
A caller that goes away while it waits never starts its operation (``abandoned`` is
checked once the reader is free); once started, an operation runs to its end in its thread
even if the caller is cancelled, and only then is the reader handed on. So a PIN change
either completes or never starts, and two operations never interleave their APDUs.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


class ReaderBusy(Exception):
    """Another operation held the reader for longer than the queue timeout."""


class CallerGone(Exception):
    """The caller left before its turn came: the operation was never started."""


@dataclass
class QueueStats:
    started: int = 0
    finished: int = 0
    busy: int = 0
    abandoned: int = 0
    running: int = 0
    waiting: int = 0                # callers waiting for the reader now
    card_seconds: list[float] = field(default_factory=list)  # kept only when asked (bench)


class ReaderQueue:
    """Serialises the operations of one reader; ``run`` is called from the event loop."""

    def __init__(self, name: str, queue_timeout_s: float, keep_timings: bool = False) -> None:
        self.name = name
        self.queue_timeout_s = queue_timeout_s
        self.stats = QueueStats()
        self._keep = keep_timings
        self._lock = asyncio.Lock()
        self._worker = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"sbcard-reader-{name}")

    async def run(self, fn: Callable[..., T], *args: Any,
                  abandoned: Callable[[], bool] = lambda: False) -> T:
        self.stats.waiting += 1
        try:
            await asyncio.wait_for(self._lock.acquire(), self.queue_timeout_s)
        except TimeoutError:
            self.stats.busy += 1
            raise ReaderBusy(self.name) from None
        finally:
            self.stats.waiting -= 1
        if abandoned():
            self._lock.release()
            self.stats.abandoned += 1
            raise CallerGone(self.name)
        self.stats.started += 1
        self.stats.running += 1
        loop = asyncio.get_running_loop()
        t0 = time.perf_counter()
        future = loop.run_in_executor(self._worker, fn, *args)

        def done(_: object) -> None:
            self.stats.running -= 1
            self.stats.finished += 1
            if self._keep:
                self.stats.card_seconds.append(time.perf_counter() - t0)
            self._lock.release()

        # The lock is released when the thread is done, never when the caller is cancelled.
        future.add_done_callback(done)
        return await asyncio.shield(future)

    @property
    def idle(self) -> bool:
        return not self._lock.locked() and self.stats.running == 0

    def close(self) -> None:
        self._worker.shutdown(wait=True, cancel_futures=True)
