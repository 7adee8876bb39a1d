from sbcard.apdu.redact import mask_command, mask_pan_digits, mask_response
from sbcard.apdu.trace import TraceLayer
from tests.fakes import ScriptedTransport


def test_verify_pin_is_masked():
    assert mask_command(bytes.fromhex("0020000003123456")) == "0020000003******"


def test_change_pin_and_psam_cipher_are_masked():
    assert "123456" not in mask_command(bytes.fromhex("805E010007123456FF654321"))
    assert mask_command(bytes.fromhex("80FA00000803123456800000")) == "80FA000008" + "*" * 14


def test_le_after_masked_data_stays_visible():
    assert mask_command(bytes.fromhex("0020000002123400")) == "0020000002****00"


def test_plain_commands_are_untouched():
    apdu = "00A404000F7378312E73682EC9E7BBE1B1A3D5CF"
    assert mask_command(bytes.fromhex(apdu)) == apdu


def test_pan_masked_in_record_template():
    pan = "6217001234567890123F"
    resp = bytes.fromhex("70" + "11" + "5A0A" + pan + "5F2402" + "3012" + "9000")
    text = mask_response(resp)
    assert "1234567890" not in text
    assert "621700*********0123F" in text
    assert text.endswith("9000")


def test_track2_masked_up_to_separator():
    resp = bytes.fromhex("70" + "0E" + "570C" + "6217001234567890123D2912" + "9000")
    text = mask_response(resp)
    assert "621700*********0123D2912" in text


def test_non_template_responses_not_scanned():
    resp = bytes.fromhex("5A0A6217001234567890123F9000")
    assert mask_response(resp) == resp.hex().upper()


def test_mask_pan_short():
    assert mask_pan_digits("12345") == "*****"


def test_trace_layer_records_and_prints():
    lines, records = [], []
    t = TraceLayer(ScriptedTransport("63C2"), lines.append, records.append)
    t.transmit(bytes.fromhex("0020000003123456"))
    assert records[0].command == "0020000003******"
    assert records[0].sw == 0x63C2 and records[0].command_len == 8
    text = "\n".join(lines)
    assert "123456" not in text
    assert "2 tries left" in text
