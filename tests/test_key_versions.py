"""Issue 11 item 4: the card key version reaches EXTERNAL/INTERNAL AUTHENTICATE (Lc 11, part 5
§6.4.3 / §6.7.3), the key file root, the PSAM key ID and the HSM address; a version the card
does not hold is caught by the precheck (6A88 to INTERNAL AUTHENTICATE), not by a spent try.
HSM addresses per version: sscard-spec §5.8 (0094 = UKSSSE v1, 0096 = UKSSSE v3).
"""

from __future__ import annotations

import pytest

from sbcard.apdu.channel import ApduChannel
from sbcard.card.filesystem import KEY_RKSSSE, KEY_UKSSSE
from sbcard.card.profiles import load_profile
from sbcard.compose import KeySourceOptions, open_key_source
from sbcard.errors import RefusedError
from sbcard.keys.builtin import builtin_key_file
from sbcard.keys.hsm import HsmError, HsmStepSource
from sbcard.keys.keyfile import KeyFile
from sbcard.keys.psam import psam_key_map
from sbcard.ops.auth import external_authenticate
from sbcard.ops.read import read_card, read_context
from sbcard.sim.card_os import SimCard
from tests.cli_runner import run_cli
from tests.fakes import recorded_sim_card


def _card(persona: str) -> tuple[SimCard, ApduChannel, list[str]]:
    return recorded_sim_card(persona)


def _keys(version: int | None) -> KeyFile:
    source = open_key_source(KeySourceOptions(keys="test", key_version=version))
    assert isinstance(source, KeyFile)
    return source


def test_version_byte_reaches_both_authentications() -> None:
    _, ch, sent = _card("keyver")
    data = read_card(ch, keys=_keys(3)).to_json()
    assert data["name"] == "买买提·测试" and not data["warnings"]
    assert any(c.startswith("0088000011") and c[-4:-2] == "03" for c in sent)
    assert any(c.startswith("0082000A11") and c.endswith("03") for c in sent)


def test_default_key_sends_no_version_byte() -> None:
    _, ch, sent = _card("keyver")
    read_card(ch, keys=builtin_key_file())
    assert any(c.startswith("0082000A10") for c in sent)
    assert not any(c.startswith("0082000A11") for c in sent)


def test_wrong_version_caught_by_the_precheck_without_a_spent_try() -> None:
    card, ch, sent = _card("v3")                    # holds only the default keys
    ctx = read_context(ch)
    assert card.auth is not None
    before = card.auth.keys[KEY_RKSSSE].tries
    with pytest.raises(RefusedError, match="no key version 3"):
        external_authenticate(ch, _keys(3), ctx, KEY_RKSSSE)
    assert card.auth.keys[KEY_RKSSSE].tries == before
    assert not any(c.startswith("0082") for c in sent)


def test_key_file_without_that_version_refuses_before_any_apdu() -> None:
    card, ch, _ = _card("keyver")
    ctx = read_context(ch)
    count = card.apdu_count
    with pytest.raises(RefusedError, match="no key version 2"):
        external_authenticate(ch, _keys(2), ctx, KEY_RKSSSE)
    assert card.apdu_count == count


def test_shared_test_key_file_is_not_changed() -> None:
    _keys(3)
    assert builtin_key_file().key_version is None


def test_hsm_address_follows_the_version() -> None:
    profile = load_profile("mohrss-3.0")
    hsm = HsmStepSource(lambda _r: {}, profile.hsm_addresses)
    assert hsm.address(KEY_UKSSSE) == "0094"
    hsm.key_version = 3
    assert hsm.address(KEY_UKSSSE) == "0096" and hsm.address(KEY_RKSSSE) == "004E"
    assert not hsm.has_key(0x06)                    # PUK: one address, version 1 only
    hsm.key_version = 4
    with pytest.raises(HsmError, match="version 4"):
        hsm.address(KEY_UKSSSE)


def test_psam_key_id_per_version(tmp_path) -> None:
    src = tmp_path / "region.toml"
    src.write_text('name = "region"\ngeneration = "3.0"\nef06_tags = ["08"]\n'
                   '[psam_keys]\n"0A" = { type = 7, id = "0A", name = "RKSSSE", '
                   'versions = { "3" = "1A" } }\n', encoding="utf-8")
    ref = psam_key_map(load_profile(str(src)))[KEY_RKSSSE]
    assert ref.for_version(None) is ref
    assert ref.for_version(3) is not None and ref.for_version(3).psam_key_id == 0x1A
    assert ref.for_version(2) is None


def test_profile_key_version_and_cli_option(tmp_path, capsys) -> None:
    src = tmp_path / "region.toml"
    src.write_text('name = "region"\ngeneration = "3.0"\nef06_tags = ["08"]\nkey_version = 3\n',
                   encoding="utf-8")
    source = open_key_source(KeySourceOptions(keys="test"), load_profile(str(src)))
    assert source is not None and source.key_version == 3
    code, out, err = run_cli(capsys, "--sim", "keyver", "--keys", "test", "--key-version", "3",
                             "read", "--json")
    assert code == 0 and "买买提·测试" in out, err
    code, _, err = run_cli(capsys, "--sim", "v3", "--keys", "test", "--key-version", "3",
                           "read")
    assert code == 8 and "no key version 3" in err
