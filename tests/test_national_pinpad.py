"""The reader's PIN pad (PC/SC part 10) for iVerifyPIN and iChangePIN, Python API and C library.

The reader is tests/pinpad_reader.py: it fills the driver's templates as a CCID reader does and
sends the result to the simulated card, so the card checks a real VERIFY (part 5 §6.14) or
CHANGE PIN (part 5 §6.3, ``80 5E 01 00 Lc old ‖ FF ‖ new``). The demo card's PIN is 123456,
3 tries.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from sbcard.national import codes
from sbcard.national.config import DriverConfig
from sbcard.national.driver import SSCardDriver
from sbcard.national.pinpad import (
    RELOAD_REFUSED,
    change_apdu,
    modify_structure,
    verify_structure,
)
from sbcard.national.pinsource import FixedPinSource
from tests.pinpad_reader import CANCEL, SITECUSTOMIZE, TIMEOUT, ScriptedPinPad

ROOT = Path(__file__).resolve().parents[1]
OLD, NEW = "123456", "654321"


def pad_driver(*keys: str, modify: bool = True, sim: str = "demo", **config
               ) -> tuple[SSCardDriver, ScriptedPinPad]:
    d = SSCardDriver(DriverConfig(sim=sim, pin_source="pinpad", **config))
    pad = ScriptedPinPad(keys, modify=modify)
    bare = d._link
    d._link = lambda reader: pad.attach(bare(reader))   # type: ignore[method-assign]
    return d, pad


# -- the structures ---------------------------------------------------------------------------
def test_modify_structure_bytes():
    # pcsc-lite PCSC/reader.h PIN_MODIFY_STRUCTURE, field by field, then part 5 table 10's APDU
    assert modify_structure() == bytes.fromhex(
        "1E 1E"         # bTimerOut, bTimerOut2: 30 s
        "81"            # bmFormatString: bytes, position 0, left, BCD
        "03"            # bmPINBlockString: no length field, 3-byte block
        "00"            # bmPINLengthFormat
        "00 04"         # bInsertionOffsetOld 0, bInsertionOffsetNew 4 (after old ‖ FF)
        "06 06"         # wPINMaxExtraDigit 0606: exactly 6 digits
        "03"            # bConfirmPIN: current PIN + new PIN confirmed
        "02"            # bEntryValidationCondition: validation key
        "03"            # bNumberMessage
        "04 08"         # wLangId 0x0804 zh-CN
        "00 01 02"      # bMsgIndex1..3
        "00 00 00"      # bTeoPrologue
        "0C 00 00 00"   # ulDataLength 12
        "80 5E 01 00 07 FF FF FF FF FF FF FF")
    assert verify_structure()[19:] == bytes.fromhex("0020000003FFFFFF")


@pytest.mark.skipif(not Path("/usr/include/PCSC/reader.h").is_file() or not shutil.which("gcc"),
                    reason="needs pcsc-lite's reader.h and gcc")
def test_modify_structure_matches_pcsc_lite_reader_h(tmp_path):
    # The same values written through the C struct: offsets and packing as pcscd passes it on.
    source = tmp_path / "modify.c"
    source.write_text(r"""
        #include <stdio.h>
        #include <string.h>
        #include <PCSC/wintypes.h>
        #include <PCSC/reader.h>
        int main(void) {
            unsigned char buf[64]; PIN_MODIFY_STRUCTURE *m = (PIN_MODIFY_STRUCTURE *)buf;
            memset(buf, 0, sizeof buf);
            m->bTimerOut = 30; m->bTimerOut2 = 30; m->bmFormatString = 0x81;
            m->bmPINBlockString = 3; m->bmPINLengthFormat = 0; m->bInsertionOffsetOld = 0;
            m->bInsertionOffsetNew = 4; m->wPINMaxExtraDigit = 0x0606; m->bConfirmPIN = 3;
            m->bEntryValidationCondition = 2; m->bNumberMessage = 3; m->wLangId = 0x0804;
            m->bMsgIndex1 = 0; m->bMsgIndex2 = 1; m->bMsgIndex3 = 2; m->ulDataLength = 12;
            for (size_t i = 0; i < sizeof *m; i++) printf("%02X", buf[i]);
            printf("\n");
            return 0;
        }
    """)
    exe = tmp_path / "modify"
    subprocess.run(["gcc", "-I/usr/include/PCSC", "-o", str(exe), str(source)], check=True)
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.strip()
    assert bytes.fromhex(out) == modify_structure()[:24]


class CardLink:
    """A card that records what it is sent and says 9000."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def transmit(self, apdu: bytes) -> bytes:
        self.sent.append(apdu)
        return b"\x90\x00"


def test_odd_digit_pins_keep_the_cn_padding_nibble():
    # part 5 §6.3.1: only the low nibble of the last byte is padded with F
    card = CardLink()
    pad = ScriptedPinPad(["12345", "54321", "54321"]).attach(card)
    assert pad.control(pad.features[7], modify_structure(digits=5)) == b"\x90\x00"
    assert card.sent == [bytes.fromhex("805E010007 12345F FF 54321F")]
    assert change_apdu(5) == bytes.fromhex("805E010007FFFFFFFFFFFFFF")


def test_reader_answers_in_the_one_code_table():
    assert codes.for_pin_pad(0x6400) == (codes.PIN_TIMEOUT, "密码输入操作超时")
    assert codes.for_pin_pad(0x6401) == (codes.PIN_CANCELLED, "用户取消密码输入")
    assert codes.for_pin_pad(0x6402)[0] == codes.PIN_DIFFERENT
    assert codes.for_pin_pad(0x6403)[0] == codes.PIN_LENGTH
    assert codes.for_pin_pad(0x6B80)[0] == codes.UNSUPPORTED
    assert codes.for_pin_pad(0x63C2) == (codes.PIN_WRONG, "PIN校验失败，剩余次数2次")
    assert codes.for_pin_pad(0x63C0)[0] == codes.for_pin_pad(0x6983)[0] == codes.PIN_LOCKED
    assert codes.for_pin_pad(0x6A81)[0] == -0x6A81


# -- iVerifyPIN on the pad -----------------------------------------------------------------------
@pytest.mark.parametrize(("typed", "code"), [(OLD, 0), (NEW, -51), (CANCEL, -31), (TIMEOUT, -32),
                                             ("1234", -33)])
def test_verify_pin_on_the_reader_pin_pad(typed, code):
    d, pad = pad_driver(typed)
    assert d.iVerifyPIN(1)[0] == code
    assert pad.structures == [verify_structure()]          # the host sent no digit
    sent = [bytes.fromhex("0020000003") + bytes.fromhex(typed)] if code in (0, -51) else []
    assert pad.to_card == sent


def test_pin_pad_without_a_reader_feature_is_unsupported():
    d = SSCardDriver(DriverConfig(sim="demo", pin_source="pinpad"))   # the sim link: no control
    assert d.iVerifyPIN(1)[0] == codes.UNSUPPORTED
    assert d.iChangePIN(1)[0] == codes.UNSUPPORTED


# -- iChangePIN on the pad -----------------------------------------------------------------------
def test_change_pin_on_the_pad():
    d, pad = pad_driver(OLD, NEW, NEW)
    assert d.iChangePIN(1) == (0, "")
    assert pad.prompts == 3
    assert pad.structures == [modify_structure()]          # templates only: no PIN
    # the card got a real CHANGE PIN, built by the reader at the offsets of the structure
    assert pad.to_card == [bytes.fromhex(f"805E010007{OLD}FF{NEW}")]
    pad.keys = [OLD]
    assert d.iVerifyPIN(1) == (codes.PIN_WRONG, codes.pin_wrong_message(2))
    pad.keys = [NEW]
    assert d.iVerifyPIN(1) == (0, "")


def test_change_pin_with_a_wrong_old_pin_on_the_pad():
    d, pad = pad_driver("111111", NEW, NEW)
    assert d.iChangePIN(1) == (codes.PIN_WRONG, codes.pin_wrong_message(2))   # 63C2
    assert pad.to_card == [bytes.fromhex(f"805E010007111111FF{NEW}")]
    pad.keys = [OLD]
    assert d.iVerifyPIN(1) == (0, "")                  # the PIN did not change; tries back


@pytest.mark.parametrize(("keys", "code", "prompts"), [
    ([CANCEL], codes.PIN_CANCELLED, 1),
    ([OLD, NEW, CANCEL], codes.PIN_CANCELLED, 3),
    ([], codes.PIN_TIMEOUT, 1),
    ([OLD, TIMEOUT], codes.PIN_TIMEOUT, 2),
    ([OLD, NEW, "654322"], codes.PIN_DIFFERENT, 3),     # the reader compares: 6402
    (["1234"], codes.PIN_LENGTH, 1),                     # fewer digits than 0606 allows: 6403
])
def test_change_pin_ended_on_the_pad_sends_nothing(keys, code, prompts):
    d, pad = pad_driver(*keys)
    assert d.iChangePIN(1) == (code, codes.message(code))
    assert pad.prompts == prompts and pad.to_card == []
    pad.keys = [OLD]
    assert d.iVerifyPIN(1) == (0, "")


def test_change_pin_on_a_pad_without_modify_is_a_clear_error():
    d, pad = pad_driver(OLD, NEW, NEW, modify=False)
    code, text = d.iChangePIN(1)
    assert code == codes.UNSUPPORTED and "FEATURE_MODIFY_PIN_DIRECT" in text
    assert text.startswith(codes.message(codes.UNSUPPORTED))
    assert pad.structures == [] and pad.prompts == 0
    assert d.iVerifyPIN(1) == (0, "")                  # the same reader still verifies (tag 06)


def test_last_try_guard_before_the_pad_is_asked():
    d, pad = pad_driver(*["111111", NEW, NEW] * 3)
    assert d.iChangePIN(1) == (codes.PIN_WRONG, codes.pin_wrong_message(2))
    assert d.iChangePIN(1) == (codes.PIN_WRONG, codes.pin_wrong_message(1))
    code, text = d.iChangePIN(1)
    assert code == codes.PIN_CANCELLED and "仅剩1次" in text
    assert len(pad.structures) == 2 and pad.prompts == 6    # the third never reached the pad
    assert d.iVerifyPIN(1)[0] == codes.PIN_CANCELLED        # same guard for verify
    assert len(pad.structures) == 2


def test_without_the_guard_the_last_wrong_old_pin_locks():
    d, _pad = pad_driver(*["111111", NEW, NEW] * 4, pin_guard=False)
    assert [d.iChangePIN(1)[0] for _ in range(4)] == [-51, -51, codes.PIN_LOCKED,
                                                       codes.PIN_LOCKED]   # 63C0, then blocked


# -- PIN reload and unblock with the pad as PIN source --------------------------------------------
def test_reload_refused_with_the_pad_unblock_works():
    d, pad = pad_driver(key_source="keys", keys="test")
    info_line = SSCardDriver(DriverConfig(sim="demo", key_source="keys", keys="test")
                             ).iReadCardBas(1)[1].split("|")
    info = f"{info_line[3]}|{info_line[2]}|"
    assert d.iReloadPIN(1, info) == (codes.UNSUPPORTED, RELOAD_REFUSED)
    assert d.iReloadPIN_HSM_Step1(1, info) == (codes.UNSUPPORTED, RELOAD_REFUSED)
    assert pad.structures == [] and pad.to_card == []
    assert d.iUnblockPIN(1, info) == (0, "")             # needs no PIN at all
    d._pin_source = FixedPinSource(OLD)
    assert d.iVerifyPIN(1) == (0, "")                    # reload refused before the card


# -- the C library -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def native(tmp_path_factory) -> tuple[Path, Path]:
    from tests.native.build import build_caller, build_library

    out = tmp_path_factory.mktemp("native")
    return build_library(out), build_caller(out)


@pytest.fixture(scope="module")
def pad_site(tmp_path_factory) -> Path:
    """A sitecustomize that puts the scripted pad in front of the C library's card."""
    site = tmp_path_factory.mktemp("pad_site")
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
    return site


@pytest.mark.parametrize(("script", "calls", "expected"), [
    (f"{OLD},{NEW},{NEW},{NEW}", ["iChangePIN", "iVerifyPIN"], ["0", "", "0", ""]),
    (f"111111,{NEW},{NEW},{OLD}", ["iChangePIN", "iVerifyPIN"],
     ["-51", codes.pin_wrong_message(2), "0", ""]),
    (f"{OLD},{CANCEL}", ["iChangePIN"], ["-31", codes.message(codes.PIN_CANCELLED)]),
    (f"{OLD},{NEW}", ["iChangePIN"], ["-32", codes.message(codes.PIN_TIMEOUT)]),
    (f"modify=no,{OLD},{NEW},{NEW}", ["iChangePIN"], ["-13", None]),
    (",".join(["111111", NEW, NEW] * 3), ["iChangePIN"] * 3,
     ["-51", codes.pin_wrong_message(2), "-51", codes.pin_wrong_message(1), "-31", None]),
])
def test_c_ichangepin_on_the_pad(native, pad_site, script, calls, expected):
    from tests.test_national_native import c_call

    lines = c_call(native, "seq", "1", *calls, SBCARD_SIM="demo", SBCARD_PIN_SOURCE="pinpad",
                   SBCARD_TEST_PINPAD=script, PYTHONPATH=f"{pad_site}:{ROOT}")
    assert len(lines) == len(expected)
    for got, want in zip(lines, expected, strict=True):
        assert want is None or got == want
    if script.startswith("modify=no"):
        assert "FEATURE_MODIFY_PIN_DIRECT" in lines[1]
    if len(calls) == 3:
        assert "仅剩1次" in lines[5]
