"""Session dumps (``sbcard --dump``) and their replay (``ReplayCard``, ``sbcard sim replay``),
in-process and through a fake vpcd; the pcscd path is in tests/hil/test_replay_pcscd.py."""

from __future__ import annotations

import datetime as dt
import json
import logging
import socket
import stat
import struct
import subprocess
import sys
import threading

import pytest

from sbcard import __version__
from sbcard.apdu.channel import ApduChannel
from sbcard.apdu.dump import DumpLayer, DumpWriter, load_dump, parse_dump
from sbcard.compose import SessionOptions, stack
from sbcard.errors import BadInputError, CardRemovedError
from sbcard.ops.read import read_card
from sbcard.sim.persona import load_persona
from sbcard.sim.replay import ReplayCard, ReplayMismatchError, luhn_ok, unmask_response
from sbcard.transport.base import CardTornError
from sbcard.transport.simulated import SimulatedTransport
from tests.cli_runner import run_cli

SELECT_SSSE = "00A404000F7378312E73682EC9E7BBE1B1A3D5CF00"




def replay_read(path, **kwargs) -> dict:
    card = ReplayCard.load(path, **kwargs)
    link = SimulatedTransport(card, "replay", protocol=card.protocol)
    transport = stack(link, SessionOptions())
    transport.connect()
    try:
        return read_card(ApduChannel(transport)).to_json()
    finally:
        transport.disconnect()


# -- recording ---------------------------------------------------------------------------


def test_read_dump_replays_to_the_same_json(capsys, tmp_path):
    dump = tmp_path / "read.dump"
    code, recorded, _ = run_cli(capsys, "--sim", "demo", "--no-redact", "--dump", str(dump),
                                "read", "--json")
    assert code == 0
    assert replay_read(dump) == json.loads(recorded)           # through a ReplayCard
    code, replayed, _ = run_cli(capsys, "--sim", str(dump), "read", "--json")
    assert code == 0 and replayed == recorded                    # --sim accepts a dump


def test_dump_header_and_file_mode(capsys, tmp_path):
    path = tmp_path / "atr.dump"
    run_cli(capsys, "--sim", "v3", "--dump", str(path), "read")
    dump = load_dump(path)
    assert dump.header["sbcard"] == __version__
    assert dt.datetime.fromisoformat(dump.header["date"]).tzinfo is not None
    assert dump.reader == "simulator: v3" and dump.protocol == "T=0"   # v3 ATR 3B6D0000…: T=0
    assert dump.atr == load_persona("v3").atr
    assert "masked" in dump.header
    # EF05 with its exact Le (no 6Cxx, part 5 §6.10.4); EF06 is refused
    assert [e.command[:8] for e in dump.exchanges] == ["00A40400", "00B2012D", "00B20135"]
    assert dump.exchanges[-1].sw == 0x6982
    assert stat.S_IMODE(path.stat().st_mode) == 0o600            # holder data inside


def test_dump_is_masked_exactly_like_the_trace(capsys, monkeypatch, tmp_path):
    path = tmp_path / "pin.dump"
    code, _, err = run_cli(capsys, "--sim", "--trace", "--dump", str(path), "verify", "pin",
                       "--pin-stdin", stdin="123456\n")
    assert code == 0
    text = path.read_text("utf-8")
    trace_commands = [line.split("  (")[0] for line in err.splitlines() if line.startswith(">>")]
    dump_commands = [line.split("  (")[0] for line in text.splitlines() if line.startswith(">>")]
    assert dump_commands == trace_commands
    assert ">> 0020000003******" in text
    assert "123456" not in text                                  # the demo PIN


def test_verify_pin_dump_holds_no_pin_digits(capsys, monkeypatch, tmp_path, persona_factory):
    persona = persona_factory.file("demo", pin="741852")
    path = tmp_path / "verify.dump"
    code, _, _ = run_cli(capsys, "--sim", str(persona), "--dump", str(path), "verify", "pin",
                     "--pin-stdin", stdin="741852\n")
    assert code == 0
    text = path.read_text("utf-8")
    assert "741852" not in text and "0020000003******" in text


def test_psam_session_traced_and_dumped_beside_the_card(capsys, monkeypatch, tmp_path):
    # PIN reload through the simulated PSAM: the PSAM ciphers the new PIN block (80FA),
    # so its session is as secret-laden as the card's and is masked the same way.
    from sbcard.keys.builtin import builtin_key_file

    path = tmp_path / "reload.dump"
    code, out, err = run_cli(capsys, "--sim", "demo", "--psam", "sim", "--trace", "--dump",
                         str(path), "pin", "reload", "--pin-stdin",
                         stdin="739164\n739164\n")
    assert code == 0, err
    psam_path = tmp_path / "reload.dump.psam"
    psam = load_dump(psam_path)
    assert psam.reader.startswith("simulated PSAM")
    assert psam.atr != load_persona("demo").atr
    assert any(e.command.startswith("BFDE") for e in psam.exchanges)     # session key
    ciphered = [e.command for e in psam.exchanges if e.command.startswith("80FA")]
    assert ciphered and all("**" in c for c in ciphered)
    assert stat.S_IMODE(psam_path.stat().st_mode) == 0o600
    card = load_dump(path)                        # the card's own dump has no PSAM command
    assert card.atr == load_persona("demo").atr
    assert not any(e.command.startswith(("BFDE", "80FA")) for e in card.exchanges)
    psam_trace = [line[5:].split("  (")[0] for line in err.splitlines()
                  if line.startswith("PSAM >>")]
    assert psam_trace == [line.split("  (")[0]
                          for line in psam_path.read_text("utf-8").splitlines()
                          if line.startswith(">>")]
    keys = [root.value.hex().upper() for root in builtin_key_file().roots]
    for text in (out, err, path.read_text("utf-8"), psam_path.read_text("utf-8")):
        assert "739164" not in text
        assert not any(key in text.upper() for key in keys)


def test_no_psam_dump_without_a_psam(capsys, tmp_path):
    path = tmp_path / "read.dump"
    code, _, _ = run_cli(capsys, "--sim", "v3", "--keys", "test", "--dump", str(path), "read")
    assert code == 0 and path.exists()
    assert not (tmp_path / "read.dump.psam").exists()


def test_bank_number_masked_in_dump_and_replay_output_equal(capsys, tmp_path):
    path = tmp_path / "bank.dump"
    code, recorded, _ = run_cli(capsys, "--sim", "--no-redact", "--dump", str(path), "read",
                                "--bank", "--json")
    assert code == 0
    text = path.read_text("utf-8")
    assert "6217009999000000016" not in text and "621700*********0016" in text
    code, replayed, _ = run_cli(capsys, "--sim", str(path), "read", "--bank", "--json")
    assert code == 0 and replayed == recorded


def test_unmasked_pan_keeps_a_valid_check_digit():
    response = unmask_response("70" "0C" "5A0A" "621700*********0016" "F" "9000")
    pan = response[4:14].hex().upper().rstrip("F")
    assert pan.startswith("621700") and pan.endswith("0016") and luhn_ok(pan)


def test_t0_card_dump_has_the_get_response_rounds(capsys, tmp_path):
    path = tmp_path / "t0.dump"
    code, recorded, _ = run_cli(capsys, "--sim", "t0quirks", "--no-redact", "--dump", str(path),
                                "read", "--json")
    assert code == 0
    dump = load_dump(path)
    assert dump.protocol == "T=0" and any(e.command.startswith("00C0") for e in dump.exchanges)
    assert any(e.sw == 0x611E for e in dump.exchanges)
    code, replayed, _ = run_cli(capsys, "--sim", str(path), "read", "--json")
    assert replayed == recorded


def test_no_dump_file_when_no_card_was_reached(capsys, tmp_path):
    path = tmp_path / "none.dump"
    code, _, _ = run_cli(capsys, "--sim", "no-such-persona", "--dump", str(path), "read")
    assert code == 3 and not path.exists()


def test_recorded_tear_replays_as_a_tear(tmp_path):
    path = tmp_path / "torn.dump"
    card = load_persona("demo").build_card()

    def tear(c, cmd):
        if cmd.ins == 0xB2 and cmd.p2 == 0x35:
            raise CardTornError("test")
        return None

    card.command_hooks.append(tear)
    writer = DumpWriter(path)
    options = SessionOptions(wrap_link=lambda link: DumpLayer(link, writer))
    transport = stack(options.wrap_link(SimulatedTransport(card, "torn")), options)
    transport.connect()
    with pytest.raises(CardRemovedError):
        read_card(ApduChannel(transport))
    writer.close()
    assert "!! CardRemovedError:" in path.read_text("utf-8")
    with pytest.raises(CardRemovedError):
        replay_read(path)


# -- matching rules ------------------------------------------------------------------------

VERIFY_DUMP = """# sbcard-dump 1
# sbcard: 0.1.0
# reader: hand-written
# atr: 3B6D000000814A44468660519900000001
# protocol: T=1

>> 00A404000F7378312E73682EC9E7BBE1B1A3D5CF00  (21 B)
<< 6F1C840F7378312E73682EC9E7BBE1B1A3D5CFA50988011E9F0C038601019000  (32 B, 0.05 ms)
>> 0020000003******  (8 B)
<< 9000  (2 B, 0.02 ms)  9000 成功 success
>> 0082000A10841C36AAE1283C719E6C6F17A25B5B5B  (21 B)  t+0.0100 s
<< 9000  (2 B, 0.02 ms)
"""


def test_masked_command_matches_by_visible_bytes_and_length(caplog):
    card = ReplayCard.from_text(VERIFY_DUMP)
    card.power_on()
    assert card.process(bytes.fromhex(SELECT_SSSE))[-2:] == b"\x90\x00"
    assert card.process(bytes.fromhex("0020000003999999")) == b"\x90\x00"   # any 3-byte PIN
    with caplog.at_level(logging.WARNING, logger="sbcard.sim.replay"):
        assert card.process(bytes.fromhex("00200000021234")) == b"\x6f\x00"  # another length
    assert "is not in the dump: answered 6F00" in caplog.text
    assert [m.how for m in card.misses] == ["unknown"]


def test_position_rule_answers_fresh_data_unless_strict():
    other_cryptogram = bytes.fromhex("0082000A10" + "00" * 16)
    card = ReplayCard.from_text(VERIFY_DUMP)
    card.position = 2
    events = []
    card.on_event = events.append
    assert card.process(other_cryptogram) == b"\x90\x00"
    assert events[-1].how == "position"
    strict = ReplayCard.from_text(VERIFY_DUMP, strict=True)
    strict.position = 2
    with pytest.raises(ReplayMismatchError, match="not the next command"):
        strict.process(other_cryptogram)


def test_on_finished_is_called_once_the_last_exchange_is_answered():
    calls = []
    card = ReplayCard.from_text(VERIFY_DUMP, on_finished=lambda: calls.append(card.answered))
    card.process(bytes.fromhex(SELECT_SSSE))
    card.process(bytes.fromhex("0020000003123456"))
    assert calls == []
    card.process(bytes.fromhex("0082000A10" + "11" * 16))
    assert calls == [3]


def test_strict_replay_wants_the_next_command_in_order():
    card = ReplayCard.from_text(VERIFY_DUMP, strict=True)
    with pytest.raises(ReplayMismatchError, match="expected #1 00A40400"):
        card.process(bytes.fromhex("0020000003123456"))
    seen = []
    soft = ReplayCard.from_text(VERIFY_DUMP, strict=True, on_mismatch=seen.append)
    assert soft.process(bytes.fromhex("00B2012D00")) == b"\x6f\x00"
    assert isinstance(seen[0], ReplayMismatchError) and seen[0].exit_code == 9


def test_replay_wraps_around_for_a_second_run(capsys, tmp_path):
    dump = tmp_path / "twice.dump"
    run_cli(capsys, "--sim", "demo", "--dump", str(dump), "read", "--json")
    card = ReplayCard.load(dump, strict=True)
    transport = stack(SimulatedTransport(card), SessionOptions())
    transport.connect()
    first = read_card(ApduChannel(transport)).to_json()
    second = read_card(ApduChannel(transport)).to_json()
    assert first == second and card.finished and card.answered == 6


def test_replay_cannot_fake_card_authentication(capsys, tmp_path):
    """INTERNAL AUTHENTICATE answers a fresh host challenge: a recorded answer fails."""
    dump = tmp_path / "v3.dump"
    code, _, _ = run_cli(capsys, "--sim", "v3", "--keys", "test", "--dump", str(dump), "read")
    assert code == 0
    code, _, err = run_cli(capsys, "--sim", str(dump), "--keys", "test", "read")
    assert code == 9 and "internal authentication failed" in err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hello\n", "not an sbcard dump"),
        ("# sbcard-dump 2\n# atr: 3B00\n", "format '2' is not supported"),
        ("# sbcard-dump 1\n>> 00A4  (2 B)\n<< 9000  (2 B, 0.1 ms)\n", "no 'atr'"),
        ("# sbcard-dump 1\n# atr: 3B00\n>> 00A4  (3 B)\n<< 9000  (2 B, 0.1 ms)\n",
         "says (3 B)"),
        ("# sbcard-dump 1\n# atr: 3B00\n<< 9000  (2 B, 0.1 ms)\n", ":3: response without"),
        ("# sbcard-dump 1\n# atr: 3B00\n>> 00A40000  (4 B)\n", "has no response"),
        ("# sbcard-dump 1\n# atr: 3B00\nnonsense\n", ":3: unexpected line"),
    ],
)
def test_bad_dumps_are_named_errors(text, message):
    with pytest.raises(BadInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_dump(text)


# -- sbcard sim replay, against a fake vpcd -----------------------------------------------


class FakeVpcd:
    """The pcscd side of vpcd: listens, and sends control messages and APDUs."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(20)
        self.port = self.listener.getsockname()[1]
        self.conn: socket.socket | None = None

    def accept(self) -> None:
        self.conn, _ = self.listener.accept()
        self.conn.settimeout(20)

    def _send(self, payload: bytes) -> None:
        assert self.conn is not None
        self.conn.sendall(struct.pack(">H", len(payload)) + payload)

    def _recv(self) -> bytes:
        assert self.conn is not None
        head = self.conn.recv(2, socket.MSG_WAITALL)
        if len(head) < 2:
            raise ConnectionError("card side closed")
        (n,) = struct.unpack(">H", head)
        return self.conn.recv(n, socket.MSG_WAITALL) if n else b""

    def atr(self) -> str:
        self._send(b"\x04")
        return self._recv().hex().upper()

    def power_on(self) -> None:
        self._send(b"\x01")

    def apdu(self, hexstr: str) -> str:
        self._send(bytes.fromhex(hexstr))
        return self._recv().hex().upper()

    def closed_by_card(self) -> bool:
        try:
            self._recv()
        except (ConnectionError, OSError):
            return True
        return False

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.listener.close()


def start_replay(dump, port: int, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sbcard.cli.cmd_replay", str(dump),
                             "--port", str(port), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def verify_dump(tmp_path):
    path = tmp_path / "verify.dump"
    path.write_text(VERIFY_DUMP, "utf-8")
    return path


def test_replay_command_serves_the_dump_once(verify_dump):
    vpcd = FakeVpcd()
    proc = start_replay(verify_dump, vpcd.port, "--once")
    try:
        vpcd.accept()
        assert vpcd.atr() == "3B6D000000814A44468660519900000001"
        vpcd.power_on()
        assert vpcd.apdu(SELECT_SSSE).endswith("9000")
        assert vpcd.apdu("00B0000001") == "6F00"                  # not in the dump
        assert vpcd.apdu("0020000003111111") == "9000"            # masked: any 3-byte PIN
        assert vpcd.apdu("0082000A10" + "11" * 16) == "9000"      # last one: --once ends
        assert vpcd.closed_by_card()
        _, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
        vpcd.close()
    assert proc.returncode == 0, err
    assert "00B0000001 is not in the dump: answered 6F00" in err
    assert "3 answered from the dump, 1 not in it" in err


def test_replay_command_strict_mismatch_exits_9(verify_dump):
    vpcd = FakeVpcd()
    proc = start_replay(verify_dump, vpcd.port, "--strict", "-q")
    try:
        vpcd.accept()
        vpcd.power_on()
        assert vpcd.apdu("0020000003111111") == "6F00"            # not the first command
        assert vpcd.closed_by_card()
        _, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
        vpcd.close()
    assert proc.returncode == 9
    assert "sbcard: error: replay: 0020000003****** is not the next command" in err


def test_replay_command_without_vpcd_is_one_line_exit_4(verify_dump):
    proc = start_replay(verify_dump, 1, "--wait", "0.3")
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 4
    assert "vpcd is not listening" in err and "Traceback" not in err


def test_replay_command_refuses_a_non_dump(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text("not a dump\n")
    proc = start_replay(path, 1)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 3 and "not an sbcard dump" in err


def test_replay_in_a_thread_with_vpcd_server():
    """``VpcdServer(ReplayCard…)`` is all a test needs to serve a dump itself."""
    from sbcard.sim.vpcd import VpcdServer

    vpcd = FakeVpcd()
    server = VpcdServer(ReplayCard.from_text(VERIFY_DUMP), port=vpcd.port)
    thread = threading.Thread(target=server.serve_forever, kwargs={"max_wait": 10},
                              daemon=True)
    thread.start()
    try:
        vpcd.accept()
        vpcd.power_on()
        assert vpcd.apdu(SELECT_SSSE).startswith("6F1C")
    finally:
        server.stop()
        thread.join(5)
        vpcd.close()
