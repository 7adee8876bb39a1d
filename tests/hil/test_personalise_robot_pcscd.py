"""A card robot drives the batch: `--robot-get` asks for the next card, `--robot-done` and
`--robot-error` take cards out. The robot here is this test: the commands append a line to a
signal file, and a thread serves or removes simulated cards in "Virtual PCD 00 01"."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from sbcard.sim.vpcd import VpcdServer
from tests.hil.conftest import READER, wait_card
from tests.holders_factory import holder_rows, write_csv
from tests.test_personalise import blank_card, card_id_hex

pytestmark = pytest.mark.pcscd


class SignalRobot(threading.Thread):
    def __init__(self, signals, cards, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.signals = signals
        self.cards = list(cards)
        self.served: list = []
        self.server: VpcdServer | None = None
        self.thread: threading.Thread | None = None
        self.stop_flag = threading.Event()
        self.seen: list[str] = []

    def run(self) -> None:
        offset = 0
        while not self.stop_flag.is_set():
            text = self.signals.read_text() if self.signals.exists() else ""
            for line in text[offset:].splitlines():
                self.seen.append(line)
                if line.startswith("get") and self.cards:
                    card = self.cards.pop(0)
                    self.served.append(card)
                    self.server = VpcdServer(card, port=self.port)
                    self.thread = threading.Thread(target=self.server.serve_forever,
                                                   daemon=True)
                    self.thread.start()
                elif line.startswith(("done", "error")) and self.server is not None:
                    self.server.stop()
                    self.thread.join(5)
                    self.server = None
            offset = len(text)
            time.sleep(0.02)
        if self.server is not None:
            self.server.stop()


def test_robot_drives_the_batch(pcscd, tmp_path):
    wait_card(False)
    signals = tmp_path / "signals.txt"
    cards = [blank_card(0x6000 + i) for i in range(1, 5)]
    cards[2].command_hooks.append(                       # the third card is defective
        lambda card, cmd: (b"", 0x6581) if cmd.ins == 0xDC else None)
    robot = SignalRobot(signals, cards, pcscd.port())
    robot.start()
    py = sys.executable
    say = f"{py} -c \"import os,sys; open(sys.argv[1],'a').write(sys.argv[2] + ' ' + " \
          f"os.environ.get('SBCARD_OUTCOME','') + chr(10))\" {signals}"
    csv = write_csv(tmp_path / "h.csv", holder_rows(3))
    try:
        r = subprocess.run(
            [py, "-m", "sbcard", "-r", READER, "--keys", "test", "personalise", str(csv),
             "--no-progress", "--robot-get", f"{say} get", "--robot-done", f"{say} done",
             "--robot-error", f"{say} error"],
            capture_output=True, text=True, timeout=120)
    finally:
        robot.stop_flag.set()
        robot.join(10)
        wait_card(False)
    assert r.returncode == 0, r.stderr
    assert "done 完成 3/3" in r.stdout
    outcomes = [line for line in robot.seen if not line.startswith("get")]
    assert outcomes == ["done done", "done done", "error failed", "done done"], robot.seen
    assert [line for line in robot.seen if line.startswith("get")] == ["get "] * 4
    assert card_id_hex(cards[2]) in r.stderr              # the reject is reported
