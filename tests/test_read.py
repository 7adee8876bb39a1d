"""``sbcard read``: decoding real-shaped records, the read flow's APDU economy, the CLI."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from sbcard.apdu.trace import TraceRecord
from sbcard.card.elements import split_records
from sbcard.compose import SessionOptions, open_session
from sbcard.ops.read import SsseInfo, decode_records, read_card
from sbcard.transport.base import TransportLayer
from tests.cli_runner import run_cli

# The shape of the EF05/EF06 dump in spec §3.7 ([S16]); region, serial and holder synthetic.
EF05_DUMP = bytes.fromhex(
    "0110" "519900D156000005" "00000001" "FFFFFFFF"
    "020133"
    "0304322E3000"                                   # "2.0\0"
    "040C" "9156000002" "519900" "519900" "01"
    "050420140601"
    "060420240601"
    "0709" + b"D2143569X".hex()                      # the spec's card number example
)
EF06_DUMP = bytes.fromhex(
    "0812" + b"519900199001010015".hex()
    + "091E" + "B2E2CAD4D2BB" + "00" * 24            # 测试一, 00-padded
    + "4E14" + "00" * 20
    + "0A0132"
    + "0B01FF"
    + "0C03FFFFFF"
    + "0D04FFFFFFFF"
)
ATR = bytes.fromhex("3B6D000000814A44468660519900000001")


def decode(ef05: bytes, ef06: bytes, **kw):
    return decode_records(split_records(ef05), split_records(ef06), ATR, SsseInfo(b"", None), [],
                          today=dt.date(2026, 1, 1), **kw)


def test_spec_worked_example():
    r = decode(EF05_DUMP, EF06_DUMP)
    j = r.to_json()
    assert j["region_code"] == "519900"
    assert j["card_id"] == "519900D15600000500000001FFFFFFFF"
    assert j["spec_version"] == "2.0"
    assert j["init_org"] == "915600000251990051990001"
    assert j["issue_date"] == "2014-06-01" and j["expiry_date"] == "2024-06-01"
    assert j["card_no"] == "D2143569X"
    assert j["name"] == "测试一"
    assert j["sex"] == "2"
    assert j["ethnicity"] is None and j["birthplace"] is None and j["birth_date"] is None
    assert j["algorithm"].startswith("DES")                       # region rule: not 11xxxx
    assert any("expired on 2024-06-01" in w for w in j["warnings"])
    assert any("FFFFFFFF" in w for w in j["warnings"])
    assert not any("card number" in w.lower() and "check" in w.lower() for w in j["warnings"])


def test_bad_card_number_check_warns_not_fails():
    ef05 = EF05_DUMP.replace(b"D2143569X", b"D21435690")
    r = decode(ef05, EF06_DUMP)
    assert r.to_json()["card_no"] == "D21435690"
    assert any("卡号" in w and "check" in w for w in r.warnings)


def test_v3_version_ssn_with_x_and_minority_name():
    name = "买买提·测试".encode("gbk")
    ef05 = EF05_DUMP.replace(bytes.fromhex("0304322E3000"), b"\x03\x04" + b"3.00")
    ef06 = (bytes.fromhex("0812") + b"51990020010228001X"
            + bytes.fromhex("091E") + name.ljust(30, b"\0"))
    r = decode(ef05, ef06)
    j = r.to_json()
    assert j["spec_version"] == "3.00"
    assert j["ssn"] == "51990020010228001X"
    assert j["name"] == "买买提·测试"
    assert not any("社会保障号码" in w and "check" in w for w in j["warnings"])


def test_rare_gb18030_character_decodes_with_warning():
    name = "测\U00020000".encode("gb18030")
    ef06 = bytes.fromhex("091E") + name.ljust(30, b"\0")
    r = decode(EF05_DUMP, ef06)
    assert r.to_json()["name"] == "测\U00020000"
    assert any("GB18030" in w or "GBK" in w for w in r.warnings)


def test_long_name_joined_across_4e():
    head = ("测试" * 7 + "测").encode("gbk")          # 30 bytes
    tail = "试".encode("gbk")
    ef06 = (bytes.fromhex("091E") + head + bytes.fromhex("4E14") + tail.ljust(20, b"\0"))
    assert decode(EF05_DUMP, ef06).to_json()["name"] == "测试" * 8


def test_wrong_id_check_digit_warns():
    ef06 = bytes.fromhex("0812") + b"519900199001010016"
    r = decode(EF05_DUMP, ef06)
    assert r.to_json()["ssn"] == "519900199001010016"
    assert any("社会保障号码" in w for w in r.warnings)


def test_truncated_record_and_unknown_tag_are_reported():
    ef05 = EF05_DUMP + bytes.fromhex("EA0C4A5331323334")            # local tag, cut short
    r = decode(ef05, EF06_DUMP)
    assert any("claims 12 bytes but only 6 follow" in w for w in r.warnings)
    assert any("unknown record tag EA" in w for w in r.warnings)


def wire_count(persona: str) -> tuple[int, dict]:
    records: list[TraceRecord] = []
    with open_session(SessionOptions(sim=persona, on_record=records.append)) as ch:
        report = read_card(ch)
    return len(records), report.to_json()


def test_multi_record_read_takes_three_apdus():
    # SELECT, then one multi-record READ RECORD per EF with the exact Le of the card model's
    # records (tag, length, value): no 6Cxx (part 5 §6.10.4) and no re-send.
    n, j = wire_count("demo")
    assert n == 3
    assert j["name"] == "测试一" and j["card_no"] == "A00000011"


def test_records_unlike_the_model_are_still_read_after_6cxx():
    # A 1.0 layout (no 姓名扩展 4E): EF06's exact Le is too long, the card answers 6Cxx with
    # its length and the T=0 layer re-sends: one extra APDU for that EF, nothing lost.
    n, j = wire_count("v1")
    assert n == 4 and j["name"] == "测试二"


class _Iso6700(TransportLayer):
    """A card that refuses a wrong exact Le with 6700 (not 6Cxx) and answers Le=00 with the
    data, as a plain ISO 7816-4 card may."""

    def transmit(self, command: bytes) -> bytes:
        answer = self.inner.transmit(command)
        if command[1] != 0xB2 or len(command) != 5 or answer[-2] != 0x6C:
            return answer
        if command[4] == 0:
            return self.inner.transmit(command[:4] + answer[-1:])
        return bytes.fromhex("6700")


def test_card_answering_6700_to_a_wrong_exact_le_is_still_read():
    from sbcard.apdu.channel import ApduChannel
    from sbcard.apdu.t0 import T0Layer
    from sbcard.sim.persona import load_persona
    from sbcard.transport.simulated import SimulatedTransport

    link = T0Layer(_Iso6700(SimulatedTransport(load_persona("v1").build_card())))
    link.connect()
    report = read_card(ApduChannel(link)).to_json()
    assert report["name"] == "测试二" and report["sex"] == "2"


def test_card_with_61xx_select_and_6cxx_le_zero_still_reads():
    n, j = wire_count("t0quirks")
    assert j["name"] == "测试三" and j["ssn"] == "519900198506150027"
    # SELECT + GET RESPONSE, two refused multi-record reads, then one READ RECORD per tag
    # with the exact Le (so the Le=00 → 6Cxx quirk never costs a round trip).
    assert n == 1 + 1 + 2 + 14


def test_v1_layout_reads_by_identifier():
    _, j = wire_count("v1")
    assert j["name"] == "测试二" and j["sex"] == "2" and j["birth_date"] == "1988-11-22"
    assert j["spec_version"] is None
    assert any("treated as 1.0x" in w for w in j["warnings"])


def test_v3_without_key_source_reports_ef05_and_says_why():
    _, j = wire_count("v3")
    assert j["card_no"] == "C0000018X" and j["algorithm"].startswith("SM4")
    assert j["name"] is None
    assert any("RKSSSE" in w for w in j["warnings"])




def test_cli_json_keys_are_stable(capsys):
    code, out, _ = run_cli(capsys, "--sim", "read", "--json")
    assert code == 0
    keys = list(json.loads(out))
    assert keys[:17] == ["region_code", "card_id", "card_type", "spec_version", "init_org",
                         "issue_date", "expiry_date", "card_no", "ssn", "name", "sex",
                         "ethnicity", "birthplace", "birth_date", "atr", "atr_historical",
                         "algorithm"]
    assert "warnings" in keys


def test_cli_table_labels_bilingual(capsys):
    code, out, _ = run_cli(capsys, "--sim", "read")
    assert code == 0
    assert "姓名 Name" in out and "测试一" in out and "1 男 male" in out


def test_cli_ireadcardbas_line(capsys):
    code, out, _ = run_cli(capsys, "--sim", "--keys", "test", "read", "--format", "ireadcardbas")
    assert code == 0
    fields = out.strip().split("|")
    assert out.strip().endswith("|") and len(fields) == 12
    assert fields[0] == "519900" and fields[2] == "A00000011"
    assert fields[5] == "00814A44468660519900000001" and fields[7] == "20210601"
    assert fields[9] == "000000000000"
    assert fields[6] == "2.00"          # 规范版本 as the national samples print it ("N.00")


def test_cli_ireadcardbas_line_in_gbk(capsysbinary):
    """--encoding gbk: the line as the national DLL hands it over (GBK bytes, issue #11
    item 6); 买买提·测试 is C2F2 C2F2 CCE1 A1A4 B2E2 CAD4 in GB 2312/GBK (· = A1A4)."""
    from sbcard.cli.main import main

    with pytest.raises(SystemExit) as exc:
        main(["--sim", "v3", "--keys", "test", "read", "--format", "ireadcardbas",
              "--encoding", "gbk"])
    out, _ = capsysbinary.readouterr()
    assert exc.value.code == 0
    fields = out.rstrip(b"\r\n").split(b"|")
    assert fields[4] == bytes.fromhex("C2F2C2F2CCE1A1A4B2E2CAD4")
    assert fields[1] == b"51990020010228001X" and fields[6] == b"3.00"
    assert "买买提·测试".encode() not in out                  # not UTF-8


def test_cli_ireadcardbas_needs_authentication_and_never_prints_a_partial_line(capsys):
    # iReadCardBas authenticates the card before it answers (issue #11 item 6): without a
    # key source there is no line at all, only the national code on stderr.
    code, out, err = run_cli(capsys, "--sim", "v3", "read", "--format", "ireadcardbas")
    assert code == 8 and out == ""
    assert "-2201" in err and "无PSAM卡" in err


def test_cli_redact(capsys):
    _, out, _ = run_cli(capsys, "--sim", "read", "--redact", "--json")
    j = json.loads(out)
    assert j["ssn"] == "5199**********0015" and j["name"] == "测**"


def test_cli_bank_masked_unless_asked(capsys):
    _, out, _ = run_cli(capsys, "--sim", "read", "--bank", "--json")
    bank = json.loads(out)["bank"]
    assert bank["pan"] == "621700*********0016" and bank["expiry"] == "2031-06"
    _, out, _ = run_cli(capsys, "--sim", "read", "--bank", "--no-redact", "--json")
    assert json.loads(out)["bank"]["pan"] == "6217009999000000016"


def test_cli_redact_is_one_flag_for_every_field(capsys):
    """--redact masks ID number, name and PAN; --no-redact none; the default only the PAN."""
    _, out, _ = run_cli(capsys, "--sim", "read", "--bank", "--redact", "--json")
    j = json.loads(out)
    assert j["ssn"] == "5199**********0015" and j["name"] == "测**"
    assert j["bank"]["pan"] == "621700*********0016"
    _, out, _ = run_cli(capsys, "--sim", "read", "--bank", "--no-redact", "--json")
    j = json.loads(out)
    assert j["ssn"] == "519900199001010015" and j["bank"]["pan"] == "6217009999000000016"
    code, out, err = run_cli(capsys, "--sim", "read", "--redact", "--format", "ireadcardbas")
    assert code == 2 and "--redact/--no-redact do(es) not go with" in err and out == ""


@pytest.mark.parametrize("fmt", ["table", "ireadcardbas"])
def test_cli_json_with_another_format_is_refused(capsys, fmt):
    code, out, err = run_cli(capsys, "--sim", "read", "--json", "--format", fmt)
    assert code == 2 and "--json and --format" in err
    assert json.loads(out)["exit_code"] == 2          # --json: the error object on stdout
    code, out, _ = run_cli(capsys, "--sim", "read", "--json", "--format", "json")
    assert code == 0 and json.loads(out)["ssn"]


def test_cli_bank_absent(capsys):
    code, out, _ = run_cli(capsys, "--sim", "v1", "read", "--bank", "--json")
    assert code == 0
    assert json.loads(out)["bank"]["pan"] is None


def test_cli_v3_exit_code_and_photo_refused(capsys, tmp_path):
    code, _, _ = run_cli(capsys, "--sim", "v3", "read")
    assert code == 5
    code, out, err = run_cli(capsys, "--sim", "demo", "read", "--photo", str(tmp_path / "p.jpg"))
    # the holder data is still read and shown; the photo row says why there is no file
    assert code == 5 and "needs a key source" in err and "--keys" in err
    assert "519900199001010015" in out and "照片 Photo" in out
    assert not (tmp_path / "p.jpg").exists()


def test_cli_photo_on_a_card_without_one_says_so(capsys, tmp_path):
    code, out, err = run_cli(capsys, "--sim", "demo", "--keys", "test", "read", "--json",
                             "--photo", str(tmp_path / "p.jpg"))
    assert code == 1 and "holds no photo" in err
    assert json.loads(out)["photo"]["file"] is None
    assert not (tmp_path / "p.jpg").exists()


def test_cli_photo_dash_goes_to_stdout(capsysbinary):
    from sbcard.cli.main import main

    with pytest.raises(SystemExit) as exc:
        main(["--sim", "v3", "--keys", "test", "read", "--json", "--photo", "-"])
    out, err = capsysbinary.readouterr()
    assert exc.value.code == 0
    assert out.startswith(b"\xff\xd8") and out.rstrip(b"\x00").endswith(b"\xff\xd9")
    assert b'"file": "-"' in err and f'"bytes": {len(out)}'.encode() in err   # JSON: stderr


def test_read_no_redact_unmasks_output_and_trace(capsys):
    """`read --no-redact`: full PAN in the output and the holder unmasked in the trace; the
    default masks the holder in the trace only; `sbcard --no-redact` only the trace."""
    name_hex = "测试一".encode("gbk").hex().upper()
    code, out, err = run_cli(capsys, "--sim", "--trace", "read", "--no-redact", "--bank",
                             "--json")
    assert code == 0 and json.loads(out)["bank"]["pan"] == "6217009999000000016"
    assert name_hex in err
    code, out, err = run_cli(capsys, "--sim", "--trace", "read", "--bank", "--json")
    assert json.loads(out)["ssn"] == "519900199001010015" and name_hex not in err
    assert json.loads(out)["bank"]["pan"] == "621700*********0016"
    code, out, err = run_cli(capsys, "--sim", "--trace", "--no-redact", "read", "--bank",
                             "--json")
    assert name_hex in err and json.loads(out)["bank"]["pan"] == "621700*********0016"
