"""Hardware-in-the-loop fixtures: the simulated card served into the machine's real pcscd.

These tests need pcscd running with the vsmartcard vpcd driver (``make test`` and CI start
it). Without it they skip, unless ``SBCARD_REQUIRE_PCSCD=1`` (set by CI) turns the skip into
a failure, so CI can never go green by skipping the real path.

The card is served on vpcd's second slot (port 35964, reader "Virtual PCD 00 01") so a
developer's own ``sbcard sim serve`` on the first slot does not disturb the tests. Each test
holds that slot (``slot_lock``) while it runs, so a second test run on the machine, or a
helper's, waits its turn instead of swapping cards under this one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from sbcard.sim.card_os import SimCard
from sbcard.sim.persona import load_persona
from sbcard.sim.vpcd import VpcdServer
from sbcard.testing.pcscd import CARD_SLOT, PcscdService, reader_name, slot_lock

READER = reader_name(CARD_SLOT)   # the same name in the machine's pcscd and a private one


@pytest.fixture(scope="session")
def pcscd(pcscd_service: PcscdService) -> PcscdService:
    """The plugin's pcscd (skips, or fails under SBCARD_REQUIRE_PCSCD=1, without one).

    The machine's pcscd normally; a private one per pytest-xdist worker, whose vpcd port
    differs, hence ``pcscd.port()`` rather than a constant.
    """
    if not pcscd_service.in_process:
        pytest.fail(f"this test process cannot reach {pcscd_service.note}")
    return pcscd_service


@pytest.fixture(autouse=True)
def _own_the_slot(pcscd: PcscdService) -> Iterator[None]:
    """This test alone serves into READER (other processes wait; see module doc)."""
    with slot_lock(pcscd.port(), on_wait=lambda message: print(message, flush=True)):
        yield


def wait_card(present: bool, timeout: float = 30.0) -> None:
    from sbcard.transport.pcsc import list_readers

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = {r.name: r.card_present for r in list_readers()}
        if state.get(READER) == present:
            return
        time.sleep(0.05)
    raise AssertionError(f"{READER}: card {'never appeared' if present else 'never left'}")


class Lines:
    """A subprocess's output, read line by line in a thread, so a test can wait for the line
    that says the program reached a point (its ready line, an event) instead of sleeping."""

    def __init__(self, stream) -> None:
        self.lines: list[str] = []
        self.closed = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream) -> None:
        for line in stream:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def wait_for(self, match: Callable[[str], bool], what: str, timeout: float = 30.0) -> str:
        """The first line that ``match``es; AssertionError naming ``what`` after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = next((line for line in self.lines if match(line)), None)
                if found is not None:
                    return found
                left = deadline - time.monotonic()
                if self.closed or left <= 0:
                    why = "the stream closed" if self.closed else f"{timeout:g} s passed"
                    raise AssertionError(f"never saw {what}: {why}; lines so far: "
                                         f"{self.lines[-10:]}")
                self._cond.wait(left)

    def text(self, timeout: float = 30.0) -> str:
        """Everything, once the stream has closed (the process ended)."""
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"the stream stayed open for {timeout:g} s"
        return "\n".join(self.lines) + "\n"


@dataclass
class Served:
    card: SimCard
    server: VpcdServer
    reader: str = READER

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture
def serve(pcscd) -> Iterator:
    """``serve("demo")`` puts that persona's card into "Virtual PCD 00 01"."""
    started: list[tuple[VpcdServer, threading.Thread]] = []

    def _serve(persona: str = "demo", **behaviour) -> Served:
        p = load_persona(persona)
        for k, v in behaviour.items():
            setattr(p.behaviour, k, v)
        card = p.build_card()
        server = VpcdServer(card, port=pcscd.port())
        thread = threading.Thread(target=server.serve_forever, kwargs={"max_wait": 10},
                                  daemon=True)
        thread.start()
        started.append((server, thread))
        wait_card(True)
        return Served(card, server)

    yield _serve
    for server, thread in started:
        server.stop()
        thread.join(5)
    wait_card(False)
