"""A card bureau's day through the real pcscd: 50 holders, cards torn at random points, the
process killed once; after --resume every holder has exactly one verified card.

A "card robot" thread in this test serves blank simulated cards into "Virtual PCD 00 01" one
after another. Some cards are torn (power lost) at a random APDU: the robot puts the same
card back, as an operator would. When the journal says a card is done, the robot takes it
out and inserts the next. Once, mid-card, the `sbcard personalise` process is SIGKILLed and
started again with --resume.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from sbcard.card.filesystem import SSSE_NAME
from sbcard.sim.vpcd import VpcdServer
from sbcard.transport.base import CardTornError
from tests.hil.conftest import READER, wait_card
from tests.holders_factory import holder_rows, write_csv
from tests.test_personalise import blank_card, card_id_hex, holder_on_card

pytestmark = pytest.mark.pcscd

N = 50


def journal_status(path) -> dict[str, str]:
    if not path.exists():
        return {}
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            return dict(con.execute("SELECT card_id, status FROM holder "
                                    "WHERE card_id IS NOT NULL").fetchall())
        finally:
            con.close()
    except sqlite3.OperationalError:
        return {}


class Robot(threading.Thread):
    def __init__(self, journal, port: int, seed: int = 20261123) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.journal = journal
        self.rng = random.Random(seed)
        self.cards: list = []
        self.tears = 0
        self.current = None
        self.stop_flag = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for i in range(1, N + 1):
                if self.stop_flag.is_set():
                    return
                self.serve_until_done(blank_card(0x5000 + i))
        except BaseException as exc:  # reported by the test
            self.error = exc

    def serve_until_done(self, card) -> None:
        self.cards.append(card)
        self.current = card
        card_id = card_id_hex(card)
        tear_at = self.rng.randint(3, 40) if self.rng.random() < 0.3 else None
        count = {"n": 0}

        def tear(_card, _cmd):
            count["n"] += 1
            if tear_at is not None and count["n"] == tear_at:
                self.tears += 1
                raise CardTornError()
            return None

        card.command_hooks.append(tear)
        server = VpcdServer(card, port=self.port)      # reconnects by itself after a tear
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        deadline = time.monotonic() + 120
        while journal_status(self.journal).get(card_id) != "done":
            if self.stop_flag.is_set() or time.monotonic() > deadline:
                server.stop()
                thread.join(5)
                raise AssertionError(f"card {card_id} never finished")
            time.sleep(0.05)
        server.stop()
        thread.join(5)
        wait_card(False)


def start(csv, journal, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "sbcard", "-r", READER, "--keys", "test", "personalise",
         str(csv), "--journal", str(journal), "--no-progress", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_fifty_holders_tears_and_a_kill(pcscd, tmp_path):
    wait_card(False)
    csv = write_csv(tmp_path / "holders.csv", holder_rows(N))
    journal = tmp_path / "journal.sqlite"
    robot = Robot(journal, pcscd.port())
    robot.start()
    proc = start(csv, journal)
    try:
        # kill the process once, in the middle of a card, after a quarter of the batch
        deadline = time.monotonic() + 300
        mid_batch = False
        while (not mid_batch and time.monotonic() < deadline and robot.error is None
               and proc.poll() is None):
            st = journal_status(journal)
            mid_batch = (sum(v == "done" for v in st.values()) >= N // 4
                         and "in_progress" in st.values())
            if not mid_batch:
                time.sleep(0.01)
        assert robot.error is None, robot.error
        assert mid_batch, (f"never saw a quarter done and a card in progress (sbcard exit "
                           f"{proc.poll()}; journal {journal_status(journal)})")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        killed_mid = [c for c, s in journal_status(journal).items() if s == "in_progress"]
        proc = start(csv, journal, "--resume")
        # sbcard waits for cards as long as an operator would: end it if the robot fails
        deadline = time.monotonic() + 600
        while proc.poll() is None and robot.error is None and time.monotonic() < deadline:
            time.sleep(0.1)
        if proc.poll() is None:
            proc.kill()
        out, err = proc.communicate(timeout=30)
        assert robot.error is None, robot.error
        assert proc.returncode == 0, err
        assert f"done 完成 {N}/{N}" in out
    finally:
        robot.stop_flag.set()
        if proc.poll() is None:
            proc.kill()
        robot.join(30)
    assert robot.error is None, robot.error
    assert robot.tears >= 5, "the random tears did not happen"
    assert killed_mid, "the kill did not land mid-card"

    con = sqlite3.connect(journal)
    rows = con.execute("SELECT e.row_no, h.ssn, h.card_id, h.status FROM entry e JOIN holder h "
                       "ON h.id = e.holder_id").fetchall()
    con.close()
    assert len(rows) == N and all(r[3] == "done" for r in rows)
    card_ids = [r[2] for r in rows]
    assert len(set(card_ids)) == N                       # no card has two holders
    by_card = {r[2]: r[1] for r in rows}
    for card in robot.cards:                             # and each card holds its holder
        ssn, pin = holder_on_card(card)
        assert by_card[card_id_hex(card)] == ssn
        assert pin == "123456" and card.pin.tries == card.pin.max_tries
        assert card.apps[SSSE_NAME].blocked is False
