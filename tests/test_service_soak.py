"""A bounded soak of ``sbcard serve``: many clients, random disconnects, the real driver on
the simulated card, and every APDU traced to prove that card sessions never interleave and
none is left open. ``SBCARD_SOAK_REQUESTS`` (default 5000) sets the size."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import threading
from collections import Counter
from typing import Any

import aiohttp
import pytest

from sbcard.service.run import build_service, sim_driver_config
from sbcard.testing.service import ServiceThread, service_config
from sbcard.transport.base import Transport

REQUESTS = int(os.environ.get("SBCARD_SOAK_REQUESTS", "5000"))
CLIENTS = 20


class TracingLink(Transport):
    """The simulated card's link, recording each session (connect … disconnect) and the
    session every APDU belongs to. An APDU sent while another session is open, or from a
    thread other than the session's, is an interleaving."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.lock = threading.Lock()
        self.session = 0
        self.open_sessions = 0
        self.owner: int | None = None
        self.trace: list[tuple[int, str]] = []
        self.overlaps = 0
        self.foreign = 0
        self.connects = self.disconnects = 0

    def connect(self) -> None:
        with self.lock:
            self.connects += 1
            self.open_sessions += 1
            if self.open_sessions > 1:
                self.overlaps += 1
            self.session += 1
            self.owner = threading.get_ident()
        self.inner.connect()

    def disconnect(self) -> None:
        with self.lock:
            self.disconnects += 1
            self.open_sessions -= 1
        self.inner.disconnect()

    def transmit(self, command: bytes) -> bytes:
        with self.lock:
            if threading.get_ident() != self.owner:
                self.foreign += 1
            self.trace.append((self.session, command[:4].hex().upper()))
        return self.inner.transmit(command)

    @property
    def atr(self) -> bytes:
        return self.inner.atr

    @property
    def protocol(self) -> str:
        return self.inner.protocol

    def reset(self) -> bytes:
        return self.inner.reset()

    def interleavings(self) -> int:
        """Sessions whose APDUs are not one contiguous run in the trace."""
        seen: set[int] = set()
        broken = 0
        previous = None
        for session, _ in self.trace:
            if session != previous:
                if session in seen:
                    broken += 1
                seen.add(session)
                previous = session
        return broken


def traced_service(**settings: Any) -> tuple[ServiceThread, TracingLink]:
    from sbcard.compose import SessionOptions, make_link

    service = build_service(service_config(**settings), sim_driver_config("demo"))
    link = TracingLink(make_link(SessionOptions(sim="demo")))
    service.driver._sim_link = link      # the driver's one simulated-card link, traced
    return ServiceThread.around(service).start(), link


#: (weight, dialect, message): mostly cheap card calls, some full reads, some garbage.
MIX = [
    (70, "function", {"function": "iGetCardType"}),
    (10, "decard", {"func": "iReadCardBas", "in": ["3"]}),
    (5, "function", {"function": "iReadCardBas_HSM_Step1", "iType": 3}),
    (5, "rest", None),
    (5, "function", "{not json"),
    (5, "decard", {"func": "iNoSuchThing", "in": []}),
]


async def client(session: aiohttp.ClientSession, base: str, count: int, rng: random.Random,
                 tally: Counter[str]) -> None:
    sockets: dict[str, aiohttp.ClientWebSocketResponse] = {}
    weights = [m[0] for m in MIX]
    for _ in range(count):
        _, dialect, message = rng.choices(MIX, weights)[0]
        leave = rng.random() < 0.1            # the page goes away before the answer
        if dialect == "rest":
            try:
                async with session.get(base + "/readcard/entry?param=sicard") as r:
                    if leave:
                        tally["left"] += 1
                        continue
                    tally[f"rest {(await r.json())['code']}"] += 1
            except aiohttp.ClientError:
                tally["client error"] += 1
            continue
        ws = sockets.get(dialect)
        if ws is None or ws.closed:
            ws = sockets[dialect] = await session.ws_connect(f"{base}/ws/{dialect}")
        await ws.send_str(message if isinstance(message, str) else json.dumps(message))
        if leave:
            await ws.close()
            tally["left"] += 1
            continue
        answer = json.loads(await ws.receive_str(timeout=30))
        code = answer.get("success", answer.get("result"))
        tally[f"{dialect} {code}"] += 1
    for ws in sockets.values():
        await ws.close()


def test_soak_no_crash_no_interleaving_no_leaked_session(caplog: pytest.LogCaptureFixture
                                                         ) -> None:
    s, link = traced_service(max_connections=2 * CLIENTS + 10)
    tally: Counter[str] = Counter()
    try:
        async def main() -> None:
            connector = aiohttp.TCPConnector(limit=0)
            async with aiohttp.ClientSession(connector=connector) as session:
                per = REQUESTS // CLIENTS
                await asyncio.gather(*(client(session, s.url, per, random.Random(i), tally)
                                       for i in range(CLIENTS)))
                # After the storm: one more read, which also ends a Step1 left pending.
                async with session.get(s.url + "/readcard/entry?param=sicard") as r:
                    assert (await r.json())["code"] == 200
                async with session.get(s.url + "/v1/health") as r:
                    health = await r.json()
                assert health["queue"]["running"] == 0
        with caplog.at_level(logging.ERROR):
            asyncio.run(main())
            deadline = 50
            while s.service.limits.open_websockets and deadline:
                threading.Event().wait(0.1)
                deadline -= 1
    finally:
        s.stop()
        s.service.driver.close()
    answered = sum(tally.values())
    assert answered == REQUESTS // CLIENTS * CLIENTS
    assert not [k for k in tally if k.endswith(" -99")], tally          # no driver fault
    assert tally["function 1"] > 0 and tally["decard 0"] > 0 and tally["left"] > 0, tally
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert link.overlaps == 0 and link.foreign == 0, "two card sessions at once"
    assert link.interleavings() == 0, "a session's APDUs were split by another's"
    assert link.connects == link.disconnects and link.open_sessions == 0, "a session leaked"
    assert not s.service.driver._pending                               # no card left powered
    assert s.service.limits.open_websockets == 0
    assert link.session > REQUESTS // 2 and len(link.trace) > REQUESTS // 2   # it really ran
