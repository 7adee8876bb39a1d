"""Progress of a batch: a bar with a real ETA on a terminal, one plain line per N cards else.

The ETA counts only the cards finished in this run (a resumed batch's earlier cards took no
time now), over the wall time since the first card of this run was asked for, so several
readers working in parallel are accounted for as they are.
"""

from __future__ import annotations

import threading
import time
from typing import TextIO

import click


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds + 0.5))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60:02d}:{rest % 60:02d}"


class BatchProgress:
    def __init__(self, total: int, done: int, stream: TextIO, *, every: int = 10,
                 label: str = "personalising 制卡", tty: bool | None = None) -> None:
        self.total = total
        self.done = done
        self.done_before = done
        self.stream = stream
        self.every = max(1, every)
        self.label = label
        self.tty = stream.isatty() if tty is None else tty
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._last_line = done

    def eta(self, now: float | None = None) -> float | None:
        """Seconds left at this run's pace; None before the first card of the run."""
        made = self.done - self.done_before
        if made <= 0:
            return None
        elapsed = (time.monotonic() if now is None else now) - self.started
        return elapsed / made * (self.total - self.done)

    def text(self, now: float | None = None) -> str:
        made = self.done - self.done_before
        eta = self.eta(now)
        elapsed = (time.monotonic() if now is None else now) - self.started
        pace = f", {elapsed / made:.1f} s/card" if made else ""
        left = f", ETA 剩余 {_clock(eta)}" if eta is not None and self.done < self.total else ""
        return f"{self.label}: {self.done}/{self.total}{pace}{left}"

    def advance(self, n: int = 1) -> None:
        with self._lock:
            self.done += n
            if self.tty:
                width = 24
                filled = int(width * self.done / self.total) if self.total else width
                click.echo(f"\r[{'#' * filled}{'-' * (width - filled)}] {self.text()}  ",
                           file=self.stream, nl=False)
            elif self.done - self._last_line >= self.every or self.done == self.total:
                click.echo(self.text(), file=self.stream)
                self._last_line = self.done

    def start(self) -> None:
        if self.tty:
            self.advance(0)

    def finish(self) -> None:
        if self.tty:
            click.echo("", file=self.stream)
