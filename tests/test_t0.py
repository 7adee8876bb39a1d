import pytest

from sbcard.apdu.t0 import T0Layer
from sbcard.compose import SessionOptions, open_session
from sbcard.errors import TransportError
from tests.fakes import ScriptedTransport

SELECT_SSSE = bytes.fromhex("00A404000F7378312E73682EC9E7BBE1B1A3D5CF00")


def test_case1_and_case3_pass_through():
    inner = ScriptedTransport("9000", "6A82")
    t = T0Layer(inner)
    assert t.transmit(bytes.fromhex("00A40000")) == bytes.fromhex("9000")
    assert t.transmit(bytes.fromhex("00A4020002EF09")) == bytes.fromhex("6A82")
    assert len(inner.sent) == 2


def test_chained_61xx_collects_every_byte():
    inner = ScriptedTransport("6110", "00112233445566778899AABBCCDDEEFF6104", "CAFEBABE9000")
    out = T0Layer(inner).transmit(SELECT_SSSE)
    assert out == bytes.fromhex("00112233445566778899AABBCCDDEEFFCAFEBABE9000")
    assert inner.sent[1] == bytes.fromhex("00C0000010")
    assert inner.sent[2] == bytes.fromhex("00C0000004")


def test_61xx_with_data_in_first_answer_is_kept():
    inner = ScriptedTransport("AABB6102", "CCDD9000")
    assert T0Layer(inner).transmit(SELECT_SSSE) == bytes.fromhex("AABBCCDD9000")


def test_6cxx_resends_with_right_le():
    inner = ScriptedTransport("6C0B", "0709413030303030303131" + "9000")
    out = T0Layer(inner).transmit(bytes.fromhex("00B2072C00"))
    assert out.endswith(bytes.fromhex("9000")) and len(out) == 13
    assert inner.sent == [bytes.fromhex("00B2072C00"), bytes.fromhex("00B2072C0B")]


def test_6cxx_then_61xx_case4():
    inner = ScriptedTransport("6C08", "6108", "01020304050607089000")
    out = T0Layer(inner).transmit(bytes.fromhex("0088000002AABB00"))
    assert out == bytes.fromhex("01020304050607089000")
    assert inner.sent[1] == bytes.fromhex("0088000002AABB08")


def test_6cxx_without_le_is_returned_untouched():
    inner = ScriptedTransport("6C08")
    assert T0Layer(inner).transmit(bytes.fromhex("00A4020002EF05")) == bytes.fromhex("6C08")
    assert len(inner.sent) == 1


def test_get_response_answered_6cxx():
    inner = ScriptedTransport("6110", "6C04", "112233449000")
    assert T0Layer(inner).transmit(SELECT_SSSE) == bytes.fromhex("112233449000")
    assert inner.sent[2] == bytes.fromhex("00C0000004")


def test_endless_61xx_is_an_error_not_a_hang():
    inner = ScriptedTransport(*(["6101"] + ["006101"] * 10))
    with pytest.raises(TransportError, match="kept answering 61xx"):
        T0Layer(inner, max_rounds=5).transmit(SELECT_SSSE)


def test_card_that_answers_61xx_to_select():
    """The t0quirks persona answers SELECT with 61xx; the layer fetches the FCI."""
    raw = []
    with open_session(SessionOptions(sim="t0quirks", raw=True)) as ch:
        raw.append(ch.transport.transmit(SELECT_SSSE))
    assert raw[0][0] == 0x61
    with open_session(SessionOptions(sim="t0quirks")) as ch:
        fci = ch.transport.transmit(SELECT_SSSE)
    assert fci[0] == 0x6F and fci[-2:] == b"\x90\x00"
    assert len(fci) - 2 == raw[0][1]


@pytest.mark.parametrize("command", [
    "0020000003123456FF",          # VERIFY (with an Le a tool may add): spends a try
    "805E00000812345678123456FF",  # CHANGE PIN
    "805E0100061234560000FF",      # RELOAD PIN
    "802C000008AABBCCDDEEFF0011FF",  # UNBLOCK
    "008200000811223344556677880F",  # EXTERNAL AUTHENTICATE
    "00DC0108050801020304FF",      # UPDATE RECORD
    "04D682000411223344FF",        # UPDATE BINARY with MAC
])
def test_6cxx_to_a_state_changing_command_is_reported_never_resent(command):
    inner = ScriptedTransport("6C02", "01029000")
    out = T0Layer(inner).transmit(bytes.fromhex(command))
    assert out == bytes.fromhex("6C02")
    assert inner.sent == [bytes.fromhex(command)]      # one typed APDU, one at the card


def test_sbcard_apdu_sends_a_verify_exactly_once(capsys, monkeypatch):
    """Through the CLI: a VERIFY with a wrong Le reaches the card once, 6Cxx is shown."""
    import sbcard.sim.persona as persona_mod
    from tests.cli_runner import run_cli

    seen: list[bytes] = []
    original = persona_mod.Persona.build_card

    def build(self):
        card = original(self)

        def six_c(_card, cmd):
            if cmd.ins == 0x20:
                seen.append(bytes(cmd.data))
                return (b"", 0x6C00)
            return None

        card.command_hooks.append(six_c)
        return card

    monkeypatch.setattr(persona_mod.Persona, "build_card", build)
    code, out, err = run_cli(capsys, "--sim", "apdu", "0020000003123456FF")
    assert len(seen) == 1, (out, err)
    assert code == 5 and "6C00" in out
    assert "visible to other users" in err
