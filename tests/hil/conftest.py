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
from collections.abc import Iterator
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


def wait_card(present: bool, timeout: float = 10.0) -> None:
    from sbcard.transport.pcsc import list_readers

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = {r.name: r.card_present for r in list_readers()}
        if state.get(READER) == present:
            return
        time.sleep(0.05)
    raise AssertionError(f"{READER}: card {'never appeared' if present else 'never left'}")


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
