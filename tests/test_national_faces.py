"""Every national function through every face (issue #13 "Done means"): one table of calls, run
in-process against the simulator and through pcscd, from the Python API, from C (the gcc
program ``tests/native/sscard_call.c``, compiled against the library's SSCardDriver.h) and via
ctypes (``tests/native/ctypes_call.py``).

A scenario is a persona, a driver.toml and a list of calls, each with its arguments, the PINs
the scripted pinentry hands out (never arguments: the library asks its PIN source, as the
national DLL form does), the expected code and a check of the outputs. Each face runs a whole
scenario in one process (one library load): C and ctypes through the line protocol of
``sscard_call LIB serve``. The pinentry takes PINs from a queue file and cancels when it is
empty; after every call the queue must be empty, so a call that asks for more or fewer PINs
than the table says fails. HSM answers come from ``tests/national_hsm.py``.

Formats: iReadCardBas line and HSM step strings as in tests/test_national.py (public sources:
gdgly/SI_3rdCard SSCARDCtrl.cpp, docs/加密机方式指令流.txt); DF addresses and key addresses from
the Sichuan reader-interface spec (§2.1.2, §3.2, appendix B; tests/test_national_df.py);
iGetCardType/iGetReaderInfo/iGetDeviceInfo as docs/national-interface.md documents them.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sbcard import __version__
from sbcard.national import cabi, codes
from sbcard.national.config import load_config
from sbcard.national.driver import SSCardDriver
from sbcard.national.lines import split_fields
from tests.national_hsm import national_answer, read_step_key
from tests.test_national_native import native  # noqa: F401  (session fixture: lib + gcc program)

ROOT = Path(__file__).resolve().parents[1]
SIM_READER = "sbcard-sim"
PSAM_TERMINAL = "519900000001"        # EF 0016 of the simulated PSAM "default" (persona data)
DEVICE_NUMBER = "SBTEST0001"          # [terminal] device_number of the table's driver.toml

Ctx = dict[str, str]
Arg = str | int | Callable[[Ctx], str]
Check = list[str] | Callable[[list[str], Ctx], None] | None


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Arg, ...] = ()
    code: int = 0
    out: Check = None                 # the output buffers exactly, or a function asserting
    pins: tuple[str, ...] = ()        # what the scripted pinentry answers, in order
    keep: str | None = None           # remember the first output under this name


@dataclass(frozen=True)
class Scenario:
    id: str
    persona: str
    keys: str                         # the [keys] section of driver.toml
    calls: tuple[Call, ...]
    terminal: str = PSAM_TERMINAL     # 终端机编号 of its simulated PSAM
    sent: tuple[tuple[str, int], ...] = ()   # through pcscd: APDU prefix, times the card saw it


# -- the table -------------------------------------------------------------------------------
#: The demo card's iReadCardBas line (persona data), the PSAM's 终端机编号 and the configured
#: 终端设备号 in fields 10 and 11.
LINE_2_0 = ("519900|519900199001010015|A00000011|519900D15600000500000001FFFFFFFF|测试一|"
            f"00814A44468660519900000001|2.00|20210601|20310601|{PSAM_TERMINAL}|"
            f"{DEVICE_NUMBER}|")


def _line(expected: str) -> Callable[[list[str], Ctx], None]:
    """The iReadCardBas line exactly; its 卡识别码|卡号| is pCardInfo for the later calls."""
    def check(out: list[str], ctx: Ctx) -> None:
        assert out == [expected]
        f = split_fields(expected)
        ctx["info"] = f"{f[3]}|{f[2]}|"
    return check


def _reader_info(out: list[str], ctx: Ctx) -> None:
    assert out == [ctx["reader"], ctx["terminal"]]


def _device_info(out: list[str], ctx: Ctx) -> None:
    """iGetDeviceInfo: the documented ``sbcard|版本|接触读卡器|非接读卡器|密钥来源|``. The
    national reference (/work/shared/reference/national-interface.md §2) lists the function
    only among vendor extensions, with no public format; what it does give applies: one GBK
    NUL-terminated string within the caller's 1024 bytes (the faces check the guard zone),
    ``|``-separated with a trailing ``|`` like every national output."""
    doc = (ROOT / "docs/national-interface.md").read_text(encoding="utf-8")
    documented = re.search(r"`long iGetDeviceInfo\(char\* pOutInfo\)` \| `([^`]*)`", doc)
    assert documented is not None
    assert out[0].endswith("|") and len(out[0].encode("gbk")) < 1024
    fields = split_fields(out[0])
    assert len(fields) == len(split_fields(documented[1])) == 5
    where = ctx["device"]
    assert fields == ["sbcard", __version__, where, where, ctx["key_source"]]


def _step1_2_0(out: list[str], ctx: Ctx) -> None:
    f = split_fields(out[0])
    assert len(f) == 9 and f[:3] == ["519900", ctx["atr"], "01"] and f[6] == f[7] == ""
    assert f[3] == "519900D15600000500000001FFFFFFFF" and f[8] == DEVICE_NUMBER
    ctx["card"] = f"{f[0]}|{f[1]}|{f[2]}|"


def _step1_3_0(out: list[str], ctx: Ctx) -> None:
    f = split_fields(out[0])
    assert len(f) == 9 and f[:3] == ["519900", ctx["atr"], "03"]
    assert all(re.fullmatch(r"[0-9A-F]{16}", x) for x in f[4:8])
    assert f[3] == "519900D156000005C06667791A2B3C4D" and f[8] == DEVICE_NUMBER   # 终端SN
    ctx["card"] = f"{f[0]}|{f[1]}|{f[2]}|"


def _matches(pattern: str) -> Callable[[list[str], Ctx], None]:
    def check(out: list[str], ctx: Ctx) -> None:
        assert re.fullmatch(pattern, out[0]), out[0]
    return check


def _hsm(key: str) -> Callable[[Ctx], str]:
    """The HSM's answer to the step output kept as ``key`` (tests/national_hsm.py)."""
    return lambda ctx: national_answer(ctx["card"], ctx[key])


def _signature_verifies(out: list[str], ctx: Ctx) -> None:
    from sbcard.crypto import sm2
    from tests.test_national_pki import card_certificate

    public = card_certificate("v3").public_key
    assert public is not None and sm2.verify(public, b"616263", bytes.fromhex(out[0]))


def _says(text: str) -> Callable[[list[str], Ctx], None]:
    def check(out: list[str], ctx: Ctx) -> None:
        assert text in out[0], out[0]
    return check


#: pPayInfo = 总金额|个人账户+统筹金额|YYYYMMDDHHMMSS| (driver.iDoDebit, [S9] §8.1)
PAY = "120.50|100.00|20261202120000|"


def info(ctx: Ctx) -> str:
    return ctx["info"]


PIN_LOCKED_TEXT = codes.message(codes.PIN_LOCKED)

PIN_2_0 = Scenario("pin-2.0", "demo", 'source = "psam"\npsam = "sim"', (
    Call("iGetCardType", (), 0, ["1", ""]),
    Call("iGetReaderInfo", (), 0, _reader_info),
    Call("iGetDeviceInfo", (), 0, _device_info),
    Call("iReadCardBas", (3,), 0, _line(LINE_2_0)),
    # DF files with the PSAM's DF keys (UK to write, RK to read: no PIN)
    Call("iWriteCard", (1, info, "DF01EF0A|37|$", "DF01EF0A|CHN|$"), 0, [""]),
    Call("iReadCard", (1, 2, info, "DF01EF0A|37|$"), 0, ["DF01EF0A|CHN|$"]),
    Call("iVerifyPIN", (1,), 0, [""], pins=("123456",)),
    Call("iVerifyPIN", (1,), codes.PIN_WRONG, [codes.pin_wrong_message(2)], pins=("000000",)),
    Call("iChangePIN", (1,), codes.PIN_DIFFERENT, None, pins=("123456", "258025", "258026")),
    Call("iChangePIN", (1,), 0, [""], pins=("123456", "258025", "258025")),
    Call("iVerifyPIN", (1,), 0, [""], pins=("258025",)),
    # pin.guard = false: the third wrong PIN is spent and blocks the PIN
    Call("iVerifyPIN", (1,), codes.PIN_WRONG, [codes.pin_wrong_message(2)], pins=("000000",)),
    Call("iVerifyPIN", (1,), codes.PIN_WRONG, [codes.pin_wrong_message(1)], pins=("000000",)),
    Call("iVerifyPIN", (1,), codes.PIN_LOCKED, None, pins=("000000",)),
    Call("iVerifyPIN", (1,), codes.PIN_LOCKED, [PIN_LOCKED_TEXT]),       # no PIN asked
    Call("iReloadPIN", (1, "519900D15600000500000001FFFFFFFF|A00000012|"), codes.CARD_MISMATCH),
    Call("iUnblockPIN", (1, info), 0, [""]),
    Call("iVerifyPIN", (1,), 0, [""], pins=("258025",)),                  # the PIN stays
    Call("iReloadPIN", (1, info), 0, [""], pins=("147258", "147258")),
    Call("iVerifyPIN", (1,), 0, [""], pins=("147258",)),
    Call("iReadCardBas_HSM_Step1", (1,), 0, _step1_2_0, keep="step1"),
    Call("iReadCardBas_HSM_Step2", (lambda ctx: read_step_key(ctx["step1"]),), 0, [LINE_2_0]),
), sent=(("805E0100", 1), ("84240001", 1), ("84240000", 1)))   # CHANGE PIN, RELOAD, UNBLOCK

#: The v3 card's line; 终端机编号 from the PSAM "nork" (persona data), 终端设备号 configured.
LINE_3_0 = ("519900|51990020010228001X|C0000018X|519900D156000005C06667791A2B3C4D|买买提·测试|"
            f"0081544C9686845199C0666779|3.00|20230315|20330315|519900000003|{DEVICE_NUMBER}|")

# The integrators' fallback: a PSAM without RKSSSE (−2203), so the 3.0 card is read, its PIN
# reloaded/unblocked and its DF files read and written by the HSM steps.
HSM_3_0 = Scenario("hsm-3.0", "v3", 'source = "psam"\npsam = "sim:nork"', (
    Call("iGetCardType", (), 0, ["1", ""]),
    Call("iGetReaderInfo", (), 0, _reader_info),
    Call("iReadCardBas", (1,), codes.PSAM_NO_RKSSSE),
    Call("iReadCardBas_HSM_Step1", (1,), 0, _step1_3_0, keep="step1"),
    Call("iReadCardBas_HSM_Step2", (lambda ctx: read_step_key(ctx["step1"]),), 0,
         _line(LINE_3_0)),
    Call("iReadCardBas_HSM_Step2", (lambda ctx: read_step_key(ctx["step1"]),),
         codes.NOT_CONNECTED),                                            # Step1 again first
    Call("iReloadPIN_HSM_Step1", (1, info), 0,
         _matches(r"03\|0090\|[0-9A-F]{16}\|[0-9A-F]{16}\|"), keep="r1"),
    Call("iReloadPIN_HSM_Step2", (_hsm("r1"),), 0,
         _matches(r"03\|0173\|[0-9A-F]{16}\|8424000114\|135790\|"), keep="r2",
         pins=("135790", "135790")),
    Call("iReloadPIN_HSM_Step3", (_hsm("r2"),), 0, [""]),
    Call("iVerifyPIN", (1,), 0, [""], pins=("135790",)),
    Call("iUnblockPIN_HSM_Step3", ("00" * 4,), codes.NOT_CONNECTED),       # Step1 first
    Call("iUnblockPIN_HSM_Step1", (1, info), 0,
         _matches(r"03\|0090\|[0-9A-F]{16}\|[0-9A-F]{16}\|"), keep="u1"),
    Call("iUnblockPIN_HSM_Step2", (_hsm("u1"),), 0,
         _matches(r"03\|0173\|[0-9A-F]{16}\|8424000004\|\|"), keep="u2"),
    Call("iUnblockPIN_HSM_Step3", (lambda ctx: "8424000004" + _hsm("u2")(ctx),), 0, [""]),
    Call("iVerifyPIN", (1,), 0, [""], pins=("135790",)),
    # DF files by the HSM steps: UK6DF01 (0052) to write, RK1DF01 (004F) to read
    Call("iWriteCard_HSM_Step1", (1, info, "DF01EF15|2A|$"), 0,
         _matches(r"03\|0052\|[0-9A-F]{16}\|[0-9A-F]{16}\|"), keep="w1"),
    Call("iWriteCard_HSM_Step2", (_hsm("w1"), "DF01EF15|5|$"), 0, [""]),
    Call("iReadCard_HSM_Step1", (1, info, "DF01EF15|2A|$"), 0,
         _matches(r"03\|004F\|[0-9A-F]{16}\|[0-9A-F]{16}\|"), keep="d1"),
    Call("iReadCard_HSM_Step2", (_hsm("d1"),), 0, ["DF01EF15|5|$"]),
    Call("iReadCard_HSM_Step1", (1, info, "SSSEEF06|08|09|$"), 0,
         _matches(r"03\|004C\|[0-9A-F]{16}\|[0-9A-F]{16}\|"), keep="e1"),
    Call("iReadCard_HSM_Step2", (_hsm("e1"),), 0,
         ["SSSEEF06|51990020010228001X|买买提·测试|$"]),
    Call("iReadCard_HSM_Step1", (1, info, "SSSEEF05|01|$"), codes.HSM_NOT_NEEDED),
    # this PSAM holds no DF keys either: −24, the code that sends integrators to the HSM
    # steps (codes.HSM_FALLBACK); by PIN the files read without keys
    Call("iWriteCard", (1, info, "DF01EF0A|37|$", "DF01EF0A|CHN|$"), codes.PSAM_KEY_LEVEL),
    Call("iReadCard", (1, 2, info, "DF01EF15|2A|$"), codes.PSAM_KEY_LEVEL),
    Call("iReadCard", (1, 1, info, "DF01EF15|2A|$SSSEEF05|03|$"), 0,
         ["DF01EF15|5|$SSSEEF05|3.00|$"], pins=("135790",)),
    # 3rd generation SM2: the v3 card signs without a user PIN
    Call("PKI_SignData", ("", "616263", 1), 0, _signature_verifies, keep="sig"),
    Call("PKI_VerifySign", ("", "", "616263", lambda ctx: ctx["sig"], 1), 0, [""]),
    Call("PKI_VerifySign", ("", "", "616264", lambda ctx: ctx["sig"], 1), codes.CARD_MISMATCH),
    # medical purse (医疗消费): exported, and say why not (docs/national-interface.md)
    Call("iDoDebit", (1, info, PAY), codes.UNSUPPORTED, _says("医疗消费未实现")),
    Call("iDoDebit_HSM_Step1", (1, info, PAY), codes.UNSUPPORTED, _says("医疗消费未实现")),
    Call("iDoDebit_HSM_Step2", ("00",), codes.BAD_DATA),
    Call("iReadDebitRecord", (1,), codes.UNSUPPORTED, _says("读消费交易记录未实现")),
    Call("iGetDeviceInfo", (), 0, _device_info),
), terminal="519900000003", sent=(("84240001", 1), ("84240000", 1)))

SCENARIOS = (PIN_2_0, HSM_3_0)


# -- the faces -------------------------------------------------------------------------------
class Face:
    def call(self, name: str, args: list[str]) -> tuple[int, list[str]]:
        raise NotImplementedError

    def close(self) -> None:
        pass


class PythonFace(Face):
    """The Python API, configured from the same driver.toml as the library."""

    def __init__(self, config: Path) -> None:
        self.driver = SSCardDriver(load_config(str(config), environ={}))

    def call(self, name: str, args: list[str]) -> tuple[int, list[str]]:
        inputs, outputs = cabi.SIGNATURES[name]
        values = [int(a) if n.startswith("i") else a for n, a in zip(inputs, args, strict=True)]
        code, text = getattr(self.driver, name)(*values)
        return code, cabi.results(name, code, text, len(outputs))

    def close(self) -> None:
        self.driver.close()


class ProcessFace(Face):
    """A program speaking ``sscard_call serve``'s line protocol (C or ctypes)."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env)

    def call(self, name: str, args: list[str]) -> tuple[int, list[str]]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        assert not any("\t" in a or "\n" in a for a in args)
        self.proc.stdin.write("\t".join([name, *args]).encode("gbk") + b"\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(10)
            stderr = self.proc.stderr.read().decode("utf-8", "replace") if self.proc.stderr \
                else ""
            pytest.fail(f"{name}: the program ended ({self.proc.returncode}): {stderr}")
        code, *outs = line.rstrip(b"\n").decode("gbk").split("\t")
        assert code != "ERROR", outs
        return int(code), outs

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        assert self.proc.wait(30) == 0, self.proc.stderr.read() if self.proc.stderr else ""


PINENTRY = """#!/bin/sh
# pinentry for the tests (Assuan, as GnuPG's): each GETPIN answers the first line of the
# queue file and removes it; an empty queue is "Operation cancelled".
echo "OK Pleased to meet you"
while read -r cmd rest; do
  case "$cmd" in
    GETPIN)
      if [ -s '{queue}' ]; then
        pin=$(head -n 1 '{queue}'); sed -i 1d '{queue}'
        echo "D $pin"; echo OK
      else
        echo "ERR 83886179 Operation cancelled <Pinentry>"
      fi ;;
    BYE) echo "OK closing connection"; exit 0 ;;
    *) echo OK ;;
  esac
done
"""


@dataclass
class Station:
    """driver.toml, the scripted pinentry and its PIN queue for one scenario run."""

    config: Path
    queue: Path
    env: dict[str, str]
    ctx: Ctx


def station(tmp_path: Path, scenario: Scenario, reader: str | None,
            extra_env: dict[str, str] | None = None) -> Station:
    queue = tmp_path / "pins"
    queue.write_text("")
    pinentry = tmp_path / "pinentry"
    pinentry.write_text(PINENTRY.replace("{queue}", str(queue)))
    pinentry.chmod(pinentry.stat().st_mode | stat.S_IXUSR)
    where = f'contact = "{reader}"' if reader else f'sim = "{scenario.persona}"'
    config = tmp_path / "driver.toml"
    config.write_text(f"[readers]\n{where}\n\n[keys]\n{scenario.keys}\n\n"
                      f'[terminal]\ndevice_number = "{DEVICE_NUMBER}"\n\n'
                      f'[pin]\nsource = "pinentry"\npinentry = "{pinentry}"\nguard = false\n',
                      encoding="utf-8")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SBCARD_") and k != "PYTHONPATH"}
    env.update(extra_env or {}, HOME="/nonexistent", SBCARD_DRIVER_CONFIG=str(config),
               PYTHONPATH=str(ROOT))
    from sbcard.sim.persona import load_persona

    ctx = {"reader": reader or SIM_READER, "device": reader or f"simulator:{scenario.persona}",
           "key_source": tomllib.loads(scenario.keys)["source"], "terminal": scenario.terminal,
           "atr": load_persona(scenario.persona).atr.hex().upper()}
    return Station(config, queue, env, ctx)


def open_face(face: str, where: Station, built: tuple[Path, Path]) -> Face:
    lib, exe = built
    if face == "python":
        return PythonFace(where.config)
    if face == "c":
        return ProcessFace([str(exe), str(lib), "serve"], where.env)
    return ProcessFace([sys.executable, "-m", "tests.native.ctypes_call", str(lib)], where.env)


def run(scenario: Scenario, face: Face, where: Station) -> None:
    ctx = dict(where.ctx)
    for i, call in enumerate(scenario.calls):
        what = f"{scenario.id} #{i} {call.name}"
        args = [a(ctx) if callable(a) else str(a) for a in call.args]
        where.queue.write_text("".join(p + "\n" for p in call.pins))
        code, out = face.call(call.name, args)
        left = where.queue.read_text()
        assert left == "", f"{what}: PINs not asked for: {left.split()}"
        assert code == call.code, f"{what}: {code} {out}"
        if code != 0:
            assert out[0], f"{what}: a failure without its message"
        if isinstance(call.out, list):
            assert out == call.out, what
        elif call.out is not None:
            call.out(out, ctx)
        if call.keep:
            ctx[call.keep] = out[0]


FACES = ("python", "c", "ctypes")


@pytest.fixture
def run_faces(native) -> Iterator[Callable[..., None]]:  # noqa: F811
    opened: list[Face] = []

    def go(scenario: Scenario, face: str, where: Station) -> None:
        opened.append(open_face(face, where, native))
        run(scenario, opened[-1], where)

    yield go
    for f in opened:
        f.close()


# -- the tests -------------------------------------------------------------------------------
def test_c_program_table_is_the_header(native):  # noqa: F811
    """The gcc program knows every function of the header with its inputs and outputs (it is
    compiled against SSCardDriver.h, so each call's argument types are checked by gcc)."""
    lib, exe = native
    listed = subprocess.run([str(exe), str(lib), "list"], capture_output=True, text=True,
                            check=True).stdout.split("\n")
    table = {name: (int(i), int(o)) for name, i, o in (x.split() for x in listed if x)}
    assert table == {name: (len(i), len(o)) for name, (i, o) in cabi.SIGNATURES.items()}


def test_the_table_calls_every_function_of_the_header():
    assert {c.name for s in SCENARIOS for c in s.calls} == set(cabi.SIGNATURES)


@pytest.mark.parametrize("face", FACES)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.id)
def test_every_function_in_process(scenario, face, run_faces, tmp_path):
    run_faces(scenario, face, station(tmp_path, scenario, None))


@pytest.mark.pcscd
@pytest.mark.parametrize("face", FACES)
@pytest.mark.parametrize(("scenario", "pcscd_card"), [(s, s.persona) for s in SCENARIOS],
                         ids=[s.id for s in SCENARIOS], indirect=["pcscd_card"])
def test_every_function_through_pcscd(scenario, face, pcscd_card, pcscd_service, run_faces,
                                      tmp_path):
    if face == "python" and not pcscd_service.in_process:
        pytest.fail(f"this test process cannot reach {pcscd_service.note}")
    where = station(tmp_path, scenario, pcscd_card.reader, pcscd_service.env())
    run_faces(scenario, face, where)
    for prefix, times in scenario.sent:               # the served card saw the commands
        pcscd_card.log.assert_sent(prefix, times=times)

