"""Record and replay through the real pcscd: a dump of ``sbcard read`` served into
"Virtual PCD 00 01" gives the same output as the recording, and a dump recorded through
pcscd replays in-process."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from sbcard.sim.replay import ReplayCard
from sbcard.sim.vpcd import VpcdServer
from tests.hil.conftest import READER, wait_card

pytestmark = pytest.mark.pcscd


def sbcard(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sbcard", *args], capture_output=True,
                          text=True, timeout=60)


def replay_command() -> list[str]:
    """``sbcard sim replay`` once the command is attached to the group, else the module."""
    from sbcard.cli.cmd_sim import sim

    if "replay" in getattr(sim, "commands", {}):
        return [sys.executable, "-m", "sbcard", "sim", "replay"]
    return [sys.executable, "-m", "sbcard.cli.cmd_replay"]


@pytest.mark.parametrize("persona", ["demo", "t0quirks"])
def test_read_dump_replays_through_pcscd(pcscd, tmp_path, persona):
    dump = tmp_path / f"{persona}.dump"
    recorded = sbcard("--sim", persona, "--no-redact", "--dump", str(dump), "read", "--json")
    assert recorded.returncode == 0, recorded.stderr
    card = ReplayCard.load(dump)
    server = VpcdServer(card, port=pcscd.port())
    thread = threading.Thread(target=server.serve_forever, kwargs={"max_wait": 10},
                              daemon=True)
    thread.start()
    try:
        wait_card(True)
        replayed = sbcard("-r", READER, "read", "--json")
    finally:
        server.stop()
        thread.join(5)
    wait_card(False)
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout == recorded.stdout
    assert card.misses == [] and card.finished


def test_replay_command_strict_through_pcscd(pcscd, tmp_path):
    dump = tmp_path / "read.dump"
    recorded = sbcard("--sim", "demo", "--no-redact", "--dump", str(dump), "read")
    assert recorded.returncode == 0, recorded.stderr
    proc = subprocess.Popen([*replay_command(), str(dump), "--port", str(pcscd.port()), "--strict"],
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_card(True)
        for _ in range(2):                       # the dump replays again for a second run
            replayed = sbcard("-r", READER, "read")
            assert replayed.returncode == 0, replayed.stderr
            assert replayed.stdout == recorded.stdout
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    wait_card(False)
    assert "replaying" in err and "not the next command" not in err


def test_dump_recorded_through_pcscd_replays_in_process(serve, tmp_path):
    served = serve("v1")
    dump = tmp_path / "pcscd.dump"
    recorded = sbcard("-r", READER, "--no-redact", "--dump", str(dump), "read", "--json")
    assert recorded.returncode == 0, recorded.stderr
    served.stop()
    text = dump.read_text("utf-8")
    assert f"# reader: {READER}" in text
    assert f"# atr: {served.card.atr.hex().upper()}" in text
    replayed = sbcard("--sim", str(dump), "read", "--json")
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout == recorded.stdout
