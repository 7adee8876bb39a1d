"""SSSE EF07 指纹 and a region's own SSSE files (Jiangsu EF0D) as card profile data.

EF07: 人社信息函〔2012〕37号 table 3 (transparent, 0x300 bytes, read key RKSSSE = card key 0A).
EF0D: the overlay ``region-jiangsu.toml``; the APDUs below are the public Jiangsu kiosk code's
(namespace JSCardKiosks, class CardWriteRead, cited in the overlay): ``00A4000002EF0D``,
``00B201040E``, ``00B2020405``, ``0082000D10…``, ``00DC01040EEA0C…``, PSAM ``BFDE481318…``.
"""

from __future__ import annotations

import json

import pytest

from sbcard.apdu.channel import ApduChannel
from sbcard.apdu.sw import SecurityStatusError
from sbcard.card.profiles import load_profile
from sbcard.errors import BadInputError, RefusedError
from sbcard.keys.builtin import builtin_key_file
from sbcard.ops.read import read_fingerprint
from sbcard.ops.records import DfSession, ItemRef, Method, ReadAuth, read_file, write_file
from tests.cli_runner import run_cli
from tests.test_sim_card import SELECT_SSSE, card_link, tx

JIANGSU = "mohrss-2.0+jiangsu"
#: v3 persona's EF07 bytes (sbcard/sim/personas/v3.toml).
FINGER_HEAD = b"SBCARD SYNTHETIC FINGERPRINT TEMPLATE - NOT OF ANYONE"


@pytest.fixture(autouse=True)
def _no_env_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SBCARD_KEYS", raising=False)


# --------------------------------------------------------------------------- the profile


def test_overlay_adds_ef0d_and_its_psam_key_to_a_generation() -> None:
    profile = load_profile(JIANGSU)
    assert profile.name == JIANGSU and profile.generation == "2.0"
    ef0d = profile.regional_files["EF0D"]
    assert ef0d.ef.fid == 0xEF0D and ef0d.ef.sfi is None
    assert [(e.tag, e.fmt, e.length) for e in ef0d.items] == [
        (0xEA, "an", 12), (0xEB, "cn", 3), (0xEC, "an", 1), (0xED, "an", 1)]
    assert str(ef0d.ef.read) == "free" and str(ef0d.ef.write) == "key:0D"
    ref = profile.psam_keys[0x0D]
    assert (ref.usage(2), ref.psam_key_id) == (0x48, 0x13)
    assert profile.psam_keys[0x0A].name == "RKSSSE"          # the base profile's keys stay
    assert load_profile("3.0+jiangsu").algorithm == "SM4"
    assert not load_profile("mohrss-2.0").regional_files


def test_overlay_errors_are_one_line_in_the_profile_style(tmp_path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[access.EF06]\nread = "free"\n', "utf-8")
    with pytest.raises(BadInputError, match=r"bad.toml: unknown key\(s\) access"):
        load_profile(f"mohrss-2.0+{bad}")
    bad.write_text('[regional_files.EF0D]\nfid = "EF0E"\nzh = "x"\nread = "free"\n'
                   'write = "key:0D"\nitems = [{ tag = "EA", key = "k", zh = "z", '
                   'length = 1 }]\n', "utf-8")
    with pytest.raises(BadInputError, match=r"\[regional_files.EF0D\] fid: must be EFxx"):
        load_profile(f"2.0+{bad}")
    bad.write_text('[regional_files.EF07]\nfid = "EF07"\nzh = "x"\nread = "free"\n'
                   'write = "key:0D"\nitems = []\n', "utf-8")
    with pytest.raises(BadInputError, match="national SSSE file"):
        load_profile(f"2.0+{bad}")
    with pytest.raises(BadInputError, match="no regional overlay 'atlantis'"):
        load_profile("mohrss-2.0+atlantis")


# --------------------------------------------------------------------------- the card


def test_simulated_ef0d_answers_the_public_kiosk_apdus() -> None:
    _, t = card_link("jiangsu")
    assert tx(t, SELECT_SSSE).endswith("9000")
    assert tx(t, "00A4000002EF0D") == "9000"
    assert tx(t, "00B201040E") == "EA0C" + b"JS9900000012".hex().upper() + "9000"
    assert tx(t, "00B2020405") == "EB033208999000"
    assert tx(t, "00DC01040EEA0C" + b"JS0000000000".hex()) == "6982"   # needs key 0D


def test_ef0d_read_and_written_through_the_library() -> None:
    card, t = card_link("jiangsu")
    session = DfSession(ApduChannel(t))
    profile = load_profile(JIANGSU)
    refs = (ItemRef(0xEA), ItemRef(0xEB))
    got = read_file(session, "SSSEEF0D", refs, ReadAuth(), profile=profile)
    assert got.texts == ("JS9900000012", "320899")
    write_file(session, "SSSEEF0D", refs, ("JS9900000029", "320801"), builtin_key_file(),
               profile=profile)
    ef0d = card.apps[next(iter(card.apps))].efs[0xEF0D]
    assert bytes(ef0d.records[0]) == b"\xEA\x0C" + b"JS9900000029"
    assert bytes(ef0d.records[1]) == bytes.fromhex("EB03320801")
    assert bytes(ef0d.records[2]) == bytes.fromhex("EC0131")           # untouched


def test_record_commands_on_ef0d_send_the_public_bytes(capsys, tmp_path) -> None:
    state = str(tmp_path / "card.json")
    base = ("--sim", "jiangsu", "--sim-state", state)
    code, out, err = run_cli(capsys, *base, "record", "read", "SSSEEF0D", "--profile",
                             JIANGSU, "--json")
    assert code == 0, err
    items = {i["item"]: i["text"] for i in json.loads(out)["items"]}
    assert items == {"EA": "JS9900000012", "EB": "320899", "EC": "1", "ED": "0"}
    code, _, err = run_cli(capsys, *base, "--psam", "sim:jiangsu", "--trace", "record",
                           "write", "SSSEEF0D", "EA=JS9900000029", "EB=320801", "--profile",
                           JIANGSU)
    assert code == 0, err
    trace = err.replace(" ", "").upper()
    for command in ("BFDE481318", "0082000D10", "00DC01040EEA0C" + b"JS9900000029".hex().upper(),
                    "00DC020405EB03320801"):
        assert command in trace, command
    code, out, err = run_cli(capsys, *base, "record", "read", "SSSEEF0D", "EA", "EB",
                             "--profile", JIANGSU, "--json")
    assert code == 0, err
    assert [i["text"] for i in json.loads(out)["items"]] == ["JS9900000029", "320801"]


def test_ef0d_needs_its_regional_profile_and_the_psam_key(capsys) -> None:
    # a card whose issuing region has no overlay in regions.toml (demo: 519900) is pointed to
    # --profile; a Jiangsu card gets its overlay by itself (tests/test_region_choice.py)
    code, _, err = run_cli(capsys, "--sim", "demo", "record", "read", "SSSEEF0D")
    assert code != 0 and "--profile mohrss-3.0+jiangsu" in err
    # the default simulated PSAM is national: it has no key at 48/13 (6A88), and no
    # EXTERNAL AUTHENTICATE reaches the card (no key try spent)
    code, _, err = run_cli(capsys, "--sim", "jiangsu", "--psam", "sim", "--trace", "record",
                           "write", "SSSEEF0D", "EA=JS9900000029", "--profile", JIANGSU)
    assert code == 5 and "48 13 (UKEF0D, card key 0D)" in err and "6A88" in err
    assert "0082000D" not in err.replace(" ", "")


def test_files_lists_the_regional_file_with_its_key(capsys) -> None:
    code, out, _ = run_cli(capsys, "record", "files", "SSSE", "--profile", JIANGSU, "--json")
    assert code == 0
    files = {f["file"]: f for f in json.loads(out)["files"]}
    assert files["SSSEEF0D"]["write"] == "UKEF0D (0D)" and files["SSSEEF0D"]["sfi"] is None
    assert files["SSSEEF07"]["read"] == "RKSSSE (0A)" and files["SSSEEF07"]["size"] == 0x300


# --------------------------------------------------------------------------- EF07 指纹


def test_ef07_refuses_without_rkssse_and_reads_after_it() -> None:
    _, t = card_link("v3")
    assert tx(t, SELECT_SSSE).endswith("9000")
    assert tx(t, "00B08700F0") == "6982"                 # SFI 07, no authentication
    with pytest.raises(SecurityStatusError):
        read_fingerprint(ApduChannel(t))
    data = read_fingerprint(ApduChannel(t), keys=builtin_key_file())
    assert len(data) == 0x300 and data.startswith(FINGER_HEAD)
    assert data[len(FINGER_HEAD):len(FINGER_HEAD) + 32] == bytes(range(0x10, 0x30))
    assert not data[len(FINGER_HEAD) + 32:].strip(b"\x00")


@pytest.mark.parametrize("source", [("--keys", "test"), ("--psam", "sim")])
def test_record_read_ef07_to_a_file(capsys, tmp_path, source) -> None:
    out_file = tmp_path / "finger.bin"
    code, out, err = run_cli(capsys, "--sim", "v3", *source, "record", "read", "SSSEEF07",
                             "--out", str(out_file), "--json")
    assert code == 0, err
    assert json.loads(out)["bytes"] == 0x300
    assert out_file.read_bytes().startswith(FINGER_HEAD)


def test_record_read_ef07_by_pin_is_refused_by_the_card(capsys) -> None:
    """--auth pin does not open EF07 (RKSSSE only): without a key source nothing is sent."""
    code, _, err = run_cli(capsys, "--sim", "v3", "record", "read", "SSSEEF07")
    assert code == 2 and "key source" in err
    _, t = card_link("v3")
    session = DfSession(ApduChannel(t))
    with pytest.raises(RefusedError, match=r"needs the card key RKSSSE \(0A\)"):
        read_file(session, "SSSEEF07", (), ReadAuth(Method.PIN))


# --------------------------------------------------------------------------- DF06 keys

#: A region's own PSAM/HSM places for the DF06 keys. No public source gives them (appendix B
#: of the reader-interface spec lists DF01–DF05 and DF07 only; notice table B2 names the keys):
#: these values are an example of what a region's overlay carries, nothing more.
DF06_OVERLAY = '''
name = "df06-example"
[psam_keys]
"RK1DF06" = { type = 7, id = "B5", name = "RK1DF06" }
"UK1DF06" = { type = 7, id = "B6", name = "UK1DF06" }
[hsm_addresses]
"RK1DF06" = ["00C0", "00C1", "00C2"]
"UK1DF06" = ["00C3", "00C4", "00C5"]
'''


def test_df06_keys_come_from_a_profile_through_psam_and_hsm(capsys, tmp_path) -> None:
    from sbcard.card.dfs import KEY_BY_NAME
    from sbcard.keys.hsm import HsmStepSource, hsm_address_map
    from sbcard.keys.psam import psam_key_map

    overlay = tmp_path / "df06.toml"
    overlay.write_text(DF06_OVERLAY, "utf-8")
    profile = load_profile(f"mohrss-2.0+{overlay}")
    rk, uk = KEY_BY_NAME["RK1DF06"].ref, KEY_BY_NAME["UK1DF06"].ref
    keys = psam_key_map(profile)
    assert (keys[rk].usage(2), keys[rk].psam_key_id) == (0x47, 0xB5)
    assert keys[uk].psam_key_id == 0xB6
    assert rk not in psam_key_map(load_profile("mohrss-2.0"))        # no public place
    addresses = hsm_address_map(profile)
    assert addresses[rk] == ("00C0", "00C1", "00C2")
    assert addresses[KEY_BY_NAME["RK1DF01"].ref] == ("004F", "0050", "0051")   # appendix B.1
    assert HsmStepSource(lambda _r: {}, addresses).has_key(rk)
    assert not HsmStepSource(lambda _r: {}, hsm_address_map(load_profile("2.0"))).has_key(rk)

    card = tmp_path / "card.toml"
    card.write_text('extends = "demo"\nname = "df06"\n[df_records]\ninclude = ["DF06"]\n'
                    '"DF06EF05.C2" = "123456789"\n', "utf-8")
    psam = tmp_path / "psam.toml"
    psam.write_text(f'name = "df06"\nprofile = "mohrss-2.0+{overlay}"\n[keys]\nfile = "test"\n',
                    "utf-8")
    args = ("--sim", str(card), "--psam", f"sim:{psam}", "record")
    code, out, err = run_cli(capsys, *args, "read", "DF06EF05", "C2", "--profile",
                             f"mohrss-2.0+{overlay}", "--json")
    assert code == 0, err
    assert json.loads(out)["items"][0]["text"] == "123456789"
    code, _, err = run_cli(capsys, *args, "write", "DF06EF05", "C2=987654321", "--profile",
                           f"mohrss-2.0+{overlay}")
    assert code == 0, err
    # without the region's data the PSAM key source knows no place for RK1DF06: nothing sent
    code, _, err = run_cli(capsys, "--sim", str(card), "--psam", "sim", "record", "read",
                           "DF06EF05", "C2")
    assert code == 8 and "no key for RK1DF06" in err
