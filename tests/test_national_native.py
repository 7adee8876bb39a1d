"""libSSCardDriver.so: built with cffi's embedding API, called from C (gcc, dlopen) and ctypes.

The C program ``tests/native/sscard_call.c`` puts a guard zone after every 1024-byte output
buffer (the national convention) and fails on any byte written past it. Expected strings are
those of the Python API (tests/test_national.py checks them against the public sources).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sbcard.national import cabi, codes
from sbcard.national.config import DriverConfig
from sbcard.national.driver import SSCardDriver
from sbcard.national.lines import split_fields
from tests.native.build import build_caller, build_library

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def native(tmp_path_factory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("native")
    return build_library(out), build_caller(out)


def c_call(native, *args: str, **env: str) -> list[str]:
    lib, exe = native
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith("SBCARD_") and k != "PYTHONPATH"}
    clean["HOME"] = "/nonexistent"               # no driver.toml of the developer's
    done = subprocess.run([str(exe), str(lib), *args], capture_output=True, timeout=60,
                          env={**clean, **env}, check=False)
    assert done.returncode == 0, done.stderr.decode("utf-8", "replace")
    return done.stdout.decode("gbk").splitlines()


def test_library_exports_every_header_function(native):
    lib, _ = native
    symbols = subprocess.run(["nm", "-D", "--defined-only", str(lib)], capture_output=True,
                             text=True, check=True).stdout
    exported = {line.split()[-1] for line in symbols.splitlines()}
    assert set(cabi.SIGNATURES) <= exported
    assert (lib.parent / "SSCardDriver.h").is_file()


def test_c_ireadcardbas_matches_the_python_api(native):
    lines = c_call(native, "iReadCardBas", "3", SBCARD_SIM="v3", SBCARD_KEYS="test")
    expected = SSCardDriver(DriverConfig(sim="v3", key_source="keys", keys="test")).iReadCardBas(3)
    assert lines == ["0", expected[1]]
    assert split_fields(lines[1])[4] == "买买提·测试"          # GBK across the C boundary


def test_c_error_code_and_gbk_message(native):
    lines = c_call(native, "iReadCardBas", "3", SBCARD_SIM="v3")
    assert lines[0] == "-2201" and lines[1].startswith("无PSAM卡")
    assert c_call(native, "iReadCardBas", "9", SBCARD_SIM="v3")[0] == "-1"


def test_c_two_output_functions_and_pki_sign_data(native):
    assert c_call(native, "iGetReaderInfo", SBCARD_SIM="demo", SBCARD_PSAM="sim") == [
        "0", "sbcard-sim", "519900000001"]
    assert c_call(native, "iGetCardType", SBCARD_SIM="demo") == ["0", "1", ""]
    # PKI_SignData (tests/test_national_pki.py): the v3 card signs with no user PIN
    code, signature = c_call(native, "PKI_SignData", "", "616263", "1", SBCARD_SIM="v3")
    assert code == "0", signature
    from sbcard.crypto import sm2
    from tests.test_national_pki import card_certificate

    public = card_certificate("v3").public_key
    assert public is not None and sm2.verify(public, b"616263", bytes.fromhex(signature))


def test_c_calls_from_eight_threads(native):
    lines = c_call(native, "threads", "8", "3", SBCARD_SIM="demo", SBCARD_KEYS="test")
    assert lines[0] == "threads ok" and split_fields(lines[1])[4] == "测试一"


CTYPES_SCRIPT = textwrap.dedent("""
    import ctypes, sys
    from tests.national_hsm import read_step_key
    lib = ctypes.CDLL(sys.argv[1])
    buf = ctypes.create_string_buffer(1024)
    rc = lib.iReadCardBas_HSM_Step1(1, buf)
    step1 = buf.value.decode("gbk")
    rc2 = lib.iReadCardBas_HSM_Step2(read_step_key(step1).encode("gbk"), buf)
    print(rc, rc2, buf.value.decode("gbk"), sep="\\n")
""")


def test_ctypes_hsm_steps_in_one_process(native):
    lib, _ = native
    env = {k: v for k, v in os.environ.items() if not k.startswith("SBCARD_")}
    env.update(SBCARD_SIM="v3", HOME="/nonexistent", PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", CTYPES_SCRIPT, str(lib)], capture_output=True,
                          text=True, env=env, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    rc1, rc2, line = done.stdout.splitlines()
    assert (rc1, rc2) == ("0", "0")
    expected = SSCardDriver(DriverConfig(sim="v3", key_source="keys", keys="test")).iReadCardBas(1)
    assert line == expected[1]


CTYPES_SIGN = textwrap.dedent("""
    import ctypes, sys
    lib = ctypes.CDLL(sys.argv[1])
    lib.PKI_SignData.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
    lib.PKI_SignData.restype = ctypes.c_long
    buf = ctypes.create_string_buffer(1024)
    data = "社保卡签名测试".encode("gbk")
    rc = lib.PKI_SignData(b"123456", data, 1, buf)
    print(rc, buf.value.decode("gbk"), sep="\\n")
    out = ctypes.create_string_buffer(1024)
    lib.PKI_VerifySign.argtypes = [ctypes.c_char_p] * 4 + [ctypes.c_int, ctypes.c_char_p]
    lib.PKI_VerifySign.restype = ctypes.c_long
    print(lib.PKI_VerifySign(b"", b"", data, buf.value, 1, out),
          lib.PKI_VerifySign(b"", b"", b"x", buf.value, 1, out))
    rc = lib.PKI_SignData(b"000000", data, 1, buf)
    print(rc, buf.value.decode("gbk"), sep="\\n")
""")


def test_ctypes_pki_sign_data(native):
    from sbcard.crypto import sm2
    from tests.test_national_pki import card_certificate

    lib, _ = native
    env = {k: v for k, v in os.environ.items() if not k.startswith("SBCARD_")}
    env.update(SBCARD_SIM="pkipin", HOME="/nonexistent", PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", CTYPES_SIGN, str(lib)], capture_output=True,
                          text=True, env=env, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    rc, signature, verified, rc_wrong, text_wrong = done.stdout.splitlines()
    assert rc == "0", signature
    assert verified == f"0 {codes.CARD_MISMATCH}"          # PKI_VerifySign: good, other data
    public = card_certificate("pkipin").public_key
    assert public is not None
    assert sm2.verify(public, "社保卡签名测试".encode("gbk"), bytes.fromhex(signature))
    assert (int(rc_wrong), text_wrong) == (codes.PIN_WRONG, codes.pin_wrong_message(2))


CTYPES_DEBIT = textwrap.dedent("""
    import ctypes, sys
    lib = ctypes.CDLL(sys.argv[1])
    lib.iDoDebit.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p]
    buf = ctypes.create_string_buffer(1024)
    rc = lib.iDoDebit(1, b"", b"120.50|100.00|20261202120000|", buf)
    print(rc, buf.value.decode("gbk"), sep="\\n")
    lib.iReadDebitRecord.argtypes = [ctypes.c_int, ctypes.c_char_p]
    print(lib.iReadDebitRecord(1, buf))
""")


CTYPES_MODULES = textwrap.dedent("""
    import ctypes, json, sys
    lib = ctypes.CDLL(sys.argv[1])
    buf = ctypes.create_string_buffer(1024)
    rc = lib.iReadCardBas(1, buf)
    after_read = sorted(sys.modules)
    lib.PKI_SignData.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
    rc_sign = lib.PKI_SignData(b"", b"abc", 1, buf)
    print(json.dumps([rc, after_read, rc_sign, sorted(sys.modules), buf.value.decode("gbk")]))
""")

#: What only the 3rd generation's SM2 path needs (asn1crypto: X.509 and the SM2 key formats).
SM2_MODULES = ("sbcard.crypto.sm2", "sbcard.crypto.x509", "sbcard.crypto._asn1",
               "sbcard.crypto._sm2_math", "sbcard.ops.sm2auth", "sbcard.national.pki",
               "sbcard.keys.builtin_ca", "sbcard.sim.pki", "asn1crypto", "gmssl")


def sm2_modules_in(modules: list[str]) -> list[str]:
    return [m for m in modules if any(m == h or m.startswith(h + ".") for h in SM2_MODULES)]


def _modules_probe(native, persona: str) -> list:
    """CTYPES_MODULES in a fresh process on ``persona``: [read code, modules after the read,
    PKI_SignData code, modules after it, signature]."""
    lib, _ = native
    env = {k: v for k, v in os.environ.items() if not k.startswith("SBCARD_")}
    env.update(SBCARD_SIM=persona, SBCARD_KEYS="test", HOME="/nonexistent",
               PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", CTYPES_MODULES, str(lib)],
                          capture_output=True, text=True, env=env, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_first_call_on_a_2_0_card_loads_no_sm2(native):
    """Issue 13, first call < 300 ms: a 2.0 (3DES) card's iReadCardBas through the library
    (interpreter start, cabi, the driver, the simulated card and the test keys) imports no
    SM2, X.509 or asn1crypto code; the first PKI function does (the probe sees them)."""
    rc, after_read, rc_sign, after_sign, _ = _modules_probe(native, "demo")
    assert rc == 0 and "sbcard.national.driver" in after_read     # the read really ran
    assert sm2_modules_in(after_read) == []
    assert rc_sign == codes.CARD_TYPE                              # no PKI application on 2.0
    assert {"sbcard.crypto.sm2", "sbcard.national.pki", "asn1crypto"} <= set(after_sign)


def test_first_call_on_a_3_0_card_makes_no_sm2_key_and_the_first_sign_matches_its_cert(native):
    """Issue 13 on the in-process 3.0 card: iReadCardBas never touches the PKI application,
    so the simulator makes its SM2 key pair and certificate only at the first PKI function
    (sbcard/sim/pki_app.py), and that signature verifies with the card's certificate."""
    rc, after_read, rc_sign, after_sign, signature = _modules_probe(native, "v3")
    assert rc == 0 and "sbcard.sim.pki_app" in after_read         # a 3.0 card was read
    assert sm2_modules_in(after_read) == []
    assert rc_sign == 0 and "sbcard.sim.pki" in after_sign
    from sbcard.crypto import sm2
    from tests.test_national_pki import card_certificate

    public = card_certificate("v3").public_key
    assert public is not None and sm2.verify(public, b"abc", bytes.fromhex(signature))


def test_ctypes_debit_functions_are_exported_and_say_why_not(native):
    lib, _ = native
    env = {k: v for k, v in os.environ.items() if not k.startswith("SBCARD_")}
    env.update(SBCARD_SIM="v3", HOME="/nonexistent", PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", CTYPES_DEBIT, str(lib)], capture_output=True,
                          text=True, env=env, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    rc, text, rc_record = done.stdout.splitlines()
    assert int(rc) == codes.UNSUPPORTED and "医疗消费未实现" in text
    assert int(rc_record) == codes.UNSUPPORTED


def test_a_result_that_does_not_fit_is_an_error_not_an_overflow(monkeypatch):
    import cffi

    ffi = cffi.FFI()
    out = ffi.new("char[]", cabi.MAX_OUTPUT + 16)
    ffi.memmove(out + cabi.MAX_OUTPUT, b"\xa5" * 16, 16)
    monkeypatch.setattr(cabi, "run", lambda name, inputs: (0, "字" * 600))   # 1201 GBK bytes
    assert cabi.call(ffi, "iReadCardBas", (3, out)) == codes.DATA_LENGTH
    assert ffi.string(out).decode("gbk").startswith("运算数据长度错")
    assert ffi.buffer(out + cabi.MAX_OUTPUT, 16)[:] == b"\xa5" * 16
    monkeypatch.setattr(cabi, "run", lambda name, inputs: (0, "字" * 511))    # 1022 + NUL fits
    assert cabi.call(ffi, "iReadCardBas", (3, out)) == 0
    assert ffi.buffer(out + cabi.MAX_OUTPUT, 16)[:] == b"\xa5" * 16
    assert cabi.call(ffi, "iReadCardBas", (3, ffi.NULL)) == codes.BAD_PARAMETER


# -- output sizes per function (cabi.OUTPUT_SIZES; Sichuan reader-interface spec tables) -----
def test_header_sizes_are_cabis_table_and_the_c_program_uses_them(native):
    from sbcard.national.build_native import HEADER, header_text

    lib, exe = native
    assert HEADER.read_text(encoding="utf-8") == header_text()   # re-render: --header
    assert (lib.parent / "SSCardDriver.h").read_text(encoding="utf-8") == header_text()
    listed = subprocess.run([str(exe), str(lib), "sizes"], capture_output=True, text=True,
                            check=True).stdout.split()
    sizes = dict(zip(listed[::2], map(int, listed[1::2]), strict=True))
    assert sizes == {name: cabi.output_size(name) for name in cabi.SIGNATURES}
    # the spec's pOutInfo 长度 (§2.1.1 表4, §2.3.1 表6, §4.1.1 表10, §9.1.1 表23)
    assert (sizes["iReadCard"], sizes["iReadCard_HSM_Step2"]) == (1024 * 20, 1024 * 20)
    assert (sizes["iReadCardBas"], sizes["iVerifyPIN"], sizes["iReadDebitRecord"]) == (
        1024, 512, 2048)


def _v3_card_info() -> tuple[SSCardDriver, str]:
    d = SSCardDriver(DriverConfig(sim="v3", key_source="keys", keys="test"))
    code, line = d.iReadCardBas(1)
    assert code == 0, line
    f = split_fields(line)
    return d, f"{f[3]}|{f[2]}|"


def test_c_ireadcard_reads_the_photo_into_its_documented_buffer(native):
    """SSSEEF08 (4 KiB → 8,192 hex digits) fits iReadCard's 1024*20 bytes; the C program's
    buffer is exactly SSCARD_MAX_OUTPUT_iReadCard followed by a guard zone it checks."""
    d, info = _v3_card_info()
    expected = d.iReadCard(1, 1, info, "SSSEEF08|$")
    assert expected[0] == 0 and 8192 < len(expected[1]) < cabi.output_size("iReadCard")
    lines = c_call(native, "iReadCard", "1", "1", info, "SSSEEF08|$",
                   SBCARD_SIM="v3", SBCARD_KEYS="test")
    assert lines == ["0", expected[1]]
    assert lines[1].startswith("SSSEEF08|FFD8") and lines[1].endswith("|$")
    # three photos (24,609 bytes) do not fit 20480: −42 naming the size, nothing past it
    code, message = c_call(native, "iReadCard", "1", "1", info, "SSSEEF08|$" * 3,
                           SBCARD_SIM="v3", SBCARD_KEYS="test")
    assert (int(code), message) == (codes.DATA_LENGTH, "运算数据长度错（输出超过20480字节）")


def _serve(argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith("SBCARD_") and k != "PYTHONPATH"}
    clean.update(HOME="/nonexistent", **env)
    return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=clean)


def _ask(proc: subprocess.Popen[bytes], *fields: str) -> list[str]:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("\t".join(fields).encode("gbk") + b"\n")
    proc.stdin.flush()
    line = proc.stdout.readline()
    assert line, proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
    return line.decode("gbk").rstrip("\n").split("\t")


@pytest.mark.parametrize("face", ["c", "ctypes"])
def test_photo_through_the_hsm_steps_fits_step2s_buffer(native, face):
    """iReadCard_HSM_Step1 (1024) → the HSM → iReadCard_HSM_Step2 (1024*20) in one process,
    from C and from ctypes, each buffer its function's size with a guard zone after it."""
    from tests.national_hsm import national_answer

    lib, exe = native
    d, info = _v3_card_info()
    expected = d.iReadCard(1, 1, info, "SSSEEF08|$")[1]
    argv = ([str(exe), str(lib), "serve"] if face == "c" else
            [sys.executable, "-m", "tests.native.ctypes_call", str(lib)])
    env = {"SBCARD_SIM": "v3"} if face == "c" else {"SBCARD_SIM": "v3", "PYTHONPATH": str(ROOT)}
    proc = _serve(argv, env)
    try:
        code, step1 = _ask(proc, "iReadCardBas_HSM_Step1", "1")
        assert code == "0", step1
        card = "|".join(split_fields(step1)[:3]) + "|"
        code, request = _ask(proc, "iReadCard_HSM_Step1", "1", info, "SSSEEF08|$")
        assert code == "0" and request.split("|")[1] == "004C", request   # appendix B.1
        assert _ask(proc, "iReadCard_HSM_Step2", national_answer(card, request)) == [
            "0", expected]
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0, proc.stderr.read() if proc.stderr else ""


def test_c_a_1024_function_still_refuses_a_longer_result(native, tmp_path):
    """A 1100-character 终端设备号 makes iReadCardBas's line longer than its 1024 bytes
    (§1.1.1 表1): −42 naming 1024, the guard zone untouched; iReadCard on the same
    configuration still returns the photo (its own size)."""
    config = tmp_path / "driver.toml"
    config.write_text(f'[terminal]\ndevice_number = "{"D" * 1100}"\n', encoding="utf-8")
    env = {"SBCARD_SIM": "v3", "SBCARD_KEYS": "test", "SBCARD_DRIVER_CONFIG": str(config)}
    assert c_call(native, "iReadCardBas", "1", **env) == [
        str(codes.DATA_LENGTH), "运算数据长度错（输出超过1024字节）"]
    _d, info = _v3_card_info()
    code, out = c_call(native, "iReadCard", "1", "1", info, "SSSEEF08|$", **env)
    assert code == "0" and out.startswith("SSSEEF08|")


def _fake(name: str, text: str) -> str:
    """A result of ``text`` in the first buffer (iGetReaderInfo splits its line in two)."""
    return text + "|" if name == "iGetReaderInfo" else text


@pytest.mark.parametrize("name", sorted(cabi.SIGNATURES))
def test_every_function_fills_its_own_size_and_no_more(monkeypatch, name):
    import cffi

    ffi = cffi.FFI()
    size = cabi.output_size(name)
    ins, outs = cabi.SIGNATURES[name]
    guard = b"\xa5" * 64
    buffers = [ffi.new("char[]", size + len(guard)) for _ in outs]

    def call(code: int, text: str) -> tuple[int, list[bytes]]:
        for b in buffers:
            ffi.memmove(b + size, guard, len(guard))
        monkeypatch.setattr(cabi, "run", lambda _name, _inputs: (code, _fake(name, text)))
        args = tuple(0 if n.startswith("i") else ffi.NULL for n in ins) + tuple(buffers)
        rc = cabi.call(ffi, name, args)
        for b in buffers:
            assert ffi.buffer(b + size, len(guard))[:] == guard, "written past the size"
        return rc, [ffi.string(b) for b in buffers]

    rc, got = call(0, "a" * (size - 1))                  # size − 1 bytes + NUL: fits
    assert rc == 0 and b"a" * (size - 1) in got
    rc, got = call(0, "a" * size)                        # one byte more: −42, the size named
    assert rc == codes.DATA_LENGTH
    message = got[1] if name == "iGetCardType" else got[0]   # where its failures go
    assert message.decode("gbk") == f"运算数据长度错（输出超过{size}字节）"
    rc, got = call(codes.PIN_WRONG, "字" * size)         # a failure keeps its code, cut
    message = got[1] if name == "iGetCardType" else got[0]
    assert rc == codes.PIN_WRONG
    assert message.decode("gbk").endswith("字…") and size - 4 < len(message) < size


def test_c_output_max_bytes_is_a_ceiling_for_programs_with_one_buffer_size(native, tmp_path):
    """driver.toml ``[output] max_bytes = 1024``: a program that gives every function 1024
    bytes gets −42 for the photo instead of 8 KiB written into its buffer."""
    config = tmp_path / "driver.toml"
    config.write_text("[output]\nmax_bytes = 1024\n", encoding="utf-8")
    env = {"SBCARD_SIM": "v3", "SBCARD_KEYS": "test", "SBCARD_DRIVER_CONFIG": str(config)}
    _d, info = _v3_card_info()
    assert c_call(native, "iReadCard", "1", "1", info, "SSSEEF08|$", **env) == [
        str(codes.DATA_LENGTH), "运算数据长度错（输出超过1024字节）"]
    code, line = c_call(native, "iReadCard", "1", "2", info, "SSSEEF05|07|$", **env)
    assert (code, line) == ("0", "SSSEEF05|C0000018X|$")


def test_output_max_bytes_is_checked():
    from sbcard.errors import BadInputError
    from sbcard.national.config import from_mapping

    assert from_mapping({}).max_output is None
    assert from_mapping({"output": {"max_bytes": 1024}}).max_output == 1024
    with pytest.raises(BadInputError, match=r"output\.max_bytes is 256 to 65536"):
        from_mapping({"output": {"max_bytes": 100}})
