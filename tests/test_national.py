"""The national reader interface (issue #13; #11 items 6 and 7) against the in-process simulator.

Expected shapes come from the public sources, not from our reader code:
- iReadCardBas line, HSM Step1/Step2 strings and the error table: ``gdgly/SI_3rdCard``
  ``code/SSCARD/SSCARD/SSCARD/SSCARDCtrl.cpp`` (``returnMap``, ``iReadCardBas_HSM_Step1/2``)
  and ``code/JavaScript/SSCARD.js`` (field comments: "卡复位信息（仅取历史字节）");
- the spec's sample line ``639900|<SSN>|X00000019|639900D15600000500BF7C7A48FB4966|…|
  00814E43238697159900BF7C7A|1.00|20101001|…`` (/work/shared/reference/sscard-spec.md §7.2);
- the HSM trace ``docs/加密机方式指令流.txt``: Step1 ``519900|3B6D…AC|03|519900D1…FF|<16>|<16>|
  <16>|<16>|00000000000000000000000000000000|``, PUK ``03|0090|<R>|<X>|``, PIN reload
  ``03|0173|<R>|8424000114|123456`` → 20 bytes (SM4 card).
"""

from __future__ import annotations

import os
import re
import stat
import sys
import textwrap
from pathlib import Path

import pytest

from sbcard.national import codes
from sbcard.national.config import DriverConfig, load_config
from sbcard.national.driver import SSCardDriver
from sbcard.national.lines import national_version, split_fields
from sbcard.national.pinsource import FixedPinSource, PinentryPinSource
from tests.cli_runner import run_cli
from tests.national_hsm import national_answer, read_step_key

HSM = f"{sys.executable} -m tests.national_hsm"
HEX16 = re.compile(r"^[0-9A-F]{16}$")


def driver(sim: str = "demo", pins: tuple[str, ...] = ("123456",), **config) -> SSCardDriver:
    config.setdefault("key_source", "keys")
    if config["key_source"] == "keys":
        config.setdefault("keys", "test")
    return SSCardDriver(DriverConfig(sim=sim, **config), pin_source=FixedPinSource(*pins))


# -- the code table ---------------------------------------------------------------------------
def test_code_table_has_the_national_codes_with_their_texts():
    for code, text in ((-1, "卡类型不对"), (-2, "无卡"), (-11, "读卡器连接错"),
                       (-21, "内部认证失败"), (-22, "传入数据与卡内不符"), (-52, "PIN锁定"),
                       (-2201, "无PSAM卡"),
                       (-2202, "PSAM卡算法不支持"), (-2203, "PSAM卡内没有RKSSSE密钥"),
                       (-2204, "不需要加密机认证")):
        assert codes.message(code).startswith(text)
    assert {c.code for c in codes.TABLE} >= set(range(-5, 0)) | {-51, -52}


def test_status_words_are_negative_decimal_and_pin_rules():
    assert codes.for_sw(0x6982) == (-27010, "不满足安全条件")
    assert codes.for_sw(0x6A82)[0] == -27266
    assert codes.for_sw(0x63C2, pin=True) == (-51, "PIN校验失败，剩余次数2次")
    assert codes.for_sw(0x6983, pin=True)[0] == -52
    assert codes.for_sw(0x6D00)[0] == -0x6D00 and "6D00" in codes.for_sw(0x6D00)[1]


# -- configuration ----------------------------------------------------------------------------
def test_config_file_then_environment(tmp_path):
    f = tmp_path / "driver.toml"
    f.write_text(textwrap.dedent("""
        [readers]
        contact = "Reader A"
        contactless = "Reader B"
        [keys]
        source = "psam"
        psam = "PSAM reader"
        [terminal]
        device_number = "DEV-01"
        [pin]
        source = "console"
    """), encoding="utf-8")
    c = load_config(environ={"SBCARD_DRIVER_CONFIG": str(f)})
    assert (c.contact_reader, c.contactless_reader, c.key_source, c.psam) == (
        "Reader A", "Reader B", "psam", "PSAM reader")
    assert c.reader_for(3) == ["Reader A", "Reader B"] and c.reader_for(4)[0] == "Reader B"
    c = load_config(environ={"SBCARD_DRIVER_CONFIG": str(f), "SBCARD_SIM": "v3",
                             "SBCARD_KEYS": "test", "SBCARD_READER": "X"})
    assert (c.sim, c.key_source, c.keys, c.contact_reader) == ("v3", "keys", "test", "X")
    assert load_config(environ={}).key_source == "none"


def test_config_errors_are_one_line(tmp_path):
    from sbcard.errors import BadInputError

    f = tmp_path / "bad.toml"
    f.write_text('[keys]\nsource = "psam"\n', encoding="utf-8")
    with pytest.raises(BadInputError, match=r"needs keys\.psam"):
        load_config(str(f), environ={})


# -- iReadCardBas -----------------------------------------------------------------------------
def test_ireadcardbas_2_0_card_fields_as_the_national_format():
    code, line = driver("demo").iReadCardBas(3)
    assert code == 0 and line.endswith("|")
    f = split_fields(line)
    assert len(f) == 11
    assert f[0] == "519900" and f[1] == "519900199001010015" and f[2] == "A00000011"
    assert re.fullmatch(r"[0-9A-F]{32}", f[3]) and f[3][:6] == f[0]
    assert f[4] == "测试一"
    assert f[5] == "00814A44468660519900000001"      # 13 historical bytes, as in the sample
    assert f[6] == "2.00" and f[7] == "20210601" and f[8] == "20310601"
    assert f[9] == "000000000000" and f[10] == ""


def test_ireadcardbas_3_0_card_name_with_extension_and_psam_terminal():
    code, line = driver("v3", key_source="psam", psam="sim").iReadCardBas(1)
    assert code == 0
    f = split_fields(line)
    assert f[4] == "买买提·测试" and f[6] == "3.00" and f[9] == "519900000001"


def test_ireadcardbas_without_key_source_is_no_psam_and_no_line():
    code, text = driver("v3", key_source="none").iReadCardBas(3)
    assert code == -2201 and "|" not in text


@pytest.mark.parametrize(("sim", "psam", "code"), [
    ("v3", "sim:nork", -2203),       # PSAM without RKSSSE: the HSM fallback
    ("v3", "sim:desonly", -2202),    # SM4 card, DES-only PSAM
    ("v3", "sim:absent", -2201),     # no PSAM at all
])
def test_psam_paths_integrators_fall_back_on(sim, psam, code):
    got, text = driver(sim, key_source="psam", psam=psam).iReadCardBas(3)
    assert got == code and text.startswith(codes.message(code)[:6])
    assert code in codes.HSM_FALLBACK


def test_2_0_card_reads_with_a_psam_lacking_rkssse():
    assert driver("demo", key_source="psam", psam="sim:nork").iReadCardBas(3)[0] == 0


def test_card_pulled_mid_read_gives_a_code_not_a_line():
    code, text = driver("pulled").iReadCardBas(3)
    assert code == codes.NO_ANSWER and text == "卡无应答"


def test_expired_card_still_reads_with_its_expiry():
    code, line = driver("expired").iReadCardBas(3)
    assert code == 0 and split_fields(line)[8] == "20200601"


def test_wrong_keys_fail_internal_authentication():
    from sbcard.compose import SessionOptions, open_session
    from sbcard.national.flows import read_basic
    from tests.test_keys_auth import other_keys

    with open_session(SessionOptions(sim="demo")) as channel, \
            pytest.raises(codes.NationalError) as exc:
        read_basic(channel, other_keys(0x00, 0x0A, algorithm="DES"))
    assert exc.value.code == -21


def test_bad_itype():
    assert driver().iReadCardBas(0)[0] == -1


def test_read_fields_is_read_json_shape():
    code, data = driver("v3").read_fields(3)
    assert code == 0 and isinstance(data, dict)
    assert data["name"] == "买买提·测试" and data["card_no"] == "C0000018X"


def persona_photo(name: str) -> bytes:
    """The photo a persona file holds (EF08 hex), cut where the image ends: at the offset
    counted by hand in the persona's comment (v3: EOI ends at 114, FF padding follows)."""
    import tomllib
    from importlib.resources import files

    text = (files("sbcard.sim") / "personas" / f"{name}.toml").read_text(encoding="utf-8")
    raw = bytes.fromhex(tomllib.loads(text)["files"]["EF08"])
    return raw[:{"v3": 114}[name]]


def test_read_photo_with_the_key_source_is_the_personas_image():
    code, photo = driver("v3").read_photo(3)
    assert code == 0 and photo == persona_photo("v3") and photo[:2] == b"\xff\xd8"


def test_read_photo_without_a_key_source_is_2201_and_without_a_photo_27266():
    code, text = driver("v3", key_source="none").read_photo(3)
    assert code == -2201 and "photo needs a key source" in text
    code, text = driver("demo").read_photo(3)
    assert code == codes.NO_PHOTO == -27266 and "无照片" in text
    assert driver("v3").read_photo(0)[0] == -1


def test_national_version():
    assert [national_version(v) for v in ("", None, "2.00", "3.0", "1", "x")] == [
        "1.00", "1.00", "2.00", "3.00", "1.00", "x"]


# -- HSM read steps -----------------------------------------------------------------------------
@pytest.mark.parametrize("sim", ["demo", "v3"])
def test_hsm_read_steps_shapes_and_result(sim):
    d = driver(sim, key_source="none")
    code, step1 = d.iReadCardBas_HSM_Step1(1)
    assert code == 0 and step1.endswith("|")
    f = split_fields(step1)
    assert len(f) == 9
    assert f[0] == "519900" and f[1].startswith("3B") and f[2] in ("01", "03")
    assert re.fullmatch(r"[0-9A-F]{32}", f[3])
    assert HEX16.match(f[4]) and HEX16.match(f[5])
    if sim == "v3":                                   # external items only on 3.0 cards
        assert HEX16.match(f[6]) and HEX16.match(f[7]) and f[2] == "03"
    else:
        assert f[6] == f[7] == ""
    assert f[8] == "0" * 32
    pkey = read_step_key(step1)
    assert re.fullmatch(r"[0-9A-F]{32}\|([0-9A-F]{32})?\|", pkey)
    code, line = d.iReadCardBas_HSM_Step2(pkey)
    assert code == 0
    assert line == driver(sim).iReadCardBas(1)[1]     # the same line as with a key source


def test_hsm_step2_rejects_a_wrong_internal_result_and_needs_step1():
    d = driver("v3", key_source="none")
    assert d.iReadCardBas_HSM_Step2("0" * 32 + "|" + "0" * 32 + "|")[0] == -12
    _, step1 = d.iReadCardBas_HSM_Step1(1)
    pkey = read_step_key(step1)
    wrong = ("1" if pkey[0] == "0" else "0") + pkey[1:]
    assert d.iReadCardBas_HSM_Step2(wrong) == (-25, "内部认证与加密机不一致失败")


# -- PIN ----------------------------------------------------------------------------------------
def test_verify_pin_codes():
    assert driver("demo", ("123456",)).iVerifyPIN(1) == (0, "")
    d = driver("demo", ("000000",))
    assert d.iVerifyPIN(1) == (-51, "PIN校验失败，剩余次数2次")
    assert d.iVerifyPIN(1) == (-51, "PIN校验失败，剩余次数1次")
    code, text = d.iVerifyPIN(1)                      # the tries guard: nothing spent
    assert code == -31 and "仅剩1次" in text
    assert driver("pinblocked").iVerifyPIN(1)[0] == -52


def test_change_pin_and_mismatch():
    assert driver("demo", ("123456", "258025", "258026")).iChangePIN(1)[0] == -34
    d = driver("demo", ("123456", "258025", "258025"))
    assert d.iChangePIN(1) == (0, "")
    d._pin_source = FixedPinSource("258025")
    assert d.iVerifyPIN(1) == (0, "")


def _card_info(d: SSCardDriver) -> str:
    f = split_fields(d.iReadCardBas(1)[1])
    return f"{f[3]}|{f[2]}|"


def test_reload_and_unblock_with_the_key_source():
    d = driver("pinblocked", ("147258", "147258"))
    info = _card_info(d)
    assert d.iUnblockPIN(1, info) == (0, "")
    assert d.iReloadPIN(1, info) == (0, "")
    d._pin_source = FixedPinSource("147258")
    assert d.iVerifyPIN(1) == (0, "")
    assert d.iReloadPIN(1, "519900D15600000500000001FFFFFFFF|A00000012|")[0] == -22


def test_reload_and_unblock_through_the_national_hsm_steps():
    d = driver("v3", ("135790", "135790"))
    info = _card_info(d)
    _, line = d.iReadCardBas_HSM_Step1(1)
    f = split_fields(line)
    card = f"{f[0]}|{f[1]}|{f[2]}|"
    code, s1 = d.iReloadPIN_HSM_Step1(1, info)
    assert code == 0 and re.fullmatch(r"03\|0090\|[0-9A-F]{16}\|[0-9A-F]{16}\|", s1)
    answer = national_answer(card, s1)
    assert len(answer) == 32 and answer.endswith(split_fields(s1)[3])   # A ‖ 原始信息
    code, s2 = d.iReloadPIN_HSM_Step2(answer)
    assert code == 0 and re.fullmatch(r"03\|0173\|[0-9A-F]{16}\|8424000114\|135790\|", s2)
    enc_mac = national_answer(card, s2)
    assert len(enc_mac) == 40                                           # 20 bytes, as traced
    assert d.iReloadPIN_HSM_Step3(enc_mac) == (0, "")
    d._pin_source = FixedPinSource("135790")
    assert d.iVerifyPIN(1) == (0, "")
    _, s1 = d.iUnblockPIN_HSM_Step1(1, info)
    code, s2 = d.iUnblockPIN_HSM_Step2(national_answer(card, s1))
    assert code == 0 and re.fullmatch(r"03\|0173\|[0-9A-F]{16}\|8424000004\|\|", s2)
    mac = national_answer(card, s2)
    assert d.iUnblockPIN_HSM_Step3("8424000004" + mac) == (0, "")   # the whole APDU works too


@pytest.mark.parametrize("protocol", ["national", "json"])
def test_hsm_key_source_both_protocols(protocol):
    d = driver("v3", ("246810", "246810"), key_source="hsm", hsm_command=HSM,
               hsm_protocol=protocol)
    code, line = d.iReadCardBas(1)
    assert code == 0 and split_fields(line)[4] == "买买提·测试"
    info = f"{split_fields(line)[3]}|{split_fields(line)[2]}|"
    assert d.iReloadPIN(1, info) == (0, "")
    d._pin_source = FixedPinSource("246810")
    assert d.iVerifyPIN(1) == (0, "")


# -- PIN sources --------------------------------------------------------------------------------
PINENTRY = """#!{python}
import sys
print("OK Pleased to meet you", flush=True)
for line in sys.stdin:
    cmd = line.split(" ", 1)[0].strip()
    if cmd == "GETPIN":
        {answer}
    elif cmd == "BYE":
        print("OK closing connection", flush=True)
        break
    else:
        print("OK", flush=True)
"""


def _pinentry(tmp_path: Path, answer: str) -> str:
    path = tmp_path / "pinentry"
    path.write_text(PINENTRY.format(python=sys.executable, answer=answer), encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_pinentry_assuan_dialogue(tmp_path):
    ok = _pinentry(tmp_path, 'print("D 123456", flush=True); print("OK", flush=True)')
    assert PinentryPinSource(ok).get_pin("请输入密码") == "123456"
    cancel = _pinentry(tmp_path, 'print("ERR 83886179 Operation cancelled <Pinentry>", '
                                 'flush=True)')
    with pytest.raises(codes.NationalError) as exc:
        PinentryPinSource(cancel).get_pin("请输入密码")
    assert exc.value.code == -31
    timeout = _pinentry(tmp_path, 'print("ERR 83886142 Timeout <Pinentry>", flush=True)')
    with pytest.raises(codes.NationalError) as exc:
        PinentryPinSource(timeout).get_pin("请输入密码")
    assert exc.value.code == -32


def test_verify_pin_through_pinentry(tmp_path):
    program = _pinentry(tmp_path, 'print("D 123456", flush=True); print("OK", flush=True)')
    d = SSCardDriver(DriverConfig(sim="demo", pin_source="pinentry", pinentry=program))
    assert d.iVerifyPIN(1) == (0, "")


def test_pin_pad_without_the_feature_is_unsupported():
    d = SSCardDriver(DriverConfig(sim="demo", pin_source="pinpad"))
    assert d.iVerifyPIN(1)[0] == -13


# -- the CLI ------------------------------------------------------------------------------------
def test_sbcard_call_prints_code_and_output(capsys):
    code, out, _ = run_cli(capsys, "--sim", "v3", "--keys", "test", "call", "iReadCardBas", "3")
    assert code == 0
    first, second = out.splitlines()
    assert first == "0" and split_fields(second)[4] == "买买提·测试"
    code, out, _ = run_cli(capsys, "--sim", "v3", "call", "iReadCardBas", "3")
    assert code == 8 and out.splitlines()[0] == "-2201"


def test_sbcard_call_bad_arguments(capsys):
    code, _, err = run_cli(capsys, "--sim", "call", "iReadCardBas")
    assert code == 3 and "iType" in err


def test_log_file_has_no_personal_data(tmp_path):
    log = tmp_path / "driver.log"
    d = driver("demo", log_file=str(log))
    assert d.iReadCardBas(1)[0] == 0
    text = log.read_text(encoding="utf-8")
    assert "iReadCardBas 0" in text and "519900199001010015" not in text and "测试一" not in text


def test_environment_reaches_the_driver(monkeypatch):
    monkeypatch.setenv("SBCARD_SIM", "v3")
    monkeypatch.setenv("SBCARD_KEYS", "test")
    monkeypatch.delenv("SBCARD_DRIVER_CONFIG", raising=False)
    monkeypatch.setenv("HOME", os.devnull)
    assert SSCardDriver().iReadCardBas(1)[0] == 0


def test_docs_list_every_code_and_function():
    from sbcard.national.driver import NATIONAL_FUNCTIONS

    doc = (Path(__file__).resolve().parents[1] / "docs" / "national-interface.md").read_text(
        encoding="utf-8")
    for c in codes.TABLE:
        assert f"| {c.code} | {c.zh} |" in doc, c.code
    for name in NATIONAL_FUNCTIONS:
        assert name in doc


def test_iread_card_by_national_file_address():
    # Address format of the reader spec restatement (spec §7.2): file|tag|tag:n|$…
    d = driver("v3")
    info = _card_info(d)
    code, out = d.iReadCard(1, 2, info, "SSSEEF05|01|07|05|$SSSEEF06|08|09|$")
    assert code == 0
    assert out == (f"SSSEEF05|{split_fields(info)[0]}|C0000018X|20230315|$"
                   "SSSEEF06|51990020010228001X|买买提·测试|$")
    assert d.iReadCard(1, 1, info, "SSSEEF05|03|$") == (0, "SSSEEF05|3.00|$")   # PIN first
    assert d.iReadCard(1, 1, info, "SSSEEF06|08|$")[0] == -27010   # EF06 wants RK, not PIN
    code, text = d.iReadCard(1, 2, info, "DF01EF0B|01|$")     # not a file of the notice
    assert code == -23 and "EF0B" in text
    assert d.iReadCard(1, 2, info, "DF01EF15|2A|40:2|$") == (0, "DF01EF15||^^^|$")  # blank
    assert d.iReadCard(1, 2, info, "SSSEEF05|01:2|$")[0] == -27267
    assert d.iReadCard(1, 2, "519900D156000005C06667791A2B3C4E|C0000018X|",
                       "SSSEEF05|01|$")[0] == -22


class PinPadLink:
    """A reader with a PIN pad (PC/SC part 10) in front of the simulated card: it announces
    FEATURE_VERIFY_PIN_DIRECT and, asked to verify, fills the APDU template of the
    PIN_VERIFY_STRUCTURE with the digits "typed" on its keypad, as a CCID reader does."""

    VERIFY_CODE = 0x42330006

    def __init__(self, inner, typed: str | None) -> None:
        self.inner, self.typed, self.structures = inner, typed, []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def control(self, code: int, data: bytes) -> bytes:
        from sbcard.national.pinpad import CM_IOCTL_GET_FEATURE_REQUEST

        if code == CM_IOCTL_GET_FEATURE_REQUEST:
            return bytes((0x06, 0x04)) + self.VERIFY_CODE.to_bytes(4, "big")
        assert code == self.VERIFY_CODE
        self.structures.append(data)
        if self.typed is None:
            return bytes.fromhex("6401")                # cancelled on the keypad
        apdu = bytearray(data[19:])
        block = self.typed + "F" * (2 * apdu[4] - len(self.typed))
        apdu[5:] = bytes.fromhex(block)
        return self.inner.transmit(bytes(apdu))


@pytest.mark.parametrize(("typed", "code"), [("123456", 0), ("654321", -51), (None, -31)])
def test_verify_pin_on_the_reader_pin_pad(typed, code):
    from sbcard.national.pinpad import verify_structure

    d = SSCardDriver(DriverConfig(sim="demo", pin_source="pinpad"))
    real_link = d._link
    links = []

    def link_with_pad(reader):
        links.append(PinPadLink(real_link(reader), typed))
        return links[-1]

    d._link = link_with_pad
    assert d.iVerifyPIN(1)[0] == code
    sent = links[-1].structures[0]
    assert sent == verify_structure() and sent[19:] == bytes.fromhex("0020000003FFFFFF")


def test_card_events_with_the_simulator():
    events = list(SSCardDriver(DriverConfig(sim="demo")).card_events())
    assert [(e.reader, e.present) for e in events] == [("sbcard-sim", True)]


def test_iread_card_through_the_hsm_steps():
    d = driver("v3", key_source="none")
    info = _card_info(driver("v3"))
    _, step1 = d.iReadCardBas_HSM_Step1(1)
    f = split_fields(step1)
    card = f"{f[0]}|{f[1]}|{f[2]}|"
    code, s1 = d.iReadCard_HSM_Step1(1, info, "SSSEEF06|08|09|$")
    assert code == 0 and re.fullmatch(r"03\|004C\|[0-9A-F]{16}\|[0-9A-F]{16}\|", s1)
    code, out = d.iReadCard_HSM_Step2(national_answer(card, s1))
    assert (code, out) == (0, "SSSEEF06|51990020010228001X|买买提·测试|$")
    assert d.iReadCard_HSM_Step1(1, info, "SSSEEF05|01|$")[0] == -2204   # free to read
