"""The simulated PSAM command by command, and the PSAM key source against the key file.

The key file (software diversification) is the reference: for the same TEST roots the PSAM
must give byte-identical cryptograms, and the simulated user card must accept them.
"""

from __future__ import annotations

import secrets
import threading
import time

import pytest

from sbcard.apdu import commands as cmds
from sbcard.apdu.channel import ApduChannel
from sbcard.apdu.sw import CardError, NotFoundError
from sbcard.apdu.t0 import T0Layer
from sbcard.apdu.trace import TraceLayer
from sbcard.card.filesystem import SSSE_NAME
from sbcard.card.profiles import load_profile
from sbcard.compose import SessionOptions, open_psam, open_session
from sbcard.crypto import card_algos
from sbcard.crypto.symmetric import Algorithm, pad_iso9797_m2, xor_bytes
from sbcard.errors import BadInputError
from sbcard.keys.base import CardContext, KeySource
from sbcard.keys.builtin import builtin_key_file
from sbcard.keys.keyfile import KeyFile
from sbcard.keys.psam import (
    PSAM_AID,
    PSAM_DDF_NAMES,
    PsamKeySource,
)
from sbcard.sim.persona import load_persona
from sbcard.sim.psam import (
    builtin_psam_personas,
    load_psam_persona,
    psam_persona_from_mapping,
)
from sbcard.transport.simulated import SimulatedTransport

DES_DDF = PSAM_DDF_NAMES[Algorithm.DES]
SM4_DDF = PSAM_DDF_NAMES[Algorithm.SM4]
CARD_KEYS = (0x00, 0x02, 0x04, 0x06, 0x0A)
MAC_KEYS = (0x02, 0x04, 0x06)                # usage type 8 (MAC+encryption) in the profile



def _run_together(work, arguments: list[tuple]) -> None:
    """Run ``work(*args)`` for each argument tuple in its own thread, all at once."""
    threads = [threading.Thread(target=work, args=args) for args in arguments]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

def hexs(data: bytes) -> str:
    return data.hex().upper()


def select(name: bytes) -> str:
    return f"00A40400{len(name):02X}{hexs(name)}00"


# -- fixtures ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def keyfile() -> KeyFile:
    return builtin_key_file()


def card_ctx(persona: str, algorithm: Algorithm) -> CardContext:
    p = load_persona(persona)
    return CardContext(p.atr, p.card["region"], algorithm)


DES_CTX = card_ctx("demo", Algorithm.DES)
SM4_CTX = card_ctx("v3", Algorithm.SM4)


def psam_link(persona: str = "default"):
    psam = load_psam_persona(persona).build()
    t = SimulatedTransport(psam, f"psam {persona}")
    t.connect()
    return psam, t


def tx(t, apdu: str) -> str:
    return hexs(t.transmit(bytes.fromhex(apdu)))


def enter(t, ddf: bytes = DES_DDF) -> None:
    assert tx(t, select(ddf)).endswith("9000")
    assert tx(t, select(PSAM_AID)).endswith("9000")


def bfde(t, usage: int, key_id: int, data: bytes) -> str:
    return tx(t, f"BFDE{usage:02X}{key_id:02X}{len(data):02X}{hexs(data)}")


def cipher(t, p1: int, data: bytes) -> str:
    return tx(t, f"80FA{p1:02X}00{len(data):02X}{hexs(data)}")


def source(persona: str = "default", *, trace: list[str] | None = None, **kw) -> PsamKeySource:
    psam = load_psam_persona(persona).build()
    link = SimulatedTransport(psam, f"psam {persona}")
    transport = T0Layer(TraceLayer(link, trace.append) if trace is not None else link)
    transport.connect()
    return PsamKeySource(ApduChannel(transport), on_close=transport.disconnect, **kw)


# -- the PSAM card ---------------------------------------------------------------------------

def test_atr_and_builtin_personas():
    psam, t = psam_link()
    assert t.atr == psam.atr and t.atr[:4] == bytes.fromhex("3B6D0000") and len(t.atr) == 17
    assert {"default", "city", "t0quirks"} <= set(builtin_psam_personas())
    assert load_psam_persona("psam:default").name == "default"


def test_select_ddfs_adf_and_read_files():
    _, t = psam_link()
    fci = tx(t, select(DES_DDF))
    assert fci.startswith("6F") and hexs(DES_DDF) in fci and fci.endswith("9000")
    assert tx(t, "00B0960006") == "5199000000019000"            # 0016 by SFI
    info = tx(t, "00B0950000")
    assert info == "01" + "51990000000000000001" + "0101" + "0000" + "9000"
    assert tx(t, select(SM4_DDF)).endswith("9000")
    assert tx(t, "00A4020002001600") == "9000"                  # SELECT EF, then offset read
    assert tx(t, "00B0000006") == "5199000000019000"
    assert tx(t, "00B0000206") == "00000001" + "6282"              # 4 bytes left from offset 2
    assert tx(t, "00A4000002DF0100").endswith("9000")            # ADF by FID
    assert tx(t, select(PSAM_AID)).endswith("9000")              # and by AID
    assert tx(t, "00A4000002DF0200") == "6A82"
    assert tx(t, "00A4040006D1560000059900") == "6A82"
    assert tx(t, "00B0000000") == "6986"                         # no current EF after SELECT
    assert tx(t, "00B0970000") == "6A82"                         # no EF with SFI 17
    assert tx(t, "00A4000000").endswith("9000")                   # back to the MF
    assert tx(t, "0084000008") == "6D00"
    assert tx(t, "80B0960006") == "6E00"


def test_read_binary_short_file_and_offsets():
    _, t = psam_link()
    assert tx(t, "00B0960206") == "00000001" + "6282"
    assert tx(t, "00B0960700") == "6B00"


def test_delivery_session_key_errors():
    _, t = psam_link()
    r = secrets.token_bytes(8)
    factors = DES_CTX.card_factor + DES_CTX.city_factor
    assert bfde(t, 0x47, 0x0A, factors + r) == "6985"           # no ADF selected yet
    enter(t)
    assert bfde(t, 0x47, 0x0A, factors + r) == "9000"
    assert bfde(t, 0x47, 0x0A, DES_CTX.card_factor + r) == "6A80"   # one factor, usage says 2
    assert bfde(t, 0x27, 0x0A, DES_CTX.card_factor + r) == "6A80"   # root is 2 levels up
    assert bfde(t, 0x27, 0x0A, factors + r) == "6A80"           # usage says 1, 2 factors
    assert bfde(t, 0x67, 0x0A, factors + DES_CTX.province_factor + r) == "6A80"
    assert bfde(t, 0x47, 0x7E, factors + r) == "6A88"           # unknown key ID
    assert bfde(t, 0x46, 0x0A, factors + r) == "6A88"           # right ID, other usage type
    assert bfde(t, 0x47, 0x0A, factors + r[:4]) == "6700"       # not factors ‖ one block
    assert tx(t, "00DE470A08" + hexs(r)) == "6E00"


def test_cipher_data_needs_a_session_key():
    _, t = psam_link()
    enter(t)
    assert cipher(t, 0x00, bytes(8)) == "6985"
    assert cipher(t, 0x05, bytes(16)) == "6985"
    bfde(t, 0x47, 0x0A, DES_CTX.card_factor + DES_CTX.city_factor + bytes(8))
    assert cipher(t, 0x00, bytes(8)).endswith("9000")
    enter(t, SM4_DDF)                                            # another DF: key forgotten
    assert cipher(t, 0x00, bytes(16)) == "6985"


@pytest.mark.parametrize(("ctx", "ddf"), [(DES_CTX, DES_DDF), (SM4_CTX, SM4_DDF)],
                         ids=["DES", "SM4"])
def test_cipher_data_matches_card_algos(keyfile, ctx, ddf):
    _, t = psam_link()
    enter(t, ddf)
    size = ctx.algorithm.block_size
    challenge = secrets.token_bytes(8)
    sk = card_algos.session_key(ctx.algorithm, keyfile.root(0x02, ctx.algorithm).card_key(ctx),
                                challenge)
    factor = card_algos.pad_challenge(ctx.algorithm, challenge)
    assert bfde(t, 0x48, 0x09, ctx.card_factor + ctx.city_factor + factor) == "9000"
    field = b"\x03\x12\x34\x56"
    block = pad_iso9797_m2(field, size)
    assert cipher(t, 0x00, block) == hexs(card_algos.encrypt_field(ctx.algorithm, sk,
                                                                   field[1:])) + "9000"
    assert cipher(t, 0x02, block) == hexs(card_algos.encrypt_field(ctx.algorithm, sk,
                                                                   field[1:])) + "9000"
    data = bytes.fromhex("842400010C") + secrets.token_bytes(2 * size)     # 3 padded blocks
    mac = hexs(card_algos.mac(ctx.algorithm, sk, data))
    padded = pad_iso9797_m2(data, size)
    assert cipher(t, 0x05, bytes(size) + padded) == mac + "9000"       # single command
    assert cipher(t, 0x07, bytes(size) + padded[:size]) == "9000"       # first part
    assert cipher(t, 0x03, padded[size:2 * size]) == "9000"              # next part
    assert cipher(t, 0x01, padded[2 * size:]) == mac + "9000"            # last part
    assert cipher(t, 0x07, bytes(size)) == "9000"                        # IV alone, then all
    assert cipher(t, 0x01, padded) == mac + "9000"
    iv = secrets.token_bytes(size)
    assert cipher(t, 0x05, iv + padded) == hexs(card_algos.mac(ctx.algorithm, sk, data, iv)) \
        + "9000"


def test_cipher_data_malformed():
    _, t = psam_link()
    enter(t)
    bfde(t, 0x48, 0x09, DES_CTX.card_factor + DES_CTX.city_factor + bytes(8))
    assert cipher(t, 0x01, bytes(8)) == "6985"                  # last part without a first
    assert cipher(t, 0x03, bytes(8)) == "6985"
    assert cipher(t, 0x00, bytes(7)) == "6700"                  # not whole blocks
    assert cipher(t, 0x05, bytes(8)) == "6700"                  # IV but no data
    assert cipher(t, 0x04, bytes(16)) == "6A86"
    assert tx(t, "80FA000108" + "00" * 8) == "6A86"
    assert cipher(t, 0x07, bytes(16)) == "9000"
    assert cipher(t, 0x00, bytes(8)).endswith("9000")           # encrypting ends the chain
    assert cipher(t, 0x01, bytes(8)) == "6985"


def test_usage_type_limits_what_a_key_does():
    _, t = psam_link()
    enter(t)
    bfde(t, 0x47, 0x0A, DES_CTX.card_factor + DES_CTX.city_factor + bytes(8))
    assert cipher(t, 0x05, bytes(16)) == "6985"                 # type 7: encryption only
    lenient = psam_persona_from_mapping({"behaviour": {"enforce_usage": False}}).build()
    t2 = SimulatedTransport(lenient)
    t2.connect()
    enter(t2)
    bfde(t2, 0x47, 0x0A, DES_CTX.card_factor + DES_CTX.city_factor + bytes(8))
    assert cipher(t2, 0x05, bytes(16)).endswith("9000")


def test_power_cycle_forgets_everything():
    psam, t = psam_link()
    enter(t)
    bfde(t, 0x47, 0x0A, DES_CTX.card_factor + DES_CTX.city_factor + bytes(8))
    t.reset()
    assert psam.session is None and psam.current_df is psam.mf
    assert bfde(t, 0x47, 0x0A, DES_CTX.card_factor + DES_CTX.city_factor + bytes(8)) == "6985"


def test_t0_quirk_answers_61xx_to_cipher_data():
    _, t = psam_link("t0quirks")
    assert tx(t, select(DES_DDF)).startswith("61")
    tx(t, select(PSAM_AID))
    bfde(t, 0x47, 0x0A, DES_CTX.card_factor + DES_CTX.city_factor + bytes(8))
    assert cipher(t, 0x00, bytes(8)) == "6108"
    assert tx(t, "00C0000008").endswith("9000") and len(tx(t, "00C0000008")) == 4
    assert cipher(t, 0x00, bytes(8)) == "6108"
    assert tx(t, "00C0000010") == "6C08"


def test_sm4_only_psam_has_a_plain_mf():
    psam = psam_persona_from_mapping({"keys": {"environments": ["SM4"]}}).build()
    t = SimulatedTransport(psam)
    t.connect()
    assert tx(t, select(DES_DDF)) == "6A82"
    enter(t, SM4_DDF)
    factor = card_algos.pad_challenge(Algorithm.SM4, bytes(8))
    assert bfde(t, 0x47, 0x0A, SM4_CTX.card_factor + SM4_CTX.city_factor + factor) == "9000"


def test_bad_psam_personas():
    """One line each, in the card profile loader's style: ``PSAM persona X: [section] key:``."""
    with pytest.raises(BadInputError, match="no PSAM persona 'nope'"):
        load_psam_persona("nope")
    with pytest.raises(BadInputError, match=r"<psam persona>: unknown key\(s\) colour"):
        psam_persona_from_mapping({"colour": "red"})
    with pytest.raises(BadInputError, match=r"\[keys\]: unknown key\(s\) colour"):
        psam_persona_from_mapping({"keys": {"colour": "red"}})
    with pytest.raises(BadInputError, match="terminal: must be 12 digits"):
        psam_persona_from_mapping({"terminal": "5199"})
    with pytest.raises(BadInputError,
                       match=r"\[keys\] environments: must be DES and/or SM4"):
        psam_persona_from_mapping({"keys": {"environments": ["SSF33"]}})
    with pytest.raises(BadInputError, match=r"\[keys\] levels: must be 1\.\.2"):
        psam_persona_from_mapping({"keys": {"levels": 3}})
    with pytest.raises(BadInputError, match=r"\[keys\] card_keys: must be hex"):
        psam_persona_from_mapping({"keys": {"card_keys": ["zz"]}})
    with pytest.raises(BadInputError, match=r"atr: 'Z' at position 1"):
        psam_persona_from_mapping({"atr": "ZZ"})
    with pytest.raises(BadInputError,
                       match=r"\[behaviour\] enforce_usage: must be true or false"):
        psam_persona_from_mapping({"behaviour": {"enforce_usage": "no"}})
    with pytest.raises(BadInputError, match=r"\[behaviour\]: unknown key\(s\) loud"):
        psam_persona_from_mapping({"behaviour": {"loud": True}})


def test_psam_key_repr_hides_key_bytes(keyfile):
    persona = load_psam_persona("default")
    shown = repr(persona.keys) + repr(persona)
    for root in keyfile.roots:
        assert root.value.hex() not in shown.lower()


# -- the key source against the key file ---------------------------------------------------

@pytest.mark.parametrize("ctx", [DES_CTX, SM4_CTX], ids=["DES-demo", "SM4-v3"])
@pytest.mark.parametrize("persona", ["default", "city", "t0quirks"])
def test_key_source_equals_key_file(keyfile, ctx, persona):
    psam = source(persona)
    try:
        for key_id in CARD_KEYS:
            challenge, x = secrets.token_bytes(8), secrets.token_bytes(8)
            assert psam.auth_data(ctx, key_id, challenge, x) == \
                keyfile.auth_data(ctx, key_id, challenge, x)
        r1, r2 = secrets.token_bytes(8), secrets.token_bytes(8)
        assert psam.internal_auth_expected(ctx, r1, r2) == keyfile.internal_auth_expected(
            ctx, r1, r2)
        for key_id in MAC_KEYS:
            for n in (0, 5, 8, 15, 16, 100, 250, 600):
                data, challenge = secrets.token_bytes(n), secrets.token_bytes(8)
                assert psam.mac(ctx, key_id, challenge, data) == keyfile.mac(
                    ctx, key_id, challenge, data), n
            for n in (3, 7, 8, 15, 31, 200, 255):
                data, challenge = secrets.token_bytes(n), secrets.token_bytes(8)
                assert psam.encrypt(ctx, key_id, challenge, data) == keyfile.encrypt(
                    ctx, key_id, challenge, data), n
        four = secrets.token_bytes(4)
        assert psam.auth_data(ctx, 0x0A, four, bytes(8)) == keyfile.auth_data(
            ctx, 0x0A, four, bytes(8))
    finally:
        psam.close()


def test_key_source_apdus_are_the_specs():
    trace: list[str] = []
    psam = source(trace=trace)
    challenge, x = bytes.fromhex("1122334455667788"), bytes.fromhex("0102030405060708")
    psam.auth_data(SM4_CTX, 0x04, challenge, x)
    sent = [line.split()[1] for line in trace if line.startswith(">>")]
    assert sent == [
        "00A404000F" + hexs(SM4_DDF) + "00",                    # DDF of the card's environment
        "00B0960006",                                           # 终端机编号, once
        "00A4040006" + hexs(PSAM_AID) + "00",                   # ADF
        "BFDE481220" + hexs(SM4_CTX.card_factor + SM4_CTX.city_factor)
        + "1122334455667788" + "00" * 8,                        # UKSSSE 48 12, 2 levels
        "80FA000010" + "**" * 16 + "00",                        # X ‖ 00×8 (masked in traces)
    ]
    trace.clear()
    psam.auth_data(SM4_CTX, 0x04, challenge, x)                  # environment kept
    assert [line.split()[1][:4] for line in trace if line.startswith(">>")] == ["BFDE", "80FA"]
    trace.clear()
    psam.auth_data(DES_CTX, 0x0A, challenge, x)                  # switching selects again
    sent = [line.split()[1] for line in trace if line.startswith(">>")]
    assert sent[:2] == ["00A404000F" + hexs(DES_DDF) + "00", "00A4040006" + hexs(PSAM_AID) + "00"]
    assert sent[2].startswith("BFDE470A18")


def test_long_mac_and_field_are_chained(keyfile):
    trace: list[str] = []
    psam = source(trace=trace, max_data=32)
    data, challenge = secrets.token_bytes(70), secrets.token_bytes(8)
    psam.terminal_number  # noqa: B018 - environment set up before tracing the chain
    trace.clear()
    assert psam.mac(SM4_CTX, 0x02, challenge, data) == keyfile.mac(SM4_CTX, 0x02, challenge,
                                                                   data)
    p1s = [line.split()[1][:6] for line in trace if line.startswith(">>")][3:]
    assert p1s == ["80FA07", "80FA03", "80FA01"]                 # 16 IV + 80 data in 32s
    trace.clear()
    assert psam.encrypt(DES_CTX, 0x02, challenge, data) == keyfile.encrypt(
        DES_CTX, 0x02, challenge, data)
    p1s = [line.split()[1][:6] for line in trace if line.startswith(">>") and "80FA" in line]
    assert p1s == ["80FA02", "80FA02", "80FA00"]


def test_terminal_number_and_has_key():
    psam = source()
    assert psam.terminal_number == "519900000001"
    assert psam.has_key(0x0A) and psam.has_key(0x00)
    assert psam.has_key(0x05)                  # BK: [psam_keys] "05" ([S9] appendix B.2)
    assert not psam.has_key(0x0D)              # a regional key: not in [psam_keys]
    with pytest.raises(BadInputError, match="maps no PSAM key to card key 0D"):
        psam.auth_data(DES_CTX, 0x0D, bytes(8), bytes(8))
    psam.close()
    psam.close()


def test_unknown_psam_key_and_missing_environment():
    psam = source()
    psam.key_map[0x0A] = type(psam.key_map[0x0A])(0x0A, 7, 0x7E, "nowhere")
    with pytest.raises(NotFoundError, match="6A88"):
        psam.auth_data(DES_CTX, 0x0A, bytes(8), bytes(8))
    sm4_only = psam_persona_from_mapping({"keys": {"environments": ["SM4"]}}).build()
    link = SimulatedTransport(sm4_only)
    link.connect()
    psam = PsamKeySource(ApduChannel(link))
    assert psam.terminal_number == "519900000001"                # falls back to the SM4 DDF
    with pytest.raises(NotFoundError, match=r"SELECT PSAM DDF sx1\.sh\.社会保障: .*6A82"):
        psam.auth_data(DES_CTX, 0x0A, bytes(8), bytes(8))
    assert len(psam.auth_data(SM4_CTX, 0x0A, bytes(8), bytes(8))) == 8


def test_errors_carry_no_key_material(keyfile):
    psam = source()
    try:
        psam.auth_data(DES_CTX, 0x0A, bytes(16), bytes(8))
    except BadInputError as exc:
        text = str(exc)
    else:
        raise AssertionError("a 16-byte DES challenge must be refused")
    assert "\n" not in text and "challenge" in text
    for root in keyfile.roots:
        assert root.value.hex().upper() not in text.upper()


# -- level retry -----------------------------------------------------------------------------

def test_levels_tried_2_then_1_and_remembered(keyfile):
    trace: list[str] = []
    psam = source("city", trace=trace)
    psam.terminal_number  # noqa: B018
    trace.clear()
    challenge, x = secrets.token_bytes(8), secrets.token_bytes(8)
    assert psam.auth_data(DES_CTX, 0x0A, challenge, x) == keyfile.auth_data(DES_CTX, 0x0A,
                                                                            challenge, x)
    sent = [line.split()[1][:6] for line in trace if line.startswith(">>")]
    assert sent == ["BFDE47", "BFDE27", "80FA00"]
    assert psam.levels_used(Algorithm.DES, 0x0A) == 1
    trace.clear()
    psam.auth_data(DES_CTX, 0x0A, challenge, x)
    assert [line.split()[1][:6] for line in trace if line.startswith(">>")] == \
        ["BFDE27", "80FA00"]


def test_three_level_roots(tmp_path):
    root = "00112233445566778899AABBCCDDEEFF"
    text = "".join(
        f'[[key]]\nname = "K{kid}"\ncard_key_id = "{kid}"\nalgorithm = "{alg}"\nlevels = 3\n'
        f'value = "{root}"\n'
        for kid in ("0A", "00") for alg in ("DES", "SM4"))
    path = tmp_path / "national.toml"
    path.write_text(text)
    path.chmod(0o600)
    national = KeyFile.load(path, warn=lambda _m: None)
    persona = psam_persona_from_mapping({"keys": {"file": str(path)}}, "national")
    link = SimulatedTransport(persona.build())
    trace: list[str] = []
    transport = TraceLayer(link, trace.append)
    transport.connect()
    psam = PsamKeySource(ApduChannel(transport))
    for ctx in (DES_CTX, SM4_CTX):
        challenge, x = secrets.token_bytes(8), secrets.token_bytes(8)
        assert psam.auth_data(ctx, 0x0A, challenge, x) == national.auth_data(ctx, 0x0A,
                                                                             challenge, x)
        assert psam.levels_used(ctx.algorithm, 0x0A) == 3
    bfdes = [line.split()[1][:6] for line in trace if ">> BFDE" in line]
    assert bfdes[:3] == ["BFDE47", "BFDE27", "BFDE67"]


def test_no_level_count_fits():
    # A PSAM whose RKSSSE sits under an unexpected usage byte: every count is refused.
    persona = load_psam_persona("default")
    psam_card = persona.build()
    adf = psam_card.mf.children[0]
    for (kind, kid), key in list(adf.keys.items()):
        if kid == 0x0A:
            adf.keys[(kind, kid)] = type(key)(0x87, kid, key.algorithm, key.value, key.name)
    link = SimulatedTransport(psam_card)
    link.connect()
    psam = PsamKeySource(ApduChannel(link))
    with pytest.raises(CardError, match="refused with 2, 1 and 3 levels"):
        psam.auth_data(DES_CTX, 0x0A, bytes(8), bytes(8))


# -- against the simulated user card ---------------------------------------------------------

READ_SSN = cmds.read_record(0x08, sfi=0x06, mode=cmds.RecordMode.FIRST_ID)   # 00B2083000


def open_ef06_with_psam(card: ApduChannel, psam: PsamKeySource) -> bytes:
    """On the v3 simulated card: EF06 refused, then the PSAM's cryptograms (checked against
    the key file's) pass internal and external authentication and the SSN record reads."""
    card.check(cmds.select_by_name(SSSE_NAME))
    assert card.send(READ_SSN).sw == 0x6982
    ctx = CardContext(card.atr, "519900", Algorithm.SM4)
    r1, r2 = secrets.token_bytes(8), secrets.token_bytes(8)
    answer = card.check(cmds.internal_authenticate(r1, r2)).data
    assert answer == psam.internal_auth_expected(ctx, r1, r2)
    x = secrets.token_bytes(8)
    challenge = card.check(cmds.get_challenge(8)).data
    a = psam.auth_data(ctx, 0x0A, challenge, x)
    assert a == builtin_key_file().auth_data(ctx, 0x0A, challenge, x)
    card.check(cmds.external_authenticate(0x0A, a, x))
    return card.check(READ_SSN).data


def test_psam_cryptogram_opens_ef06_on_a_3_0_card():
    with open_session(SessionOptions(sim="v3")) as card:
        psam = open_psam(SessionOptions(sim="psam:default"))
        try:
            assert open_ef06_with_psam(card, psam) == bytes((0x08, 0x12)) + b"51990020010228001X"
        finally:
            psam.close()


def test_wrong_cryptogram_is_refused_by_the_card():
    with open_session(SessionOptions(sim="v3")) as card:
        card.check(cmds.select_by_name(SSSE_NAME))
        psam = open_psam(SessionOptions(sim="default"))
        ctx = CardContext(card.atr, "519900", Algorithm.SM4)
        challenge = card.check(cmds.get_challenge(8)).data
        a = psam.auth_data(ctx, 0x04, challenge, bytes(8))           # UKSSSE's, sent as 0A
        assert card.send(cmds.external_authenticate(0x0A, a, bytes(8))).sw & 0xFFF0 == 0x63C0
        psam.close()


@pytest.mark.parametrize(("persona", "algorithm"), [("demo", Algorithm.DES),
                                                   ("v3", Algorithm.SM4)])
def test_pin_reload_with_psam_cryptograms(persona, algorithm):
    """PUK external authentication, then 84 24 00 01 enc(PIN) ‖ MAC all computed by the PSAM."""
    with open_session(SessionOptions(sim=persona)) as card:
        card.check(cmds.select_by_name(SSSE_NAME))
        psam = open_psam(SessionOptions(sim="psam:t0quirks"))
        ctx = CardContext(card.atr, "519900", algorithm)
        x = secrets.token_bytes(8)
        challenge = card.check(cmds.get_challenge(8)).data
        card.check(cmds.external_authenticate(0x06, psam.auth_data(ctx, 0x06, challenge, x), x))
        challenge = card.check(cmds.get_challenge(8)).data
        enc = psam.encrypt(ctx, 0x02, challenge, bytes.fromhex("654321"))
        header = bytes.fromhex("84240001") + bytes((len(enc) + 4,))
        mac = psam.mac(ctx, 0x02, challenge, header + enc)
        card.check(cmds.CommandApdu(0x84, 0x24, 0x00, 0x01, enc + mac))
        card.check(cmds.verify(bytes.fromhex("654321")))
        psam.close()


def test_auth_data_reduction_is_the_specs():
    """SM4: A = T[0:8] ⊕ T[8:16] of E_SK(X ‖ 00×8), computed here from the PSAM's raw 80FA."""
    _, t = psam_link()
    enter(t, SM4_DDF)
    challenge, x = secrets.token_bytes(8), secrets.token_bytes(8)
    factor = card_algos.pad_challenge(Algorithm.SM4, challenge)
    bfde(t, 0x47, 0x0A, SM4_CTX.card_factor + SM4_CTX.city_factor + factor)
    t_block = bytes.fromhex(cipher(t, 0x00, x + bytes(8))[:-4])
    expected = builtin_key_file().auth_data(SM4_CTX, 0x0A, challenge, x)
    assert xor_bytes(t_block[:8], t_block[8:]) == expected


def test_open_psam_refuses_a_user_card():
    from sbcard.keys import psam as psam_module

    with pytest.raises(CardError):
        # A user card in the "PSAM reader": no PSAM DDF answers, nothing is left open.
        psam_module.PsamKeySource(ApduChannel(_user_card_link())).terminal_number  # noqa: B018


def _user_card_link():
    link = SimulatedTransport(load_persona("v1").build_card())
    link.connect()
    return link


def test_cli_serve_psam_without_vpcd_fails_cleanly(capsys):
    from sbcard.cli.main import main

    with pytest.raises(SystemExit) as exc:
        main(["sim", "serve", "--psam", "--port", "1", "--wait", "0.3"])
    err = capsys.readouterr().err
    assert exc.value.code == 4
    assert "serving PSAM persona 'default'" in err and "vpcd is not listening" in err
    with pytest.raises(SystemExit) as exc:
        main(["sim", "serve", "--psam-persona", "nope", "--port", "1"])
    assert exc.value.code == 3
    assert "no PSAM persona 'nope'" in capsys.readouterr().err


class _SlowLink(SimulatedTransport):
    """A PSAM link that yields the GIL on every APDU, as a real reader's I/O does."""

    def transmit(self, command: bytes) -> bytes:
        time.sleep(0.0002)
        return super().transmit(command)


def test_one_psam_shared_by_parallel_reader_workers(keyfile):
    # `sbcard personalise --readers A,B --psam C`: every worker thread asks the one PSAM.
    # Delivering a session key (BF DE) and using it (80 FA) are two APDUs; another thread's
    # BF DE between them would make the PSAM answer with the other card's session key.
    link = _SlowLink(load_psam_persona("default").build(), "psam default")
    transport = T0Layer(link)
    transport.connect()
    psam = PsamKeySource(ApduChannel(transport), on_close=transport.disconnect)
    jobs = [(DES_CTX, bytes([i] * 4) + bytes(4)) for i in range(1, 13)]
    jobs += [(SM4_CTX, bytes([i] * 8)) for i in range(1, 13)]
    results: dict[int, bytes] = {}
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for n, (ctx, challenge) in enumerate(jobs):
                if n % 2 == worker:
                    results[n] = psam.auth_data(ctx, 0x0A, challenge, bytes(range(8)))
        except BaseException as exc:
            errors.append(exc)

    _run_together(work, [(0,), (1,)])
    psam.close()
    assert not errors
    for n, (ctx, challenge) in enumerate(jobs):
        assert results[n] == keyfile.auth_data(ctx, 0x0A, challenge, bytes(range(8))), n


def test_a_profile_view_shares_the_psam_and_leaves_the_source_as_it_was(keyfile):
    # The national driver opens one PSAM for every card and hands each call a view with the
    # card's profile (KeySource.for_profile): Jiangsu's overlay maps card key 0D to PSAM
    # usage 48 ID 13 (region-jiangsu.toml, [JSK] BFDE481318). A view of the default map's
    # source is the source itself; a view with another map changes nothing of the source.
    trace: list[str] = []
    psam = source("jiangsu", trace=trace)
    assert psam.for_profile(load_profile("mohrss-2.0")) is psam
    view = psam.for_profile(load_profile("mohrss-2.0+jiangsu"))
    assert view is not psam and view.has_key(0x0D) and not psam.has_key(0x0D)
    assert view.terminal_number == psam.terminal_number == "320899000001"
    trace.clear()
    challenge, x = secrets.token_bytes(8), secrets.token_bytes(8)
    assert view.auth_data(DES_CTX, 0x0D, challenge, x) == keyfile.auth_data(
        DES_CTX, 0x0D, challenge, x)
    sent = [line.split()[1] for line in trace if line.startswith(">>")]
    assert sent[0].startswith("BFDE481318")       # no reselection: the environment is shared
    with pytest.raises(BadInputError, match="maps no PSAM key to card key 0D"):
        psam.auth_data(DES_CTX, 0x0D, challenge, x)
    assert psam.levels_used(Algorithm.DES, 0x0A) is None
    view.auth_data(DES_CTX, 0x0A, challenge, x)
    assert psam.levels_used(Algorithm.DES, 0x0A) == view.levels_used(Algorithm.DES, 0x0A) == 2
    view.close()                                  # a view closes nothing
    assert psam.auth_data(SM4_CTX, 0x0A, challenge, x) == keyfile.auth_data(
        SM4_CTX, 0x0A, challenge, x)


def test_a_profile_view_and_its_source_used_by_two_threads_at_once(keyfile):
    # Two readers' calls at once, one through the shared source (card key 0A), one through a
    # Jiangsu view (0D), switching DES and SM4 environments: every BF DE + 80 FA pair must
    # stay together and every SELECT of an environment be known to both, or the PSAM answers
    # with the other call's session key or in the other environment.
    link = _SlowLink(load_psam_persona("jiangsu").build(), "psam jiangsu")
    transport = T0Layer(link)
    transport.connect()
    psam = PsamKeySource(ApduChannel(transport), on_close=transport.disconnect)
    view = psam.for_profile(load_profile("mohrss-2.0+jiangsu"))
    jobs = [(ctx, bytes([i] * 8)) for i in range(1, 13) for ctx in (DES_CTX, SM4_CTX)]
    results: dict[tuple[int, int], bytes] = {}
    errors: list[BaseException] = []

    def work(keys: PsamKeySource | KeySource, key_id: int) -> None:
        try:
            for n, (ctx, challenge) in enumerate(jobs):
                results[(key_id, n)] = keys.auth_data(ctx, key_id, challenge, bytes(range(8)))
        except BaseException as exc:
            errors.append(exc)

    _run_together(work, [(psam, 0x0A), (view, 0x0D)])
    psam.close()
    assert not errors
    for (key_id, n), got in results.items():
        ctx, challenge = jobs[n]
        assert got == keyfile.auth_data(ctx, key_id, challenge, bytes(range(8))), (key_id, n)
    assert len(results) == 2 * len(jobs)
