"""The simulated PSAM as a real card in pcscd ("Virtual PCD 00 01"), next to a user card.

The user card runs in-process; every cryptogram it is shown comes from the PSAM through the
machine's pcscd, as with a PSAM in a second reader at a counter.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from sbcard.apdu import commands as cmds
from sbcard.card.filesystem import SSSE_NAME
from sbcard.compose import SessionOptions, open_psam, open_session
from sbcard.crypto.symmetric import Algorithm
from sbcard.keys.base import CardContext
from sbcard.keys.psam import PSAM_DDF_NAMES
from sbcard.sim.psam import SimPsam, load_psam_persona
from sbcard.sim.vpcd import VpcdServer
from tests.hil.conftest import READER, wait_card
from tests.hil.test_pcscd_tools import need
from tests.test_psam import open_ef06_with_psam

pytestmark = pytest.mark.pcscd


@pytest.fixture
def served_psam(pcscd) -> Iterator[SimPsam]:
    """The default simulated PSAM in "Virtual PCD 00 01" for the length of one test."""
    psam = load_psam_persona("default").build()
    server = VpcdServer(psam, port=pcscd.port())
    thread = threading.Thread(target=server.serve_forever, kwargs={"max_wait": 10}, daemon=True)
    thread.start()
    wait_card(True)
    try:
        yield psam
    finally:
        server.stop()
        thread.join(5)
        wait_card(False)


def test_rksse_external_auth_with_psam_through_pcscd(served_psam):
    psam = open_psam(SessionOptions(reader=READER))
    try:
        assert psam.terminal_number == "519900000001"
        assert READER in psam.name
        with open_session(SessionOptions(sim="v3")) as card:
            record = open_ef06_with_psam(card, psam)
        assert record == bytes((0x08, 0x12)) + b"51990020010228001X"
        assert served_psam.apdu_count >= 7                    # it really went through pcscd
    finally:
        psam.close()


def test_des_card_pin_reload_with_psam_through_pcscd(served_psam):
    psam = open_psam(SessionOptions(reader=READER))
    try:
        with open_session(SessionOptions(sim="demo")) as card:
            card.check(cmds.select_by_name(SSSE_NAME))
            ctx = CardContext(card.atr, "519900", Algorithm.DES)
            x = secrets.token_bytes(8)
            challenge = card.check(cmds.get_challenge(8)).data
            card.check(cmds.external_authenticate(0x06, psam.auth_data(ctx, 0x06, challenge, x),
                                                  x))
            challenge = card.check(cmds.get_challenge(8)).data
            enc = psam.encrypt(ctx, 0x02, challenge, bytes.fromhex("246810"))
            header = bytes.fromhex("84240001") + bytes((len(enc) + 4,))
            mac = psam.mac(ctx, 0x02, challenge, header + enc)
            card.check(cmds.CommandApdu(0x84, 0x24, 0x00, 0x01, enc + mac))
            card.check(cmds.verify(bytes.fromhex("246810")))
    finally:
        psam.close()


def _serve_psam_subprocess(port: int, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sbcard", "sim", "serve", "--psam",
                             "--port", str(port), *extra], stderr=subprocess.PIPE, text=True)


def _stop(proc: subprocess.Popen) -> str:
    proc.terminate()
    proc.wait(10)
    wait_card(False)
    return proc.stderr.read() if proc.stderr else ""


def test_sim_serve_psam_answers_scriptor(pcscd):
    proc = _serve_psam_subprocess(pcscd.port())
    try:
        wait_card(True)
        ddf = PSAM_DDF_NAMES[Algorithm.DES].hex().upper()
        script = f"00A404000F{ddf}00\n00B0960006\n00A4040006D1560000059000\n"
        out = subprocess.run([need("scriptor"), "-r", READER], input=script,
                             capture_output=True, text=True, timeout=20).stdout
    finally:
        err = _stop(proc)
    assert "< 51 99 00 00 00 01 90 00 : Normal processing." in out
    assert out.count("90 00 : Normal processing.") == 3
    assert "serving PSAM persona 'default'" in err


def test_sim_serve_psam_answers_opensc_tool(pcscd):
    proc = _serve_psam_subprocess(pcscd.port(), "--psam-persona", "city")
    try:
        wait_card(True)
        from sbcard.transport.pcsc import list_readers

        index = [r.name for r in list_readers()].index(READER)
        sm4 = PSAM_DDF_NAMES[Algorithm.SM4].hex().upper()
        out = subprocess.run([need("opensc-tool"), "-r", str(index), "-s", f"00A404000F{sm4}00",
                              "-s", "00B0960006"], capture_output=True, text=True, timeout=20)
    finally:
        err = _stop(proc)
    text = out.stdout + out.stderr
    assert text.count("SW1=0x90, SW2=0x00") == 2, text
    assert "51 99 00 00 00 02" in text                          # the city PSAM's terminal
    assert "serving PSAM persona 'city'" in err


def _sbcard(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sbcard", *args], capture_output=True,
                          text=True, timeout=60)


def test_the_psams_reader_is_never_read_as_the_card(served_psam):
    # The PSAM is the only card in any reader: without the reservation the default reader
    # choice ("the first reader holding a card") would read the PSAM as the holder's card.
    psam_atr = served_psam.atr.hex().upper()
    r = _sbcard("--psam", READER, "--wait", "1", "read", "--json")
    assert psam_atr not in r.stdout + r.stderr
    if r.returncode != 0:                 # nothing in the other reader: it waited there
        assert r.returncode == 4
        assert "no card in the reader (waited 1 s)" in r.stderr
        assert READER not in r.stderr
    r = _sbcard("--psam", READER, "-r", READER, "verify", "pin", "--pin-stdin")
    assert r.returncode == 4
    assert f"{READER} holds the PSAM (--psam): give the card's own reader" in r.stderr


def test_personalise_refuses_two_workers_on_one_reader(pcscd, tmp_path):
    from tests.holders_factory import holder_rows, write_csv

    csv = tmp_path / "holders.csv"
    write_csv(csv, holder_rows(2))
    r = _sbcard("--keys", "test", "personalise", str(csv), "--journal",
                str(tmp_path / "j.sqlite"), "--readers", "1", "--readers", READER)
    assert r.returncode == 3
    assert f"--readers '1' and '{READER}' are the same reader ({READER})" in r.stderr
