"""The national driver's configured terminal data and its own files (issue #13 leftovers):
field 10 终端设备号 and Step1's 终端SN from ``[terminal] device_number``; the call log created
0600 whatever the umask; the console PIN source (a hidden prompt, −31 on cancel, −33 on a
bad PIN); driver.toml keys the driver does not know are refused. Field order:
reader-interface spec §7.2 (iReadCardBas, 11 fields) and iReadCardBas_HSM_Step1 (终端SN the
9th) as in gdgly/SI_3rdCard ``SSCARDCtrl.cpp``."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap

import pytest

from sbcard.national import codes
from sbcard.national.codes import NationalError
from sbcard.national.config import DriverConfig
from sbcard.national.driver import SSCardDriver
from sbcard.national.lines import split_fields
from sbcard.national.pinsource import ConsolePinSource, FixedPinSource

DEVICE = "SBCARD-KIOSK-0042"


def make(sim: str = "demo", **config) -> SSCardDriver:
    config.setdefault("key_source", "keys")
    config.setdefault("keys", "test")
    return SSCardDriver(DriverConfig(sim=sim, **config), pin_source=FixedPinSource("123456"))


def test_field_10_is_the_configured_device_number():
    code, line = make(device_number=DEVICE, terminal_number="519900000001").iReadCardBas(1)
    assert code == 0
    fields = split_fields(line)
    assert len(fields) == 11 and fields[9] == "519900000001" and fields[10] == DEVICE
    assert make().iReadCardBas(1)[1].endswith("|000000000000||")   # unset: empty field 10


def test_device_number_from_the_configuration_file(tmp_path):
    from sbcard.national.config import load_config

    conf = tmp_path / "driver.toml"
    conf.write_text(f'[readers]\nsim = "demo"\n[keys]\nsource = "keys"\nkeys = "test"\n'
                    f'[terminal]\ndevice_number = "{DEVICE}"\n', encoding="utf-8")
    config = load_config(str(conf), {})
    assert config.device_number == DEVICE and config.sim == "demo"    # never a real reader
    d = SSCardDriver(config, pin_source=FixedPinSource("123456"))
    assert split_fields(d.iReadCardBas(1)[1])[10] == DEVICE


def test_hsm_step1_terminal_sn_is_the_device_number():
    code, step1 = make(key_source="none", device_number=DEVICE).iReadCardBas_HSM_Step1(1)
    assert code == 0 and split_fields(step1)[8] == DEVICE
    assert split_fields(make(key_source="none").iReadCardBas_HSM_Step1(1)[1])[8] == "0" * 32


@pytest.mark.parametrize("umask", [0o022, 0o000])
def test_call_log_is_created_0600_whatever_the_umask(tmp_path, umask):
    log = tmp_path / "driver.log"
    old = os.umask(umask)
    try:
        assert make(log_file=str(log)).iReadCardBas(1)[0] == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert "iReadCardBas 0" in log.read_text(encoding="utf-8")


def test_an_existing_world_readable_log_is_tightened(tmp_path):
    log = tmp_path / "driver.log"
    log.write_text("earlier line\n", encoding="utf-8")
    log.chmod(0o644)
    assert make(log_file=str(log)).iReadCardBas(1)[0] == 0
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert log.read_text(encoding="utf-8").startswith("earlier line\n")     # appended


# -- the console PIN source -------------------------------------------------------------------
def fake_getpass(monkeypatch, answer):
    prompts: list[str] = []

    def getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    # the stdlib's getpass.getpass: ConsolePinSource imports getpass when it is constructed
    # (not with the driver) and asks through that module's function
    monkeypatch.setattr("getpass.getpass", getpass)
    return prompts


def test_console_pin_source_prompts_hidden_and_returns_the_digits(monkeypatch):
    prompts = fake_getpass(monkeypatch, " 123456 \n")
    assert ConsolePinSource().get_pin("请输入密码", description="社会保障卡") == "123456"
    assert prompts == ["社会保障卡\n请输入密码: "]


@pytest.mark.parametrize("answer", [EOFError(), KeyboardInterrupt(), ""])
def test_console_pin_source_cancel_is_31(monkeypatch, answer):
    fake_getpass(monkeypatch, answer)
    with pytest.raises(NationalError) as exc:
        ConsolePinSource().get_pin("请输入密码")
    assert exc.value.code == codes.PIN_CANCELLED == -31


@pytest.mark.parametrize("answer", ["123", "12345678901234567", "12a456", "１２３４５６"])
def test_console_pin_source_refuses_what_is_not_4_to_16_ascii_digits(monkeypatch, answer):
    fake_getpass(monkeypatch, answer)
    with pytest.raises(NationalError) as exc:
        ConsolePinSource().get_pin("请输入密码")
    assert exc.value.code == codes.PIN_LENGTH == -33


def test_driver_with_pin_source_console_verifies_the_typed_pin(monkeypatch):
    fake_getpass(monkeypatch, "123456")
    d = SSCardDriver(DriverConfig(sim="demo", key_source="keys", keys="test",
                                  pin_source="console"))
    assert d.iVerifyPIN(1) == (0, "")
    fake_getpass(monkeypatch, EOFError())
    assert d.iVerifyPIN(1)[0] == -31


FIRST_CALL_PROBE = textwrap.dedent("""
    import json, sys
    from sbcard.national.config import DriverConfig
    from sbcard.national.driver import SSCardDriver
    from sbcard.national.pinsource import pin_source_for
    WATCH = ("getpass", "subprocess")
    d = SSCardDriver(DriverConfig(sim="demo", key_source="keys", keys="test"))
    code = d.iReadCardBas(1)[0]
    seen = [[m for m in WATCH if m in sys.modules]]
    pin_source_for("console")
    seen.append([m for m in WATCH if m in sys.modules])
    pin_source_for("pinentry")
    seen.append([m for m in WATCH if m in sys.modules])
    print(json.dumps([code, seen]))
""")


def test_first_call_loads_no_getpass_or_subprocess_until_a_pin_source_needs_them():
    # Issue 13 (first-call weight): a national function's first call imports the driver,
    # and with it pinsource and keys.hsm; getpass (+ termios) and subprocess (+ signal,
    # selectors) load only with the PIN source (or HSM command) that uses them.
    done = subprocess.run([sys.executable, "-c", FIRST_CALL_PROBE], capture_output=True,
                          text=True, timeout=60, check=False,
                          env={k: v for k, v in os.environ.items()
                               if not k.startswith("SBCARD_")} | {"HOME": "/nonexistent"})
    assert done.returncode == 0, done.stderr
    code, seen = json.loads(done.stdout)
    assert code == 0
    assert seen == [[], ["getpass"], ["getpass", "subprocess"]]


@pytest.mark.parametrize(("text", "says"), [
    ('sim = "demo"\n', "unknown key 'sim' at the top level (did you mean [readers] sim?)"),
    ('[readers]\nsimm = "demo"\n',
     "[readers] has no key 'simm' (it has contact, contactless, sim)"),
    ('[terminal]\ndevice = "X"\n', "[terminal] has no key 'device'"),
    ('[keyz]\nsource = "keys"\n', "unknown key 'keyz' at the top level; the tables are [readers]"),
])
def test_a_misplaced_or_misspelt_configuration_key_is_refused(tmp_path, text, says):
    """A top-level ``sim`` used to be ignored silently, and the driver then read whatever card
    sat in the first real reader."""
    from sbcard.errors import BadInputError
    from sbcard.national.config import load_config

    conf = tmp_path / "driver.toml"
    conf.write_text(text, encoding="utf-8")
    with pytest.raises(BadInputError) as exc:
        load_config(str(conf), {})
    assert says in str(exc.value) and "\n" not in str(exc.value)


def test_the_documented_example_and_a_service_table_load(tmp_path):
    """The example in docs/national-interface.md loads; [service] is the service's to check."""
    import re
    from pathlib import Path

    from sbcard.national.config import load_config

    doc = (Path(__file__).resolve().parents[1] / "docs" / "national-interface.md").read_text(
        encoding="utf-8")
    example = re.search(r"```toml\n(\[readers\].*?)```", doc, re.S)
    assert example is not None
    conf = tmp_path / "driver.toml"
    conf.write_text(example.group(1) + '\n[service]\nanything = 1\n', encoding="utf-8")
    config = load_config(str(conf), {})
    assert config.log_file == "/var/log/sbcard/driver.log" and config.pin_guard
