"""libSSCardDriver.so against the simulated card served into pcscd ("Virtual PCD 00 01"):
the path an integrator's HIS takes with ``sbcard sim serve`` and no card (issue #13)."""

from __future__ import annotations

import os
import subprocess

import pytest

from sbcard.national.config import DriverConfig
from sbcard.national.driver import SSCardDriver
from sbcard.national.lines import split_fields
from tests.native.build import build_caller, build_library

pytestmark = pytest.mark.pcscd


@pytest.fixture(scope="module")
def native(tmp_path_factory):
    out = tmp_path_factory.mktemp("native-pcscd")
    return build_library(out), build_caller(out)


@pytest.mark.parametrize("pcscd_card", ["v3"], indirect=True)
def test_c_library_reads_the_card_through_pcscd(native, pcscd_card, pcscd_service):
    lib, exe = native
    env = {k: v for k, v in os.environ.items() if not k.startswith("SBCARD_")}
    env.update(pcscd_service.env(), HOME="/nonexistent", SBCARD_READER=pcscd_card.reader,
               SBCARD_KEYS="test")
    done = subprocess.run([str(exe), str(lib), "iReadCardBas", "1"], capture_output=True,
                          env=env, timeout=60, check=False)
    assert done.returncode == 0, done.stderr.decode("utf-8", "replace")
    code, line = done.stdout.decode("gbk").splitlines()
    assert code == "0"
    assert split_fields(line)[4] == "买买提·测试" and split_fields(line)[6] == "3.00"
    # The Python API through the same pcscd gives the same line.
    py = SSCardDriver(DriverConfig(contact_reader=pcscd_card.reader, key_source="keys",
                                   keys="test")).iReadCardBas(1)
    assert py == (0, line)


@pytest.mark.parametrize("pcscd_card", ["demo"], indirect=True)
def test_python_driver_pin_and_hsm_steps_through_pcscd(pcscd_card):
    from sbcard.national.pinsource import FixedPinSource
    from tests.national_hsm import read_step_key

    d = SSCardDriver(DriverConfig(contact_reader=pcscd_card.reader),
                     pin_source=FixedPinSource("123456"))
    assert d.iVerifyPIN(1) == (0, "")
    code, step1 = d.iReadCardBas_HSM_Step1(1)
    assert code == 0
    code, line = d.iReadCardBas_HSM_Step2(read_step_key(step1))
    assert code == 0 and split_fields(line)[4] == "测试一"


@pytest.mark.parametrize("pcscd_card", ["demo"], indirect=True)
def test_card_events_report_the_served_card(pcscd_card):
    d = SSCardDriver(DriverConfig(contact_reader=pcscd_card.reader))
    seen = []
    for event in d.card_events(poll=0.05, should_stop=lambda: bool(seen)):
        if event.reader == pcscd_card.reader:
            seen.append(event)
    assert seen[0].present and seen[0].atr.startswith("3B")


@pytest.mark.parametrize("pcscd_card", ["v3"], indirect=True)
def test_df_files_written_and_read_through_pcscd(native, pcscd_card, pcscd_service):
    """iWriteCard, then iReadCard by RK key, on the 3.0 (SM4) card behind pcscd: C library and
    Python API on the same served card (DF01–DF07, 人社信息函〔2012〕37号)."""
    lib, exe = native
    d = SSCardDriver(DriverConfig(contact_reader=pcscd_card.reader, key_source="keys",
                                  keys="test"))
    code, line = d.iReadCardBas(1)
    assert code == 0, line
    info = f"{split_fields(line)[3]}|{split_fields(line)[2]}|"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SBCARD_")}
    env.update(pcscd_service.env(), HOME="/nonexistent", SBCARD_READER=pcscd_card.reader,
               SBCARD_KEYS="test")
    done = subprocess.run([str(exe), str(lib), "writeread", info, "DF01EF0A|37|$DF04EF15|$",
                           "DF01EF0A|CHN|$DF04EF15|0007^1^|$"], capture_output=True, env=env,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr.decode("utf-8", "replace")
    assert done.stdout.decode("gbk").splitlines()[:2] == ["0", "DF01EF0A|CHN|$DF04EF15|0007^1^|$"]
    # the served card kept what the C library wrote: the Python API reads it back
    assert d.iReadCard(1, 2, info, "DF01EF0A|37|$") == (0, "DF01EF0A|CHN|$")


@pytest.mark.parametrize("pcscd_card", ["demo"], indirect=True)
def test_pin_pad_source_on_a_reader_without_part_10_features(pcscd_card):
    """vpcd answers SCardControl without PC/SC part 10 features: the pad source says so (−13
    naming the feature) and nothing reaches the card (the PIN still verifies afterwards)."""
    from sbcard.national import codes
    from sbcard.national.pinsource import FixedPinSource

    d = SSCardDriver(DriverConfig(contact_reader=pcscd_card.reader, pin_source="pinpad"))
    code, text = d.iChangePIN(1)
    assert code == codes.UNSUPPORTED and "FEATURE_MODIFY_PIN_DIRECT" in text
    code, text = d.iVerifyPIN(1)
    assert code == codes.UNSUPPORTED and "FEATURE_VERIFY_PIN_DIRECT" in text
    d._pin_source = FixedPinSource("123456")
    assert d.iVerifyPIN(1) == (0, "")
