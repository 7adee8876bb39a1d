"""The national reader interface (issue #13; #11 items 6 and 7) against the in-process simulator.

Expected values come from the public sources, not from our reader code:
- iReadCardBas line, HSM Step1/Step2 strings and the error table: ``gdgly/SI_3rdCard``
  ``code/SSCARD/SSCARD/SSCARD/SSCARDCtrl.cpp`` (``returnMap``, ``iReadCardBas_HSM_Step1/2``)
  and ``code/JavaScript/SSCARD.js`` (field comments: "卡复位信息（仅取历史字节）");
- the reader spec's sample line, ``gdgly/SI_3rdCard`` ``docs/四川省社会保障卡读写机具规范2.0.doc``
  §9.1.1.2: ``639900|111111198101011110|X00000019|639900D15600000500BF7C7A48FB4966|张三|
  00814E43238697159900BF7C7A|1.00|20101001|20201001|410100813475|终端设备号|`` — persona
  ``tests/personas/spec-sample.toml``, the whole line checked;
- the HSM trace ``gdgly/SI_3rdCard`` ``docs/加密机方式指令流.txt``: Step1 ``519900|3B6D…AC|03|
  519900D1…FF|<16>|<16>|<16>|<16>|00000000000000000000000000000000|`` (line 45; persona
  ``tests/personas/hsm-trace.toml``, the whole string checked with the traced challenges),
  PUK ``03|0090|<R>|<X>|``, PIN reload ``03|0173|<R>|8424000114|123456`` → 20 bytes (SM4 card).
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
PERSONAS = Path(__file__).resolve().parent / "personas"
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


#: ``gdgly/SI_3rdCard`` ``code/SSCARD/SSCARD/SSCARD/SSCARDCtrl.cpp`` lines 33-86 (``returnMap``),
#: copied row for row as (ret, msg, sw1‖sw2); 0x0000 = the row carries no SW. The typos are
#: the source's (``25538`` without its minus sign, the leading space of −25537).
PUBLIC_RETURNMAP = (
    (-1, "卡类型不对", 0xFF00),
    (-2, "无卡", 0x0000),
    (-3, "有卡未上电", 0xFF20),
    (-4, "卡无应答", 0xFF21),
    (-5, "加载动态库错", 0x0000),
    (-11, "读卡器连接错", 0xFF11),
    (-12, "未建立连接", 0xFF10),
    (-13, "（动态库）不支持该命令", 0x0000),
    (-14, "（发给动态库的）命令参数错", 0xFF50),
    (-15, "信息校验和出错", 0x0000),
    (-20, "卡识别码格式错", 0x0000),
    (-21, "内部认证失败（用户卡不合法)", 0xFF40),
    (-22, "传入数据与卡内不符", 0x0000),
    (-23, "传入数据不合法", 0xFF01),
    (-24, "PSAM卡密钥级别不够", 0x0000),
    (-25, "内部认证与加密机不一致失败", 0xFF41),
    (-31, "用户取消密码输入", 0x0000),
    (-32, "密码输入操作超时", 0x0000),
    (-33, "输入密码长度错", 0x0000),
    (-34, "两次输入密码不一致", 0x0000),
    (-35, "初始密码不能交易", 0x0000),
    (-36, "不能改为初始密码", 0x0000),
    (-41, "运算数据含非法字符", 0x0000),
    (-42, "运算数据长度错", 0x0000),
    (-51, "PIN校验失败，剩余次数N次（根据卡返回信息）", 0x63C0),
    (-52, "PIN锁定", 0x0000),
    (-2201, "无PSAM卡", 0xFF30),
    (-2202, "PSAM卡算法不支持（即PSAM卡内没有SSF33算法或SM4算法）", 0x0000),
    (-2203, "PSAM卡内没有RKSSSE密钥（3.0卡读个人基本信息需要RKSSSE密钥外部认证）", 0x0000),
    (-2204, "不需要加密机认证", 0x0000),
    (-25536, "外部认证失败，剩余可尝试次数2、1、0次", 0x0000),
    (-25537, " 外部认证失败，剩余可尝试次数2、1、0次", 0x0000),
    (25538, "外部认证失败，剩余可尝试次数2、1、0次", 0x0000),
    (-26368, "Lc/Le不正确", 0x6C00),
    (-26369, "P1、 P2 与 Lc 不一致", 0x6700),
    (-26370, "参数 P1、 P2 不正确", 0x6A86),
    (-26371, "CLA 错", 0x6E00),
    (-26881, "命令不接受（无效状态）", 0x6986),
    (-27009, "命令与文件结构不相符、当前文件非所需文件", 0x6981),
    (-27010, "不满足安全条件", 0x6982),
    (-27011, "密钥锁定（算法锁定）鉴别方法锁定", 0x6983),
    (-27012, "引用数据无效、随机数无效", 0x6984),
    (-27013, "不满足使用条件、应用被锁定、应用未选择、余额上溢", 0x9303),
    (-27016, "安全报文数据项不正确、MAC不正确", 0x6988),
    (-27264, "数据域参数不正确", 0x6A80),
    (-27265, "不支持该功能、卡中无MF、卡被锁定、应用锁定", 0x6A81),
    (-27266, "未找到文件、文件标识相重、SFI不正确", 0x6A82),
    (-27267, "未找到记录", 0x6A83),
    (-27272, "未找到引用数据、未找到密钥", 0x6A88),
    (-37634, "MAC无效", 0x0000),
    (-37635, "应用已被永久锁定、卡片锁定", 0x9303),
    (-37891, "PSAM卡不支持消费交易", 0x0000),
    (-37894, "所需MAC（或/和TAC）不可用", 0x0000),
    (-999, "未知错误", 0x0000),
)

#: ``code/JavaScript/SSCARD.js`` lines 627-680 (``retmsgJson``): the rows that carry a card SW
#: (the FFxx rows are the vendor reader library's own statuses, not card SWs).
PUBLIC_JS_SW = {0x6C00: -26368, 0x6700: -26369, 0x6A86: -26370, 0x6E00: -26371,
                0x6986: -26881, 0x6981: -27009, 0x6982: -27010, 0x6A81: -27265,
                0x6A82: -27266, 0x6A83: -27267, 0x6A88: -27272, 0x9303: -37635}


def test_status_words_follow_the_public_returnmap():
    for code, _text, sw in PUBLIC_RETURNMAP:
        if sw == 0 or sw >> 8 == 0xFF:              # no SW / the reader library's statuses
            continue
        if sw == 0x63C0:
            # SSCARDCtrl.cpp lines 101-107: every 63xx is −51 with the tries from SW2. sbcard
            # does so in PIN commands, except 0 tries left = −52 PIN锁定 (codes.py docstring).
            assert codes.for_sw(0x63C2, pin=True)[0] == code
            assert codes.for_sw(0x63C0, pin=True)[0] == codes.PIN_LOCKED
            continue
        if (code, sw) == (-27013, 0x9303):
            # A copy slip in the C++ (6985's text and code; it shadows line 83 there):
            # SSCARD.js line 677 and the decimal rule agree on −37635.
            assert codes.for_sw(sw)[0] == -37635
            continue
        assert codes.for_sw(sw)[0] == code, f"{sw:04X}"
    for sw, code in PUBLIC_JS_SW.items():
        assert codes.for_sw(sw)[0] == code, f"{sw:04X}"
    assert codes.for_sw(0x6E80)[0] == -26371      # SSCARDCtrl.cpp 95-100, SSCARD.js 686: 6Exx
    # SWs the public table does not list stay their negative decimal value.
    assert [codes.for_sw(sw)[0] for sw in (0x6901, 0x6985, 0x6C08, 0x6D00, 0x9302, 0x63C1)] == [
        -26881, -27013, -27656, -27904, -37634, -25537]


def test_code_table_has_every_public_code_with_its_text():
    for code, text, _sw in PUBLIC_RETURNMAP:
        code = -abs(code)                            # the source's "25538"
        ours = codes.message(code)
        if code == codes.PIN_WRONG:                  # N, the tries, is filled in from the SW
            assert ours == "PIN校验失败，剩余次数N次" and text.startswith(ours)
        elif code in (-25536, -25537, -25538):       # ours says which of "2、1、0" it is
            assert ours[:-2] in text and ours.endswith(f"{-25536 - code}次")
        else:
            assert "".join(ours.split()) == "".join(text.split()), code
    assert codes.for_sw(0x6700) == (-26369, "P1、 P2 与 Lc 不一致")
    assert codes.for_sw(0x6A86) == (-26370, "参数 P1、 P2 不正确")
    assert codes.for_sw(0x6E00) == (-26371, "CLA 错")
    assert codes.for_sw(0x6986) == (-26881, "命令不接受（无效状态）")


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


# -- thread safety ------------------------------------------------------------------------------
def _two_reader_driver() -> SSCardDriver:
    """Readers "R1" (contact, a 3.0 card) and "R2" (contactless, a 2.0 card): two simulated
    cards behind the driver's link to each reader, as two PC/SC readers would be."""
    from sbcard.compose import SessionOptions, make_link

    d = SSCardDriver(DriverConfig(contact_reader="R1", contactless_reader="R2",
                                  key_source="none"), pin_source=FixedPinSource("123456"))
    links = {"R1": make_link(SessionOptions(sim="v3")), "R2": make_link(SessionOptions(sim="demo"))}
    d._link = lambda reader: links[reader]
    return d


def test_hsm_steps_on_one_reader_while_another_reader_ends_its_steps():
    """Step2 on R1 looks for its pending Step1 among the cards left powered while a call on
    R2 ends R2's pending steps (a PIN verify powers R2's card off). Deterministic: the moment
    Step2 looks at R2's pending card, the R2 call runs to its end on another thread. Walking
    the live table there raised "dictionary changed size during iteration" (−999)."""
    import threading

    from sbcard.national import driver as driver_module

    d = _two_reader_driver()
    info = "519900D15600000500000001FFFFFFFF|A00000011|"          # the demo card in R2
    assert d.iReloadPIN_HSM_Step1(2, info)[0] == 0                 # R2: reload steps pending
    code, step1 = d.iReadCardBas_HSM_Step1(1)                      # R1: read steps pending
    assert code == 0
    assert [p.reader for p in d._pendings()] == ["R2", "R1"]     # R2's is looked at first

    r2_call: list[tuple[int, str]] = []
    r2_thread = threading.Thread(target=lambda: r2_call.append(d.iVerifyPIN(2)))
    r2_pending = d._pendings()[0]

    class LookedAt(driver_module._Pending):
        @property                                  # shadows the field while Step2 looks
        def family(self):
            if not r2_thread.is_alive() and not r2_call:
                r2_thread.start()
                r2_thread.join(timeout=10)          # an implementation that holds its lock
            return self.__dict__["family"]          # here lets R2 finish after this call

    r2_pending.__class__ = LookedAt
    result = d.iReadCardBas_HSM_Step2(read_step_key(step1))
    r2_thread.join(timeout=10)
    assert r2_call == [(0, "")]                    # R2's call ended R2's steps and verified
    assert result[0] == 0 and split_fields(result[1])[4] == "买买提·测试", result
    assert d._pendings() == []


# -- exact national strings: public samples ------------------------------------------------------
#: ``gdgly/SI_3rdCard`` ``docs/四川省社会保障卡读写机具规范2.0.doc`` §9.1.1.2, the iReadCardBas
#: example, as printed ("终端设备号" stands for the device number; the spec's note: "当没有终端
#: 设备号时，终端设备号返回空字符串").
SPEC_SAMPLE = ("639900|111111198101011110|X00000019|639900D15600000500BF7C7A48FB4966|张三|"
               "00814E43238697159900BF7C7A|1.00|20101001|20201001|410100813475|终端设备号|")


def test_ireadcardbas_is_the_spec_sample_line():
    sim = str(PERSONAS / "spec-sample.toml")
    sample = split_fields(SPEC_SAMPLE)
    code, line = driver(sim, terminal_number=sample[9]).iReadCardBas(3)
    assert (code, line) == (0, SPEC_SAMPLE.replace("|终端设备号|", "||"))
    code, line = driver(sim, terminal_number=sample[9], device_number="DEV-01").iReadCardBas(3)
    assert code == 0 and split_fields(line) == [*sample[:10], "DEV-01"]
    d = driver(sim, key_source="none", terminal_number=sample[9])   # the HSM way: same line
    code, step1 = d.iReadCardBas_HSM_Step1(1)
    assert code == 0 and split_fields(step1)[:4] == [
        "639900", "3B6D0000" + sample[5], "01", sample[3]]           # 1.0 card: DES (01)
    assert d.iReadCardBas_HSM_Step2(read_step_key(step1)) == (
        0, SPEC_SAMPLE.replace("|终端设备号|", "||"))


#: ``gdgly/SI_3rdCard`` ``docs/加密机方式指令流.txt``: the card's answers to the reader's first
#: commands (lines 1-14; the 卡号 of line 17 is the real card's and not copied).
TRACE_ATR = "3B6D000000814A444686605199000001AC"                                       # line 1
TRACE_EXCHANGES = (
    ("00A404000F7378312E73682EC9E7BBE1B1A3D5CF",
     "6F1C840F7378312E73682EC9E7BBE1B1A3D5CFA50988011E9F0C038601039000"),            # 3-4
    ("00A4020002EF05", "9000"),                                                        # 6-7
    ("00B2010012", "0110519900D15600000510000B26FFFFFFFF9000"),                        # 10-11
    ("00B2030006", "0304332E30309000"),                                                # 13-14
)
#: Its Step1: the card's four challenges (lines 25, 29, 37, 41: 内部原始信息, 内部过程因子,
#: 外部原始信息, 外部过程因子), the commands (lines 23-41) and the string sent to the HSM (45).
TRACE_CHALLENGES = ("DBF7A936D0D18C9E", "32D9E876ADB31BBF", "E603E2CAADAF02B6",
                    "98B4D293D091C331")
TRACE_STEP1_COMMANDS = ["0084000008", "0084000008",
                        "008800001032D9E876ADB31BBFDBF7A936D0D18C9E",
                        "0084000008", "0084000008"]
TRACE_STEP1 = ("519900|3B6D000000814A444686605199000001AC|03|519900D15600000510000B26FFFFFFFF|"
               "32D9E876ADB31BBF|DBF7A936D0D18C9E|98B4D293D091C331|E603E2CAADAF02B6|"
               "00000000000000000000000000000000|")


def test_trace_card_answers_the_traced_commands():
    from sbcard.compose import SessionOptions, make_link

    link = make_link(SessionOptions(sim=str(PERSONAS / "hsm-trace.toml")))
    link.connect()
    assert link.atr.hex().upper() == TRACE_ATR
    for command, answer in TRACE_EXCHANGES:
        assert link.transmit(bytes.fromhex(command)).hex().upper() == answer, command


def test_hsm_read_step1_is_the_traced_string(monkeypatch):
    """Step1 on the trace's card, the card drawing the trace's challenges: the string sent to
    the HSM is line 45 of the trace, byte for byte, and the commands are lines 23-41."""
    from sbcard.sim import card_os
    from sbcard.transport.base import TransportLayer

    challenges = [bytes.fromhex(c) for c in TRACE_CHALLENGES]
    monkeypatch.setattr(card_os.secrets, "token_bytes", lambda n: challenges.pop(0))
    d = driver(str(PERSONAS / "hsm-trace.toml"), key_source="none")
    sent: list[str] = []

    class Recording(TransportLayer):
        def transmit(self, command: bytes) -> bytes:
            sent.append(command.hex().upper())
            return super().transmit(command)

    real_link = d._link
    d._link = lambda reader: Recording(real_link(reader))
    assert d.iReadCardBas_HSM_Step1(1) == (0, TRACE_STEP1)
    # Line 31 writes INTERNAL AUTHENTICATE in its T=0 form, without Le (case 4 goes out as
    # case 3 and the answer comes by GET RESPONSE, ISO 7816-3 §12.2.4); sbcard's APDU carries
    # Le=00 as part 5 gives it (gdgly/SI_3rdCard "docs/社保卡指令文档资料_银海提供/第5部分
    # 命令.pdf" §6.7.2 表22).
    step1 = sent[sent.index("0084000008"):]
    assert step1[2] == TRACE_STEP1_COMMANDS[2] + "00"
    assert step1[:2] + step1[3:] == TRACE_STEP1_COMMANDS[:2] + TRACE_STEP1_COMMANDS[3:]
    assert challenges == []
    monkeypatch.undo()
    code, line = d.iReadCardBas_HSM_Step2(read_step_key(TRACE_STEP1))   # our keys' answers
    assert code == 0 and split_fields(line)[:4] == ["519900", "519900198503150021",
                                                    "A00000038", split_fields(TRACE_STEP1)[3]]
    assert split_fields(line)[5:7] == [TRACE_ATR[8:], "3.00"]
