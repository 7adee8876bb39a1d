"""The PC/SC work of one iReadCardBas, counted, for both faces of the national driver: the C
library (libSSCardDriver.so, the gcc caller) and the Python API, on the same card served into
pcscd (issue #13: "iReadCardBas through the C library within 1.1× of the Python API on the
same card"; a slower face must not be doing more PC/SC work).

Every call opens the reader, powers the card, works and powers it off (docs/national-
interface.md; the reader spec restated in the public gdgly/SI_3rdCard
``code/SSCARD/SSCARD/SSCARD/SSCARDCtrl.cpp`` iReadCardBas steps (6) "若为3.0卡，再执行RKSSSE密钥
外部认证" and (9)/(10) "关闭设备，释放端口" at the end of every call, failed or not). So each call
of either face is one PC/SC context, one connection, one transaction and the same APDUs as on
the in-process simulated card, including the 3.0 card's RKSSSE authentication: a card left
powered (``SCARD_LEAVE_CARD``) kept the previous call's authentication, and the next call —
from any process — skipped it. Counts, not times: tests/native/scard_count/sitecustomize.py
logs the pyscard calls of the process it is loaded into.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sbcard.national.config import DriverConfig
from sbcard.national.driver import SSCardDriver
from sbcard.national.lines import split_fields
from sbcard.sim.persona import load_persona
from sbcard.testing.cards import PcscdCard
from tests.native.build import build_caller, build_library

pytestmark = pytest.mark.pcscd

COUNTER = Path(__file__).resolve().parent / "native" / "scard_count"
CALLS = 3

#: One iReadCardBas on the 3.0 card (v3 persona), command headers (CLA INS P1 P2) and status
#: words: SELECT SSSE, READ RECORD EF05, INTERNAL AUTHENTICATE, READ RECORD EF06 refused
#: (6982, RKSSSE not yet passed), GET CHALLENGE, EXTERNAL AUTHENTICATE, READ RECORD EF06.
APDUS = [("00a40400", "9000"), ("00b2012d", "9000"), ("00880000", "9000"),
         ("00b20135", "6982"), ("00840000", "9000"), ("0082000a", "9000"),
         ("00b20135", "9000")]
ONE_CALL = ["SCardEstablishContext", "SCardListReaders", "SCardGetStatusChange", "SCardConnect",
            "SCardStatus", "SCardBeginTransaction",
            *(f"SCardTransmit {c} {sw}" for c, sw in APDUS),
            "SCardEndTransaction", "SCardDisconnect UNPOWER", "SCardReleaseContext"]

PYTHON_FACE = f"""
import sys
from sbcard.national.driver import SSCardDriver
d = SSCardDriver()
for _ in range({CALLS}):
    code, line = d.iReadCardBas(1)
    sys.stdout.buffer.write(f"{{code}}\\n{{line}}\\n".encode("gbk"))
"""


@pytest.fixture(scope="module")
def native(tmp_path_factory):
    out = tmp_path_factory.mktemp("native-pcsc-work")
    return build_library(out), build_caller(out)


def _env(service, reader: str, log: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SBCARD_")}
    env.update(service.env(), HOME="/nonexistent", SBCARD_READER=reader, SBCARD_KEYS="test",
               PYTHONPATH=str(COUNTER), SCARD_COUNT_LOG=str(log))
    return env


def _per_call(log: Path) -> list[list[str]]:
    """The logged PC/SC calls, one list per national call (each opens its own context)."""
    calls: list[list[str]] = []
    for line in log.read_text(encoding="ascii").splitlines():
        if line == "SCardEstablishContext":
            calls.append([])
        assert calls, f"a PC/SC call outside a context: {line}"
        calls[-1].append(line)
    return calls


def _lines(stdout: bytes) -> list[str]:
    out = stdout.decode("gbk").splitlines()
    assert out[0::2] == ["0"] * CALLS, out
    return out[1::2]


@pytest.mark.parametrize("pcscd_card", ["v3"], indirect=True)
def test_both_faces_do_the_same_pcsc_work_per_call(native, pcscd_card, pcscd_service,
                                                   tmp_path):
    lib, exe = native
    c_log, py_log = tmp_path / "c.log", tmp_path / "python.log"
    c = subprocess.run([str(exe), str(lib), "seq", "1", *["iReadCardBas"] * CALLS],
                       env=_env(pcscd_service, pcscd_card.reader, c_log), capture_output=True,
                       timeout=120, check=False)
    assert c.returncode == 0, c.stderr.decode("utf-8", "replace")
    py = subprocess.run([sys.executable, "-c", PYTHON_FACE],
                        env=_env(pcscd_service, pcscd_card.reader, py_log),
                        capture_output=True, timeout=120, check=False)
    assert py.returncode == 0, py.stderr.decode("utf-8", "replace")
    assert _lines(c.stdout) == _lines(py.stdout)          # the same card, the same answer
    # every call of both faces: one context, one connection powered down at the end, and
    # the full flow with RKSSSE (the card kept no authentication from the call before)
    assert _per_call(c_log) == [ONE_CALL] * CALLS
    assert _per_call(py_log) == [ONE_CALL] * CALLS


def test_the_simulated_card_in_process_gets_the_same_apdus(monkeypatch):
    """The pcscd path's APDUs per call are those of the in-process simulated card, where the
    card is powered off after every call (SimulatedTransport.disconnect)."""
    from sbcard.transport.simulated import SimulatedTransport

    seen: list[tuple[str, str]] = []
    transmit = SimulatedTransport.transmit

    def counted(self, command: bytes) -> bytes:
        response = transmit(self, command)
        seen.append((command[:4].hex(), response[-2:].hex()))
        return response

    monkeypatch.setattr(SimulatedTransport, "transmit", counted)
    d = SSCardDriver(DriverConfig(sim="v3", key_source="keys", keys="test"))
    for _ in range(CALLS):
        assert d.iReadCardBas(1)[0] == 0
    assert seen == APDUS * CALLS


def _name(line: str) -> str:
    return split_fields(line)[4]


@pytest.mark.parametrize("pcscd_card", ["v3"], indirect=True)
def test_a_card_swapped_between_calls_is_seen_by_both_faces(native, pcscd_card,
                                                            pcscd_service, tmp_path):
    """One C library load and one Python driver across a card swap in the same reader: the
    next call of each reads the new card (each call connects afresh; nothing is cached)."""
    lib, exe = native
    env = _env(pcscd_service, pcscd_card.reader, tmp_path / "c.log")
    d = SSCardDriver(DriverConfig(contact_reader=pcscd_card.reader, key_source="keys",
                                  keys="test"))
    with subprocess.Popen([str(exe), str(lib), "serve"], env=env, stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE) as served:
        assert served.stdin is not None and served.stdout is not None

        def c_read() -> tuple[int, str]:
            assert served.stdin is not None and served.stdout is not None
            served.stdin.write(b"iReadCardBas\t1\n")
            served.stdin.flush()
            code, line = served.stdout.readline().decode("gbk").rstrip("\n").split("\t")
            return int(code), line

        code, line = c_read()
        assert code == 0 and _name(line) == "买买提·测试"
        assert d.iReadCardBas(1) == (0, line)
        pcscd_card.remove()
        other = PcscdCard(pcscd_service, load_persona("demo"))
        other.insert()
        try:
            code, line = c_read()
            assert code == 0 and _name(line) == "测试一"
            assert d.iReadCardBas(1) == (0, line)
        finally:
            other.remove()
            served.stdin.close()
            served.wait(30)
