"""Key sources and the authentication flows against the simulated card."""

from __future__ import annotations

import json
import os
import sys

import pytest

from sbcard.apdu import commands as cmds
from sbcard.apdu.channel import ApduChannel
from sbcard.apdu.sw import AuthFailedError, BlockedError, CardError
from sbcard.apdu.t0 import T0Layer
from sbcard.card.filesystem import KEY_RKSSSE, KEY_UKSSSE, SSSE_NAME
from sbcard.compose import SessionOptions, open_session
from sbcard.crypto.symmetric import Algorithm
from sbcard.errors import BadInputError, MismatchError, RefusedError
from sbcard.keys.base import CardContext
from sbcard.keys.builtin import builtin_key_file
from sbcard.keys.hsm import HsmError, HsmStepSource, stdio_exchange
from sbcard.keys.hsm_command import command_exchange
from sbcard.keys.keyfile import KeyFile, key_check_value
from sbcard.ops.auth import external_authenticate, internal_authenticate
from sbcard.ops.read import read_card
from sbcard.sim.persona import load_persona
from sbcard.transport.simulated import SimulatedTransport
from tests.cli_runner import run_cli

OTHER_ROOT = "00112233445566778899AABBCCDDEEFF"


def channel_for(persona: str):
    p = load_persona(persona)
    card = p.build_card()
    t = T0Layer(SimulatedTransport(card))   # as sessions build it (ops/session.stack)
    t.connect()
    ch = ApduChannel(t)
    ch.check(cmds.select_by_name(SSSE_NAME))
    ctx = CardContext(p.atr, p.card["region"], Algorithm[p.algorithm])
    return card, ch, ctx


def other_keys(*ids: int, algorithm: str = "SM4") -> KeyFile:
    return KeyFile.from_mapping({"key": [
        {"name": f"k{i:02X}", "card_key_id": f"{i:02X}", "algorithm": algorithm,
         "value": OTHER_ROOT} for i in ids]})


def test_rkssse_unlocks_ef06_on_v3():
    card, ch, ctx = channel_for("v3")
    assert ch.send(cmds.read_record(8, sfi=6, mode=cmds.RecordMode.FIRST_ID)).sw == 0x6982
    external_authenticate(ch, builtin_key_file(), ctx, KEY_RKSSSE)
    assert ch.send(cmds.read_record(8, sfi=6, mode=cmds.RecordMode.FIRST_ID)).ok
    assert KEY_RKSSSE in card.authenticated


def test_des_card_too():
    card, ch, ctx = channel_for("demo")
    external_authenticate(ch, builtin_key_file(), ctx, KEY_UKSSSE)
    assert KEY_UKSSSE in card.authenticated


def test_wrong_keys_stopped_by_internal_auth_before_spending_a_try():
    card, ch, ctx = channel_for("v3")
    state = card.auth
    before = state.keys[KEY_RKSSSE].tries
    with pytest.raises(MismatchError, match="internal authentication failed"):
        external_authenticate(ch, other_keys(0x00, 0x0A), ctx, KEY_RKSSSE)
    assert state.keys[KEY_RKSSSE].tries == before


def test_wrong_key_without_irk_spends_one_try_and_says_so():
    card, ch, ctx = channel_for("v3")
    state = card.auth
    with pytest.raises(AuthFailedError) as err:
        external_authenticate(ch, other_keys(0x0A), ctx, KEY_RKSSSE)
    assert err.value.tries_left == 14 and state.keys[KEY_RKSSSE].tries == 14
    state.keys[KEY_RKSSSE].tries = 1
    with pytest.raises(BlockedError):
        external_authenticate(ch, other_keys(0x0A), ctx, KEY_RKSSSE)
    with pytest.raises(BlockedError):            # blocked now, even with the right key
        external_authenticate(ch, builtin_key_file(), ctx, KEY_RKSSSE, precheck=False)


def test_missing_key_refused_before_any_apdu():
    card, ch, ctx = channel_for("v3")
    count = card.apdu_count
    with pytest.raises(RefusedError, match="no key for card key 0A"):
        external_authenticate(ch, other_keys(0x04), ctx, KEY_RKSSSE)
    assert card.apdu_count == count


def test_card_side_errors():
    _, ch, _ctx = channel_for("v3")
    a = bytes(8)
    assert ch.send(cmds.external_authenticate(0x0A, a, a)).sw == 0x6984   # no challenge
    ch.check(cmds.get_challenge())
    assert ch.send(cmds.external_authenticate(0x3C, a, a)).sw == 0x6A88   # unknown key
    ch.check(cmds.get_challenge())
    ch.send(cmds.external_authenticate(0x0A, a, a))
    assert ch.send(cmds.external_authenticate(0x0A, a, a)).sw == 0x6984   # challenge used up


def test_internal_auth_genuine_and_not():
    _, ch, ctx = channel_for("demo")
    internal_authenticate(ch, builtin_key_file(), ctx)
    with pytest.raises(MismatchError):
        internal_authenticate(ch, other_keys(0x00, algorithm="DES"), ctx)


def test_read_v3_with_keys():
    with open_session(SessionOptions(sim="v3")) as ch:
        j = read_card(ch, keys=builtin_key_file()).to_json()
    assert j["name"] == "买买提·测试" and not j["warnings"]


# -- key file ------------------------------------------------------------------------------

def write_keyfile(tmp_path, body: str, mode: int = 0o600):
    f = tmp_path / "keys.toml"
    f.write_text(body, encoding="utf-8")
    os.chmod(f, mode)
    return f


def test_keyfile_refuses_world_readable(tmp_path):
    f = write_keyfile(tmp_path, '[[key]]\ncard_key_id="0A"\nalgorithm="SM4"\n'
                                f'value="{OTHER_ROOT}"\n', 0o644)
    with pytest.raises(RefusedError, match="chmod 600"):
        KeyFile.load(f)


def test_keyfile_kcv_and_errors(tmp_path):
    good = key_check_value(Algorithm.SM4, bytes.fromhex(OTHER_ROOT))
    f = write_keyfile(tmp_path, '[[key]]\ncard_key_id="0A"\nalgorithm="SM4"\n'
                                f'value="{OTHER_ROOT}"\nkcv="{good}"\n')
    assert KeyFile.load(f).has_key(0x0A)
    f = write_keyfile(tmp_path, '[[key]]\ncard_key_id="0A"\nalgorithm="SM4"\n'
                                f'value="{OTHER_ROOT}"\nkcv="000000"\n')
    with pytest.raises(BadInputError, match="key check value does not match"):
        KeyFile.load(f)
    f = write_keyfile(tmp_path, '[[key]]\ncard_key_id="0A"\nalgorithm="SM4"\nvalue="0011"\n')
    with pytest.raises(BadInputError) as err:
        KeyFile.load(f)
    assert "0011" not in str(err.value)                 # no key bytes in messages
    assert str(err.value).endswith("[[key]] #1: SM4 key value must be 16 bytes, got 2")
    assert str(err.value).count("[[key]]") == 1         # the place is named once
    f = write_keyfile(tmp_path, '[[key]]\ncard_key_id="0A"\nalgorithm="SM4"\n'
                                f'value="{OTHER_ROOT[:-2]}ZZ"\n')
    with pytest.raises(BadInputError) as err:
        KeyFile.load(f)
    assert str(err.value).endswith("[[key]] #1: value: 'Z' at position 31 is not a hex digit")
    assert OTHER_ROOT[:8] not in str(err.value)
    with pytest.raises(BadInputError, match="no such file"):
        KeyFile.load(tmp_path / "nope.toml")


def test_keyfile_warns_on_test_keys(tmp_path):
    f = write_keyfile(tmp_path, '[[key]]\ncard_key_id="0A"\nalgorithm="SM4"\n'
                                'value="11111111111111111111111111111111"\n')
    seen: list[str] = []
    KeyFile.load(f, warn=seen.append)
    assert seen and "TEST keys" in seen[0]


def test_root_repr_hides_key():
    root = builtin_key_file().roots[0]
    assert root.value.hex().upper() not in repr(root)


# -- HSM step mode -------------------------------------------------------------------------

def test_hsm_step_source_matches_key_file():
    from tests.fake_hsm import answer

    hsm = HsmStepSource(answer, {0x0A: "004C", 0x00: "0170"})
    keys = builtin_key_file()
    p = load_persona("v3")
    ctx = CardContext(p.atr, "519900", Algorithm.SM4)
    r, x = bytes(range(8)), bytes(range(8, 16))
    assert hsm.auth_data(ctx, 0x0A, r, x) == keys.auth_data(ctx, 0x0A, r, x)
    assert hsm.internal_auth_expected(ctx, r, x) == keys.internal_auth_expected(ctx, r, x)
    assert hsm.mac(ctx, 0x0A, r, b"\x84\x24\x00\x00\x04") == keys.mac(ctx, 0x0A, r,
                                                                         b"\x84\x24\x00\x00\x04")
    assert not hsm.has_key(0x04)


def test_hsm_command_through_card():
    exchange = command_exchange(f"{sys.executable} -m tests.fake_hsm")
    card, ch, ctx = channel_for("v3")
    external_authenticate(ch, HsmStepSource(exchange), ctx, KEY_RKSSSE)
    assert KEY_RKSSSE in card.authenticated


def test_hsm_errors_are_one_line():
    with pytest.raises(HsmError, match="not found"):
        command_exchange("/nonexistent/hsm")({"step": "mac"})
    lines = iter(["not json\n"])
    written: list[str] = []
    ex = stdio_exchange(lambda: next(lines), written.append)
    with pytest.raises(HsmError, match="not JSON"):
        ex({"step": "mac"})
    assert written[0].startswith("HSM-REQUEST {")
    from tests.fake_hsm import answer

    hsm = HsmStepSource(answer)
    ctx = CardContext(load_persona("v3").atr, "519900", Algorithm.SM4)
    with pytest.raises(HsmError, match="refused external_auth for key 0D"):
        hsm.auth_data(ctx, 0x0D, bytes(8), bytes(8))


# -- CLI -----------------------------------------------------------------------------------



def test_cli_read_v3_with_test_keys(capsys):
    code, out, err = run_cli(capsys, "--sim", "v3", "--keys", "test", "read", "--json")
    assert code == 0, err
    assert json.loads(out)["name"] == "买买提·测试"
    assert "TEST keys" in err


def test_cli_read_v3_with_hsm_command(capsys):
    code, out, err = run_cli(capsys, "--sim", "v3", "--hsm-command",
                         f"{sys.executable} -m tests.fake_hsm", "read", "--json")
    assert code == 0, err
    assert json.loads(out)["ssn"] == "51990020010228001X"


def test_cli_two_key_sources_refused(capsys):
    code, _, err = run_cli(capsys, "--sim", "v3", "--keys", "test", "--hsm-stdio", "read")
    assert code == 3 and "give one key source" in err


def test_cli_photo_with_keys(capsys, tmp_path):
    photo = tmp_path / "photo.jpg"
    code, out, _ = run_cli(capsys, "--sim", "v3", "--keys", "test", "read", "--photo", str(photo))
    assert code == 0 and "114 bytes" in out      # v3.toml: the EOI ends at 114
    assert photo.read_bytes().startswith(b"\xff\xd8") and photo.read_bytes().endswith(b"\xff\xd9")


def test_cli_trace_of_authenticated_read_has_no_key(capsys):
    code, _, err = run_cli(capsys, "--sim", "v3", "--keys", "test", "--trace", "read")
    assert code == 0
    for root in builtin_key_file().roots:
        assert root.value.hex().upper() not in err
    assert ">> 0082000A10" in err                      # the authentication is visible


def test_card_error_messages_carry_command_names():
    err = CardError.for_sw(0x6982, "READ RECORD EF06")
    assert "READ RECORD EF06" in str(err)


def test_application_block_with_mac_then_9303():
    from sbcard.apdu.sw import BlockedError as Blocked
    from sbcard.ops.pin import block_application
    from sbcard.ops.read import read_context

    _card, ch, _ = channel_for("demo")
    ctx = read_context(ch)
    from sbcard.card.filesystem import KEY_BK

    bad = cmds.CommandApdu(0x84, 0x1E, 0x00, 0x01, bytes(4))
    ch.check(cmds.get_challenge())
    assert ch.send(bad).sw == 0x6982            # no BK external authentication (part 7 §13)
    external_authenticate(ch, builtin_key_file(), ctx, KEY_BK)
    ch.check(cmds.get_challenge())
    assert ch.send(bad).sw == 0x6988                         # wrong MAC: refused
    block_application(ch, builtin_key_file(), ctx)
    assert ch.send(cmds.select_by_name(SSSE_NAME)).sw == 0x9303
    assert ch.send(cmds.verify_query()).sw == 0x9303        # everything in SSSE now
    with pytest.raises(Blocked):
        ch.check(cmds.read_record(7, sfi=5, mode=cmds.RecordMode.FIRST_ID))


def test_card_block_with_mac_then_6a81():
    from sbcard.card.filesystem import KEY_BK, KEY_STK
    from sbcard.ops.read import read_context

    card, ch, _ = channel_for("demo")
    ctx = read_context(ch)
    keys = builtin_key_file()
    external_authenticate(ch, keys, ctx, KEY_BK)        # lock control key first (part 7 §13)
    challenge = ch.check(cmds.get_challenge()).data
    header = bytes((0x84, 0x16, 0x00, 0x00, 0x04))
    mac = keys.mac(ctx, KEY_STK, challenge, header)
    ch.check(cmds.CommandApdu(0x84, 0x16, 0x00, 0x00, mac))
    assert card.card_blocked
    assert ch.send(cmds.select_by_name(SSSE_NAME)).sw == 0x6A81


def test_secured_update_record_with_mac_needs_no_prior_auth():
    from sbcard.card.elements import BY_KEY
    from sbcard.card.filesystem import KEY_UKSSSE
    from sbcard.ops.auth import send_with_mac
    from sbcard.ops.read import read_context

    card, ch, _ = channel_for("demo")
    ctx = read_context(ch)
    keys = builtin_key_file()
    record = BY_KEY["sex"].encode_record("2")
    plain = cmds.update_record(0x0A, record, sfi=6, mode=cmds.RecordMode.FIRST_ID)
    assert ch.send(plain).sw == 0x6982                      # not authenticated
    secured = cmds.CommandApdu(0x04, 0xDC, plain.p1, plain.p2, record, name="UPDATE RECORD")
    send_with_mac(ch, keys, ctx, KEY_UKSSSE, secured)
    assert ch.check(cmds.read_record(0x0A, sfi=6, mode=cmds.RecordMode.FIRST_ID)).data == record
    assert KEY_UKSSSE not in card.authenticated             # granted for that command only
    assert ch.send(plain).sw == 0x6982


def test_secured_update_bad_mac_and_no_challenge():
    _, ch, _ = channel_for("demo")
    bad = cmds.CommandApdu(0x04, 0xDC, 0x0A, 0x30, bytes.fromhex("0A0132") + bytes(4))
    assert ch.send(bad).sw == 0x6984                        # no challenge
    ch.check(cmds.get_challenge())
    assert ch.send(bad).sw == 0x6988                        # wrong MAC


def test_script_write_element_with_mac(tmp_path):
    from sbcard.compose import SessionOptions, open_session
    from sbcard.ops.script import ScriptContext, ScriptRunner, parse_script
    from sbcard.ops.script_ops import OPERATIONS

    p = tmp_path / "s.apdu"
    p.write_text("select-ssse\nwrite-element name 测试五 mac\nread-element name expect 测试五\n",
                 encoding="utf-8")
    with open_session(SessionOptions(sim="demo")) as ch:
        ScriptRunner(ch, ScriptContext(keys=builtin_key_file(), operations=OPERATIONS)).run(
            parse_script(p))


def test_hsm_by_hand_pairs_each_answer_with_its_request():
    # Two reader workers asking at once: the operator answers the request they last saw.
    import threading
    import time

    written: list[str] = []

    def operator_answers() -> str:
        time.sleep(0.001)                                   # the operator types
        last = json.loads(written[-1].removeprefix("HSM-REQUEST "))
        return json.dumps({"answer_to": last["n"]}) + "\n"

    ex = stdio_exchange(operator_answers, written.append)
    mismatches: list[tuple[int, object]] = []

    def worker(base: int) -> None:
        for n in range(base, base + 20):
            got = ex({"n": n})["answer_to"]
            if got != n:
                mismatches.append((n, got))

    threads = [threading.Thread(target=worker, args=(b,)) for b in (0, 100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert mismatches == [] and len(written) == 40


def test_simulated_card_derives_a_key_when_it_first_uses_it():
    """Building a card derives none of its ~55 keys (it cost more than personalising the
    card, docs/benchmarks.md); the one an EXTERNAL AUTHENTICATE names is derived then, to
    the issuer's diversified value, and its retry counter works as before."""
    card, ch, ctx = channel_for("v3")
    state = card.auth
    assert len(state.keys) > 20 and not any(k.derived for k in state.keys.values())
    external_authenticate(ch, builtin_key_file(), ctx, KEY_RKSSSE)
    used = {kid for kid, k in state.keys.items() if k.derived}
    assert KEY_RKSSSE in used and len(used) <= 2            # RKSSSE, and IRK for the check
    root = next(r for r in builtin_key_file().roots
                if r.card_key_id == KEY_RKSSSE and r.algorithm is Algorithm.SM4
                and r.version is None)
    assert state.keys[KEY_RKSSSE].value == root.card_key(ctx)
    assert state.keys[KEY_RKSSSE].tries == state.keys[KEY_RKSSSE].max_tries
    assert root.card_key(ctx).hex().upper() not in repr(state.keys[KEY_RKSSSE]).upper()
