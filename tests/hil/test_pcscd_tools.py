"""The simulated card is a real card to every PC/SC program: pcsc_scan, scriptor, opensc-tool,
pyscard and the sbcard command itself, all through the machine's pcscd."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from tests.hil.conftest import READER, Lines, wait_card

pytestmark = pytest.mark.pcscd

SELECT_SSSE = "00A404000F7378312E73682EC9E7BBE1B1A3D5CF"


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        if os.environ.get("SBCARD_REQUIRE_PCSCD") == "1":
            pytest.fail(f"{tool} is not installed")
        pytest.skip(f"{tool} is not installed")
    return path


def sbcard(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sbcard", *args], input=stdin,
                          capture_output=True, text=True, timeout=60)


def test_pcsc_scan_lists_the_card(serve):
    served = serve("demo")
    out = subprocess.run([need("pcsc_scan"), "-c"], capture_output=True, text=True,
                         timeout=20).stdout
    atr = " ".join(f"{b:02X}" for b in served.card.atr)
    assert READER in out and atr in out


def test_scriptor_selects_ssse_and_reads(serve):
    serve("demo")
    script = f"{SELECT_SSSE}\n00A4020002EF05\n00B2010540\n"
    out = subprocess.run([need("scriptor"), "-r", READER], input=script, capture_output=True,
                         text=True, timeout=20).stdout
    assert "< 6F 1C 84 0F 73 78 31 2E 73 68 2E C9 E7 BB E1 B1" in out
    assert out.count("90 00 : Normal processing.") == 3
    assert "41 30 30 30 30 30 30 31 31" in out            # card number A00000011


def test_scriptor_le_zero_gets_6cxx_and_the_exact_le_reads(serve):
    # A reader program that sends Le=00 to READ RECORD gets 6Cxx with the record length
    # (part 5 §6.10.4) on every persona; scriptor does not retry, so the script does.
    serve("demo")
    script = f"{SELECT_SSSE}\n00B2072C00\n00B2072C0B\n"
    out = subprocess.run([need("scriptor"), "-r", READER], input=script, capture_output=True,
                         text=True, timeout=20).stdout
    assert "< 6C 0B" in out
    assert "41 30 30 30 30 30 30 31 31 90 00" in out       # card number A00000011, then 9000


def test_opensc_tool_sends_apdu(serve):
    serve("v3")
    from sbcard.transport.pcsc import list_readers

    index = [r.name for r in list_readers()].index(READER)
    out = subprocess.run([need("opensc-tool"), "-r", str(index), "-s", SELECT_SSSE + "00"],
                         capture_output=True, text=True, timeout=20)
    text = out.stdout + out.stderr
    assert "SW1=0x90, SW2=0x00" in text
    assert "9F 0C 03 86 01 03" in text                     # SM4 algorithm id in the FCI


def test_sbcard_atr_and_apdu_through_pcscd(serve):
    serve("v3")
    r = sbcard("-r", READER, "atr", "--json")
    assert r.returncode == 0, r.stderr
    assert '"serial": "C0666779"' in r.stdout
    r = sbcard("-r", READER, "--trace", "apdu", SELECT_SSSE + "00", "00B2072C00")
    assert r.returncode == 0, r.stderr
    assert "<< 0709" + b"C0000018X".hex().upper() + " 9000" in r.stdout
    assert "<< 6C0B" in r.stderr and ">> 00B2072C0B" in r.stderr   # Le=00 → 6Cxx → retried


def test_t0_card_through_pcscd(serve):
    serve("t0quirks")
    raw = sbcard("-r", READER, "apdu", "--raw", SELECT_SSSE + "00")
    assert "<< 611E" in raw.stdout
    full = sbcard("-r", READER, "--trace", "apdu", SELECT_SSSE + "00", "00B2072C00")
    assert full.returncode == 0, full.stderr
    assert ">> 00C000001E" in full.stderr                 # the GET RESPONSE really crossed
    assert "<< 6F1C840F" in full.stdout
    assert ">> 00B2072C0B" in full.stderr                 # 6Cxx answered with the right Le


def test_card_removed_mid_command(serve):
    from sbcard.errors import CardRemovedError
    from sbcard.transport.base import CardTornError
    from sbcard.transport.pcsc import PcscTransport

    served = serve("demo")

    def tear(card, cmd):
        if cmd.ins == 0xB2:
            raise CardTornError()
        return None

    served.card.command_hooks.append(tear)
    t = PcscTransport(READER)
    t.connect()
    try:
        assert t.transmit(bytes.fromhex(SELECT_SSSE + "00"))[-2:] == b"\x90\x00"
        with pytest.raises(CardRemovedError, match="effect on the card is unknown"):
            t.transmit(bytes.fromhex("00B2072C00"))
    finally:
        t.disconnect()
        served.stop()


def test_no_card_in_reader_is_one_line_exit_4(pcscd):
    wait_card(False)
    r = sbcard("-r", READER, "atr")
    assert r.returncode == 4
    assert r.stderr.strip() == f"sbcard: error: {READER}: no card in the reader"


def test_no_pcscd_is_one_line_exit_4(pcscd, tmp_path):
    env = dict(os.environ, PCSCLITE_CSOCK_NAME=str(tmp_path / "none.comm"))
    r = subprocess.run([sys.executable, "-m", "sbcard", "readers"], capture_output=True,
                       text=True, env=env, timeout=30)
    assert r.returncode == 4
    assert "pcscd is not running" in r.stderr and "Traceback" not in r.stderr


def test_sim_serve_command(pcscd):
    proc = subprocess.Popen([sys.executable, "-m", "sbcard", "sim", "serve", "--port",
                             str(pcscd.port()), "--persona", "v1"],
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_card(True)
        r = sbcard("-r", READER, "apdu", SELECT_SSSE, "00B2083000")
        assert r.returncode == 0, r.stderr
        assert "0812" + b"439900198811220052".hex().upper() in r.stdout
    finally:
        proc.terminate()
        proc.wait(10)
    wait_card(False)
    assert "serving persona 'v1'" in proc.stderr.read()


def test_sim_serve_without_vpcd_fails_cleanly(pcscd):
    start = time.monotonic()
    r = sbcard("sim", "serve", "--port", "1", "--wait", "0.5")
    assert r.returncode == 4
    assert "vpcd is not listening" in r.stderr
    assert time.monotonic() - start < 30



@pytest.mark.parametrize(("persona", "name"),
                         [("demo", "测试一"), ("v1", "测试二"), ("t0quirks", "测试三")])
def test_read_through_pcscd(serve, persona, name):
    import json

    serve(persona)
    r = sbcard("-r", READER, "read", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["name"] == name


def test_read_bank_through_pcscd_masks_pan_in_trace(serve):
    serve("demo")
    r = sbcard("-r", READER, "--trace", "read", "--bank")
    assert r.returncode == 0, r.stderr
    assert "621700*********0016" in r.stdout
    assert "6217009999000000016" not in r.stdout + r.stderr


def test_read_v3_with_keys_through_pcscd(serve):
    import json

    serve("v3")
    r = sbcard("-r", READER, "read", "--json")
    assert r.returncode == 5 and "RKSSSE" in r.stdout
    r = sbcard("-r", READER, "--keys", "test", "read", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["name"] == "买买提·测试"


def test_personalise_3_0_cards_through_pcscd_then_verify_card_sm2(serve, tmp_path):
    """A blank 3.0 card personalised through pcscd: holder data, PIN, SM2 key pair and
    certificate; then `verify card --sm2` proves it and `read` shows the holder."""
    import json

    from tests.holders_factory import holder_rows, write_csv

    served = serve("blank3")
    csv = write_csv(tmp_path / "h.csv", holder_rows(1))
    r = sbcard("-r", READER, "--keys", "test", "personalise", str(csv), "--ca", "test",
               "--no-progress")
    assert r.returncode == 0, r.stderr
    assert served.card.pki.certificate is None      # the card made its own key
    r = sbcard("-r", READER, "verify", "card", "--sm2", "--trust", "test", "--json",
               "--pki-pin-stdin", stdin="123456\n")     # blank3's default PKI user PIN
    assert r.returncode == 0, r.stderr
    assert holder_rows(1)[0]["card_no"] in json.loads(r.stdout)["subject"]
    r = sbcard("-r", READER, "--keys", "test", "read", "--json")
    assert json.loads(r.stdout)["name"] == holder_rows(1)[0]["name"]


def test_personalise_card_that_holds_a_key_pair_through_pcscd(serve, tmp_path):
    """A 3.0 card whose EF 0012 already holds a key pair (persona keyed3): personalisation
    through pcscd reads it (00A40000020012 + 00B0000042, leithergit/Z390Kylin ReadCard) and
    certifies that key; it sends no key generation (80 40)."""
    from tests.holders_factory import holder_rows, write_csv

    served = serve("keyed3")
    before = served.card.pki.key
    sent: list[str] = []
    served.card.command_hooks.append(lambda _c, cmd: sent.append(cmd.to_bytes().hex().upper()))
    csv = write_csv(tmp_path / "h.csv", holder_rows(1))
    r = sbcard("-r", READER, "--keys", "test", "personalise", str(csv), "--ca", "test",
               "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "00A40000020012" in sent and "00B0000042" in sent
    assert not any(c.startswith("8040") for c in sent)
    assert served.card.pki.key is before
    r = sbcard("-r", READER, "verify", "card", "--sm2", "--trust", "test", "--pki-pin-stdin",
               stdin="123456\n")
    assert r.returncode == 0, r.stderr


def test_exclusive_transaction_holds_other_programs_off(serve):
    """During `exclusive()` (a PC/SC transaction) another program's APDU waits its turn."""
    import threading
    import time

    from sbcard.transport.pcsc import PcscTransport

    serve("demo")
    select = bytes.fromhex(SELECT_SSSE + "00")
    a, b = PcscTransport(READER), PcscTransport(READER)
    a.connect()
    b.connect()
    finished: list[float] = []

    def other() -> None:
        b.transmit(select)
        finished.append(time.monotonic())

    try:
        with a.exclusive():
            a.transmit(select)
            thread = threading.Thread(target=other)
            thread.start()
            time.sleep(0.4)
            assert not finished, "another program got in during the transaction"
            released = time.monotonic()
        thread.join(5)
        assert finished and finished[0] >= released
    finally:
        a.disconnect()
        b.disconnect()


def _spawn(*args: str) -> tuple[subprocess.Popen, Lines, Lines]:
    """``sbcard ARGS`` started, its stdout and stderr read as they come."""
    proc = subprocess.Popen([sys.executable, "-m", "sbcard", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    return proc, Lines(proc.stdout), Lines(proc.stderr)


def _finish(proc: subprocess.Popen, timeout: float = 60.0) -> int:
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
        raise AssertionError(f"{proc.args} did not end in {timeout:g} s") from None


def test_wait_then_read_when_the_card_is_inserted(serve):
    wait_card(False)
    proc, out, err = _spawn("-r", READER, "--wait", "60", "read", "--json")
    try:
        # the technician starts the command first, and once it asks for the card …
        said = err.wait_for(lambda line: "insert the card" in line, "the 'insert the card' line")
        served = serve("demo")                   # … inserts it
        assert _finish(proc) == 0, err.text()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert json.loads(out.text())["name"] == "测试一"
    assert f"insert the card 请插入卡片 (waiting up to 60 s: {READER}: no card" in said
    assert served.card.pin.tries == 3


def test_wait_gives_up_with_exit_4(pcscd):
    wait_card(False)
    start = time.monotonic()
    r = sbcard("-r", READER, "--wait", "1", "read")
    assert r.returncode == 4
    assert r.stderr.strip().endswith(f"{READER}: no card in the reader (waited 1 s)")
    assert time.monotonic() - start < 20


def test_readers_watch_sees_a_card_come_and_go(serve):
    wait_card(False)
    proc, out, err = _spawn("readers", "--watch", "--json", "--timeout", "120")

    def event(kind: str) -> Callable[[str], bool]:
        return lambda line: (json.loads(line)["event"], json.loads(line)["reader"]) == (
            kind, READER)

    try:
        out.wait_for(event("reader present"), f"'reader present' for {READER}")
        served = serve("v3")
        out.wait_for(event("card inserted"), f"'card inserted' in {READER}")
        served.stop()
        out.wait_for(event("card removed"), f"'card removed' from {READER}")
        proc.send_signal(signal.SIGINT)             # Ctrl-C is how a watch ends: exit 0
        assert _finish(proc) == 0, err.text()
    finally:
        if proc.poll() is None:
            proc.kill()
    events = [json.loads(line) for line in out.text().splitlines()]
    mine = [(e["event"], e["atr"]) for e in events if e["reader"] == READER]
    atr = served.card.atr.hex().upper()
    assert mine[0] == ("reader present", None)
    assert ("card inserted", atr) in mine
    assert mine.index(("card inserted", atr)) < mine.index(("card removed", None))
    inserted = next(e for e in events if e["event"] == "card inserted")
    assert "社会保障卡" in inserted["card_type"]
