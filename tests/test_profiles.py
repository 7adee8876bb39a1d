"""Card profiles: one loader, typed sections, one error style, profile_for."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from sbcard.card.filesystem import SSSE, Access
from sbcard.card.profiles import (
    BUILTIN,
    DEFAULT_PROFILE,
    PKI_GENERATION,
    SECTIONS,
    TOP_KEYS,
    generation_of,
    load_profile,
    profile_for,
    profile_from_mapping,
)
from sbcard.card.profiles.sections import Addressing, IssueConfig, Sm2AuthConfig
from sbcard.errors import BadInputError
from sbcard.hexutil import to_hex


def _raw(name: str) -> dict[str, Any]:
    text = resources.files("sbcard.card.profiles").joinpath(f"{name}.toml").read_text("utf-8")
    return tomllib.loads(text)


def _back_to_toml(name: str) -> dict[str, Any]:
    """The typed profile written back in the file's own shape (what a round trip gives)."""
    p = load_profile(name)
    out: dict[str, Any] = {"name": p.name, "generation": p.generation,
                           "description": p.description, "algorithm": p.algorithm,
                           "ef06_tags": [f"{t:02X}" for t in p.ef06_tags],
                           "access": {f: {k: _rule(a) for k, a in rules.items()}
                                      for f, rules in p.access.items()},
                           "read": {"addressing": str(p.read.addressing)},
                           "psam_keys": {f"{k:02X}": {"type": r.usage_type,
                                                      "id": f"{r.psam_key_id:02X}",
                                                      "name": r.name}
                                         for k, r in p.psam_keys.items()},
                           "hsm_addresses": {f"{k:02X}": list(v) if isinstance(v, tuple) else v
                                             for k, v in p.hsm_addresses.items()}}
    if p.key_version is not None:
        out["key_version"] = p.key_version
    return out


def _rule(access: Access) -> str:
    if access.never:
        return "never"
    return "|".join("pin" if c.kind == "pin" else f"key:{c.key_id:02X}"
                    for c in access.any_of) or "free"


@pytest.mark.parametrize("name", BUILTIN)
def test_shipped_profiles_round_trip(name: str) -> None:
    raw = _raw(name)
    assert set(raw) <= {*TOP_KEYS, *SECTIONS}
    back = _back_to_toml(name)
    for key in ("name", "generation", "description", "algorithm", "ef06_tags", "key_version",
                "read", "psam_keys", "hsm_addresses", "access"):
        assert back.get(key, {}) == raw.get(key, {}), key
    profile = load_profile(name)
    assert profile_from_mapping(raw, "x") == profile          # the file says all there is
    if "sm2_auth" in raw:
        assert profile.sm2_auth == Sm2AuthConfig.from_mapping(raw["sm2_auth"])
        assert profile.pki_sign is not None and profile.pki_sign.send == "digest"
        assert profile.pki_sign.ins == int(raw["pki_sign"]["ins"], 16)
        assert profile.pki_sign.adf_name == profile.sm2_auth.adf_name    # shared from sm2_auth
        assert profile.sm2_issue is not None
        assert to_hex(profile.sm2_issue.generate) == raw["sm2_issue"]["generate"]
    else:
        assert profile.sm2_auth is profile.pki_sign is profile.sm2_issue is None


def test_the_3_0_profile_guards_ef06_with_rksssE() -> None:
    profile = load_profile("mohrss-3.0")
    assert profile.read_access(SSSE.ef("EF06")) == Access.parse("key:0A")
    assert profile.hsm_addresses[0x04] == ("0094", "0095", "0096")


def test_profile_for_reads_the_spec_version() -> None:
    assert profile_for().name == DEFAULT_PROFILE
    assert profile_for("3.00").name == "mohrss-3.0"
    assert profile_for("2.01").name == "mohrss-2.0"
    assert profile_for("2.0\x00").name == "mohrss-2.0"
    assert profile_for("").name == "mohrss-1.0"              # an empty version is a 1.0 card
    assert profile_for(PKI_GENERATION).sm2_auth is not None
    with pytest.raises(BadInputError, match=r"no card profile for specification version '9\.9'"):
        profile_for("9.9")


@pytest.mark.parametrize(("persona", "expected"), [
    ("v1", "mohrss-1.0"),          # empty 规范版本 on an issued card: 1.0 (reader interface §10.2)
    ("demo", "mohrss-2.0"),        # "2.00"
    ("t0quirks", "mohrss-2.0"),    # "2.0" (read as the card pads it)
    ("v3", "mohrss-3.0"),          # "3.00"
    ("blank3", "mohrss-3.0"),      # blank: no version yet, the FCI says SM4
    ("blank", DEFAULT_PROFILE),    # blank DES card: nothing tells, the default
])
def test_profile_for_chooses_from_the_simulated_cards_own_data(persona: str,
                                                               expected: str) -> None:
    from sbcard.compose import SessionOptions, open_session
    from sbcard.ops.read import read_card
    from sbcard.sim.persona import load_persona

    with open_session(SessionOptions(sim=persona)) as channel:
        report = read_card(channel)
    assert profile_for(report.to_json()).name == expected
    assert report.profile.name == expected
    assert load_persona(persona).profile.name == expected     # the card it really is


def test_profile_for_card_data_rules() -> None:
    issued = {"card_no": "A00000011", "card_type": "3"}
    assert generation_of({"spec_version": "2.01", "algorithm": "SM4 (16-byte blocks)"}) \
        == "2.01"                                   # the version decides over the algorithm
    assert generation_of({**issued, "spec_version": None}) == ""          # 1.0
    assert generation_of({"spec_version": None, "card_id": "51", "init_org": "9"}) is None
    assert generation_of({"algorithm": 3}) == "3.0"                # the FCI's 9F0C/86 id
    assert generation_of({"algorithm": "03"}) == "3.0"
    assert generation_of({"algorithm": "DES/3DES (8-byte blocks)"}) is None
    assert generation_of({"algorithm": "unknown (07)"}) is None
    assert generation_of({}) is None and profile_for({}).name == DEFAULT_PROFILE
    with pytest.raises(BadInputError, match=r"specification version '9\.00'"):
        profile_for({**issued, "spec_version": "9.00"})


MINIMAL = 'name = "region"\ngeneration = "3.0"\nef06_tags = ["08"]\n'


def _load(tmp_path: Path, text: str):
    path = tmp_path / "region.toml"
    path.write_text(MINIMAL + text, "utf-8")
    return load_profile(str(path)), path


def test_a_minimal_profile_has_the_defaults(tmp_path: Path) -> None:
    profile, path = _load(tmp_path, "")
    assert profile.read.addressing is Addressing.SFI and profile.key_version is None
    assert not profile.psam_keys and not profile.hsm_addresses and profile.sm2_auth is None
    assert profile.origin == f"card profile {path}"


@pytest.mark.parametrize(("text", "where", "what"), [
    # the top level
    ('bogus = 1\n', "", "unknown key(s) bogus"),
    ('[regional]\nx = 1\n', "", "unknown key(s) regional"),
    ('algorithm = "AES"\n', "algorithm", "must be one of DES, 3DES, SSF33, SM4"),
    ('key_version = 256\n', "key_version", "must be an integer 0..255"),
    ('key_version = "3"\n', "key_version", "must be an integer 0..255"),
    # [access]
    ('[access.EF99]\nread = "free"\n', "[access] EF99", "no such file"),
    ('[access.EF06]\nread = "key:zz"\n', "[access.EF06] read", "not key:<hex id>"),
    ('[access.EF06]\nerase = "free"\n', "[access.EF06]", "unknown key(s) erase"),
    ('access = 3\n', "[access]", "must be a table"),
    # [read]
    ('[read]\naddressing = "fid"\n', "[read] addressing", "must be one of sfi, select-ef"),
    ('[read]\norder = "sfi"\n', "[read]", "unknown key(s) order"),
    # [psam_keys]
    ('[psam_keys]\n"0X" = { type = 7, id = "08" }\n', "[psam_keys] 0X", "2 hex digits"),
    ('[psam_keys]\n"00" = { type = 32, id = "08" }\n', "[psam_keys.00] type",
     "must be an integer 0..31"),
    ('[psam_keys]\n"00" = { type = 7 }\n', "[psam_keys.00] id", "missing"),
    ('[psam_keys]\n"00" = { type = 7, id = "0808" }\n', "[psam_keys.00] id", "must be 1 byte"),
    ('[psam_keys]\n"00" = { type = 7, id = "08", level = 2 }\n', "[psam_keys.00]",
     "unknown key(s) level"),
    ('[psam_keys]\n"00" = { type = 7, id = "08", versions = { "x" = "09" } }\n',
     "[psam_keys.00.versions] x", "a key version is a number"),
    ('[psam_keys]\n"00" = 7\n', "[psam_keys.00]", "must be a table"),
    # [hsm_addresses]
    ('[hsm_addresses]\n"00" = 170\n', "[hsm_addresses] 00", "must be an address"),
    ('[hsm_addresses]\n"00" = []\n', "[hsm_addresses] 00", "must be an address"),
    ('[hsm_addresses]\n"00" = ["0170", "01G1"]\n', "[hsm_addresses] 00", "not a hex digit"),
    # [sm2_auth]
    ('[sm2_auth]\nins = "8"\n', "[sm2_auth] ins", "odd number of hex digits"),
    ('[sm2_auth]\nsend = "both"\n', "[sm2_auth] send", "must be one of challenge, digest"),
    ('[sm2_auth]\nread_chunk = 4\n', "[sm2_auth] read_chunk", "must be an integer 8..256"),
    ('[sm2_auth]\nuser_id = 5\n', "[sm2_auth] user_id", "must be a string"),
    ('[sm2_auth]\nwhatever = 1\n', "[sm2_auth]", "unknown key(s) whatever"),
    # [pki_sign]
    ('[pki_sign]\nins = "2A"\n', "", "[pki_sign] needs [sm2_auth]"),
    ('[sm2_auth]\n[pki_sign]\nsend = "challenge"\n', "[pki_sign] send", "must be \"digest\""),
    ('[sm2_auth]\n[pki_sign]\np1 = "9E9E"\n', "[pki_sign] p1", "must be 1 byte"),
    # [sm2_issue]
    ('[sm2_issue]\nadmin_verify = "0020"\ngenerate = "80400000"\nexport = "80C98200"\n',
     "[sm2_issue] admin_verify", "must be 4 byte(s)"),
    ('[sm2_issue]\nadmin_verify = "00200100"\nexport = "80C98200"\n',
     "[sm2_issue] generate", "missing"),
    ('[sm2_issue]\nadmin_verify = "00200100"\ngenerate = "80"\nexport = "80C98200"\n',
     "[sm2_issue] generate", "must be a command"),
    ('[sm2_issue]\nadmin_verify = "00200100"\ngenerate = "80400000"\nexport = "80C98200"\n'
     'export_le = 10\n', "[sm2_issue] export_le", "must be an integer 66..256"),
    ('[sm2_issue]\nadmin_verify = "00200100"\ngenerate = "80400000"\nexport = "80C98200"\n'
     'default_admin_pin = "12ab"\n', "[sm2_issue] default_admin_pin", "digits"),
    ('[sm2_issue]\nadmin_verify = "00200100"\ngenerate = "80400000"\nexport = "80C98200"\n'
     'key_fid = "12"\n', "[sm2_issue] key_fid", "must be 2 bytes"),
    ('[sm2_issue]\nadmin_verify = "00200100"\ngenerate = "80400000"\nexport = "80C98200"\n'
     'user_verify = "0020"\n', "[sm2_issue] user_verify", "must be 4 bytes"),
])
def test_each_section_refuses_bad_values_in_one_style(tmp_path: Path, text: str, where: str,
                                                      what: str) -> None:
    with pytest.raises(BadInputError) as exc:
        _load(tmp_path, text)
    message = str(exc.value)
    prefix = f"card profile {tmp_path / 'region.toml'}: " + (f"{where}: " if where else "")
    assert message.startswith(prefix), message
    assert what in message and "\n" not in message


def test_missing_top_level_keys(tmp_path: Path) -> None:
    path = tmp_path / "bare.toml"
    path.write_text('generation = "2.0"\nef06_tags = ["08"]\n', "utf-8")
    with pytest.raises(BadInputError, match=r"bare.toml: name: missing$"):
        load_profile(str(path))
    path.write_text('name = "x"\ngeneration = "2.0"\nef06_tags = ["8X"]\n', "utf-8")
    with pytest.raises(BadInputError, match=r"bare.toml: ef06_tags: 'X' at position 2"):
        load_profile(str(path))
    path.write_text('name = "x"\ngeneration = "2.0"\n', "utf-8")
    with pytest.raises(BadInputError, match=r"bare.toml: ef06_tags: must be a list"):
        load_profile(str(path))


def test_a_region_changes_one_value(tmp_path: Path) -> None:
    profile, _ = _load(tmp_path, 'key_version = 3\n[read]\naddressing = "select-ef"\n'
                                 '[psam_keys]\n"0A" = { type = 7, id = "0A", '
                                 'versions = { "3" = "1A" } }\n'
                                 '[hsm_addresses]\n"0A" = ["004C", "004D"]\n')
    assert profile.key_version == 3 and profile.read.addressing is Addressing.SELECT_EF
    ref = profile.psam_keys[0x0A]
    assert ref.name == "0A" and ref.versions == ((3, 0x1A),)
    assert profile.hsm_addresses == {0x0A: ("004C", "004D")}


def test_sections_without_the_feature_say_so() -> None:
    with pytest.raises(BadInputError, match=r"mohrss-2.0 has no \[sm2_issue\]"):
        IssueConfig.from_profile(load_profile("mohrss-2.0"))


def test_no_module_names_a_profile_file_but_the_profiles_package() -> None:
    """profile_for / DEFAULT_PROFILE / PKI_GENERATION are the one choice of a profile."""
    import ast
    import re

    package = Path(__file__).resolve().parents[1] / "sbcard"
    named = []
    for path in package.rglob("*.py"):
        if path.parent.name == "profiles":
            continue
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and re.fullmatch(r"mohrss-\d\.\d", node.value):
                named.append(f"{path.relative_to(package)}:{node.lineno}")
    assert named == []
