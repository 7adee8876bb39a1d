"""``sbcard --hsm-protocol national|json``: the CLI speaks either HSM protocol to
``--hsm-command`` (issue #11 item 7; docs/keys.md "The national HSM protocol").

The simulated HSM ``tests/national_hsm.py`` answers both, so every request is also appended
to a log (``tee``) and the test checks which protocol was actually spoken: the national
strings are ``A|ADDR|R|X|`` (public trace gdgly/SI_3rdCard ``docs/加密机方式指令流.txt``:
``03|0090|…`` PUK external authentication, ``03|0173|…|8424000114|PIN`` PIN reload), the JSON
requests are objects with a ``"step"``.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import pytest

from tests.cli_runner import run_cli

ROOT = Path(__file__).resolve().parent.parent


def logging_hsm(log: Path) -> str:
    inner = f"cd {shlex.quote(str(ROOT))} && tee -a {shlex.quote(str(log))} | " \
            f"{shlex.quote(sys.executable)} -m tests.national_hsm"
    return f"sh -c {shlex.quote(inner)}"


@pytest.mark.parametrize("protocol", ["national", "json"])
def test_read_v3_through_either_hsm_protocol(capsys, tmp_path, protocol):
    log = tmp_path / "hsm.log"
    code, out, err = run_cli(capsys, "--sim", "v3", "--hsm-command", logging_hsm(log),
                             "--hsm-protocol", protocol, "read", "--json")
    assert code == 0, err
    assert json.loads(out)["ssn"] == "51990020010228001X"
    spoken = log.read_text(encoding="utf-8")
    if protocol == "national":      # EF06 of a 3.0 card needs RKSSSE: HSM address 004C
        assert "|004C|" in spoken and '"step"' not in spoken
        assert spoken.startswith("519900|3B")                # line 1: 区划|复位信息|算法标识|
    else:
        assert '"step": "external_auth"' in spoken and '"key_address": "004C"' in spoken
        assert "|004C|" not in spoken


def test_the_cli_default_is_json_and_the_environment_chooses(capsys, tmp_path, monkeypatch):
    log = tmp_path / "hsm.log"
    code, _, err = run_cli(capsys, "--sim", "v3", "--hsm-command", logging_hsm(log),
                           "read", "--json")
    assert code == 0, err
    assert '"step"' in log.read_text(encoding="utf-8")
    log.unlink()
    monkeypatch.setenv("SBCARD_HSM_PROTOCOL", "national")
    code, _, err = run_cli(capsys, "--sim", "v3", "--hsm-command", logging_hsm(log),
                           "read", "--json")
    assert code == 0, err
    assert "|004C|" in log.read_text(encoding="utf-8")


def test_pin_reload_through_the_national_strings(capsys, tmp_path):
    """PUK external authentication (0090) then the one-step enciphered PIN ‖ MAC (0173 with
    the PIN, as in the trace); the new PIN then verifies."""
    log = tmp_path / "hsm.log"
    state = tmp_path / "card.state"
    code, _, err = run_cli(capsys, "--sim", "v3", "--sim-state", str(state),
                           "--hsm-command", logging_hsm(log), "--hsm-protocol", "national",
                           "pin", "reload", "--pin-stdin", stdin="246810\n246810\n")
    assert code == 0, err
    spoken = log.read_text(encoding="utf-8")
    assert "|0090|" in spoken and "|0173|" in spoken and "|8424000" in spoken
    assert "|246810" in spoken                         # the PIN goes to the HSM, as traced
    code, _, err = run_cli(capsys, "--sim", "v3", "--sim-state", str(state),
                           "pin", "change", "--pin-stdin", stdin="246810\n135790\n135790\n")
    assert code == 0, err


def test_national_protocol_needs_a_command_and_a_known_name(capsys):
    code, _, err = run_cli(capsys, "--sim", "v3", "--hsm-stdio", "--hsm-protocol", "national",
                           "read")
    assert code == 3 and "national HSM protocol needs --hsm-command" in err
    assert len(err.strip().splitlines()) == 1
    code, _, err = run_cli(capsys, "--sim", "v3", "--hsm-protocol", "x", "read")
    assert code == 2 and "'x' is not one of 'national', 'json'" in err


def test_the_driver_configuration_takes_the_same_environment_variable(tmp_path):
    from sbcard.errors import BadInputError
    from sbcard.national.config import load_config

    conf = tmp_path / "driver.toml"
    conf.write_text('[keys]\nsource = "hsm"\nhsm_command = "hsm"\n', encoding="utf-8")
    assert load_config(str(conf), {}).hsm_protocol == "national"          # the driver's default
    assert load_config(str(conf), {"SBCARD_HSM_PROTOCOL": "json"}).hsm_protocol == "json"
    with pytest.raises(BadInputError, match="hsm_protocol is one of national, json"):
        load_config(str(conf), {"SBCARD_HSM_PROTOCOL": "xml"})


@pytest.mark.parametrize(("given", "spoken"), [((), "|004C|"),                 # the driver's
                                               (("--hsm-protocol", "json"), '"step"')])
def test_sbcard_call_takes_the_option_over_the_driver_default(capsys, tmp_path, monkeypatch,
                                                             given, spoken):
    monkeypatch.setenv("SBCARD_DRIVER_CONFIG", str(tmp_path / "none.toml"))
    (tmp_path / "none.toml").write_text("", encoding="utf-8")
    log = tmp_path / "hsm.log"
    code, out, err = run_cli(capsys, "--sim", "v3", "--hsm-command", logging_hsm(log), *given,
                             "call", "iReadCardBas", "3")
    assert code == 0, err
    assert out.splitlines()[0] == "0" and spoken in log.read_text(encoding="utf-8")


def test_pin_unblock_mac_request_has_the_step2_shape(capsys, tmp_path):
    """The unblock MAC request is iUnblockPIN_HSM_Step2's public shape
    ``算法|密钥地址|过程因子|8424000004||`` (Sichuan reader spec v2.0 §7.2): empty PIN field."""
    log = tmp_path / "hsm.log"
    code, _, err = run_cli(capsys, "--sim", "pinblocked", "--hsm-command", logging_hsm(log),
                           "--hsm-protocol", "national", "pin", "unblock")
    assert code == 0, err
    lines = [line for line in log.read_text(encoding="utf-8").splitlines() if "|0173|" in line]
    assert len(lines) == 1 and lines[0].startswith("01|0173|")          # demo-based: DES
    assert lines[0].endswith("|8424000004||")
