"""The command line as people type it (issue 15): options anywhere, safe suggestions,
"did you mean", aliases, version and verbosity."""

import pytest

from sbcard.cli.argv import DANGEROUS_OPTIONS, hoist_global_options
from sbcard.cli.main import cli
from tests.cli_runner import run_cli


@pytest.mark.parametrize(
    ("typed", "parsed"),
    [
        (["read", "--sim", "v3"], ["--sim", "v3", "read"]),
        (["read", "-r", "1", "--json"], ["-r", "1", "read", "--json"]),
        (["verify", "pin", "--trace"], ["--trace", "verify", "pin"]),
        (["read", "--json", "--sim"], ["--sim", "demo", "read", "--json"]),
        # apdu takes arguments: the next word is its APDU, not a persona
        (["apdu", "--sim", "00B2072C00"], ["--sim", "demo", "apdu", "00B2072C00"]),
        (["apdu", "--sim", "v1", "00B2072C00"], ["--sim", "v1", "apdu", "00B2072C00"]),
        (["read", "--reader=Virtual", "--keys", "test"],
         ["--reader=Virtual", "--keys", "test", "read"]),
        # a subcommand's own option of the same name stays its own
        (["sim", "serve", "--psam", "--wait", "3"], ["sim", "serve", "--psam", "--wait", "3"]),
        (["script", "run", "f.apdu", "-q"], ["script", "run", "f.apdu", "-q"]),
        # after `--` nothing moves
        (["apdu", "--", "--trace"], ["apdu", "--", "--trace"]),
    ],
)
def test_global_options_after_the_subcommand_move_in_front(typed, parsed):
    assert hoist_global_options(cli, typed, ["demo", "v1", "v3"]) == parsed


def test_options_after_the_subcommand_work_end_to_end(capsys):
    code, out, err = run_cli(capsys, "verify", "pin", "--pin-stdin", "--sim", "--trace",
                             stdin="123456\n")
    assert code == 0 and "PIN correct" in out
    assert ">> 0020000003******" in err or ">> 00200000" in err
    code, out, _ = run_cli(capsys, "read", "--sim", "v3", "--keys", "test", "--json")
    assert code == 0 and '"spec_version": "3.00"' in out


def test_no_suggestion_proposes_a_dangerous_option(capsys):
    code, _, err = run_cli(capsys, "--sim", "verify", "pin", "--forc")
    assert code == 2 and "No such option '--forc'" in err
    assert not any(opt in err for opt in DANGEROUS_OPTIONS)
    code, _, err = run_cli(capsys, "--sim", "verify", "pin", "--trac")
    assert code == 2 and "Did you mean '--trace'?" in err and "--force" not in err


def test_did_you_mean_for_commands_and_the_alias(capsys, tmp_path):
    code, _, err = run_cli(capsys, "redd")
    assert code == 2 and "No such command 'redd'. Did you mean 'read'" in err
    csv = tmp_path / "none.csv"
    code, _, err = run_cli(capsys, "--sim", "personalize", str(csv))
    assert code == 3 and "none.csv" in err and "No such command" not in err


def test_persona_typo_names_it_and_lists_the_personas(capsys):
    code, _, err = run_cli(capsys, "--sim", "red")
    assert code == 3
    assert "no persona 'red'" in err and "demo" in err and "v3" in err
    assert "did you mean the command 'read'" in err
    assert len(err.strip().splitlines()) == 1


def test_version_short_flag(capsys):
    from sbcard import __version__

    code, out, _ = run_cli(capsys, "-V")
    assert code == 0 and __version__ in out


def test_verbose_shows_steps_and_vv_the_trace(capsys):
    code, _, err = run_cli(capsys, "--sim", "-v", "verify", "pin", "--pin-stdin",
                           stdin="123456\n")
    assert code == 0
    assert "· SELECT → 9000" in err and "· VERIFY → 63C3" in err and ">>" not in err
    code, _, err = run_cli(capsys, "--sim", "-vv", "verify", "pin", "--pin-stdin",
                           stdin="123456\n")
    assert code == 0 and ">> 00A40400" in err


def test_quiet_keeps_only_results(capsys):
    code, out, err = run_cli(capsys, "--sim", "-q", "verify", "pin", "--pin-stdin",
                             stdin="123456\n")
    assert code == 0 and "PIN correct" in out and err == ""
    code, out, err = run_cli(capsys, "--sim", "verify", "pin", "--pin-stdin",
                             stdin="123456\n")
    assert "tries left" in err
    code, _, err = run_cli(capsys, "--sim", "-q", "-v", "atr")
    assert code == 2


def test_sim_alone_before_a_group_command_and_lang_after_it():
    assert hoist_global_options(cli, ["--sim", "verify", "pin", "--lang", "zh"], ["demo"]) \
        == ["--sim", "--lang", "zh", "verify", "pin"]


# -- JSON errors, languages, piped PINs ---------------------------------------------------

@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("--sim", "lasttry", "verify", "pin", "--json"), 8),                # refused
        (("--sim", "pinblocked", "pin", "status", "--json"), None),          # not a failure
        (("--sim", "red", "read", "--json"), 3),                             # bad persona
        (("--sim", "read", "--json", "--bogus"), 2),                         # usage
        (("--sim", "pinblocked", "pin", "change", "--pin-stdin", "--json"), 7),
        (("--sim", "apdu", "--json", "00A"), 3),
        (("personalise", "/nonexistent/h.csv", "--status", "--json"), 3),
        (("audit", "--audit-db", "/nonexistent/a.sqlite", "--json"), 3),
        (("--reader", "no such reader", "atr", "--json"), 4),
    ],
)
def test_json_failures_print_an_error_object(capsys, args, code):
    import json

    rc, out, err = run_cli(capsys, *args, stdin="123456\n741852\n741852\n")
    if code is None:
        assert rc == 0 and "ok" not in json.loads(out)
        return
    obj = json.loads(out)
    assert rc == code and obj["ok"] is False and obj["exit_code"] == code
    assert obj["error"] and obj["error_zh"] and err.strip()          # and the stderr line


def test_json_error_carries_the_status_word_and_tries(capsys):
    import json

    rc, out, _ = run_cli(capsys, "--sim", "pin", "change", "--pin-stdin", "--json",
                         stdin="999999\n741852\n741852\n")
    obj = json.loads(out)
    assert rc == 6 and obj["sw"] == "63C2" and obj["tries_left"] == 2
    assert "剩余2次" in obj["error_zh"]
    rc, out, _ = run_cli(capsys, "--sim", "pin", "change", "--pin-stdin", "--json",
                         stdin="123456\n741852\n741852\n")
    assert rc == 0 and json.loads(out) == {"pin_changed": True}


@pytest.mark.parametrize(
    ("lang", "present", "absent"),
    [("zh", "仅剩1次密码尝试机会", "only 1 PIN try left"),
     ("en", "only 1 PIN try left", "仅剩1次"),
     ("both", "仅剩1次密码尝试机会", None)],
)
def test_lang_picks_the_language_of_operator_messages(capsys, monkeypatch, lang, present,
                                                      absent):
    rc, _, err = run_cli(capsys, "--sim", "lasttry", "verify", "pin", "--lang", lang)
    assert rc == 8 and present in err and (absent is None or absent not in err)
    if lang == "both":
        assert "only 1 PIN try left" in err
    monkeypatch.setenv("SBCARD_LANG", lang)                      # the environment, too
    rc, _, err = run_cli(capsys, "--sim", "lasttry", "verify", "pin")
    assert rc == 8 and present in err


@pytest.mark.parametrize(("locale", "lang"), [("zh_CN.UTF-8", "zh"), ("en_US.UTF-8", "en"),
                                              ("de_DE.UTF-8", "both"), ("", "both")])
def test_default_language_follows_the_locale(locale, lang):
    from sbcard.messages import default_lang

    assert default_lang({"LANG": locale}) == lang
    assert default_lang({"LANG": locale, "SBCARD_LANG": "en"}) == "en"


def test_piped_pin_without_pin_stdin_is_one_line(capsys):
    rc, out, err = run_cli(capsys, "--sim", "verify", "pin", stdin="123456\n")
    assert rc == 3 and "--pin-stdin" in err and "GetPassWarning" not in err
    assert "123456" not in out + err
    assert len([ln for ln in err.splitlines() if ln.startswith("sbcard: error")]) == 1


def test_personalise_status_json(capsys, tmp_path):
    import json

    from tests.holders_factory import holder_rows, write_csv

    csv = write_csv(tmp_path / "h.csv", holder_rows(2))
    rc, _, err = run_cli(capsys, "--sim", "blank", "--keys", "test", "-q", "personalise",
                         str(csv))
    assert rc == 0, err
    rc, out, _ = run_cli(capsys, "personalise", str(csv), "--status", "--json")
    data = json.loads(out)
    assert rc == 0 and data["counts"]["done"] == 2 and len(data["holders"]) == 2
    assert "*" in data["holders"][0]["ssn"]


# -- the in-process card keeps its memory with --sim-state ---------------------------------

def test_sim_state_lets_a_technician_practise_a_lockout(capsys, tmp_path):
    import json
    import stat

    state = str(tmp_path / "card.json")
    sim = ("--sim", "demo", "--sim-state", state)
    for left in (2, 1):
        rc, _, err = run_cli(capsys, *sim, "verify", "pin", "--pin-stdin", stdin="999999\n")
        assert rc == 6 and f"{left} tries left" in err
    rc, _, err = run_cli(capsys, *sim, "verify", "pin", "--pin-stdin", stdin="999999\n")
    assert rc == 8                                   # one try left: refused without --force
    rc, _, _ = run_cli(capsys, *sim, "verify", "pin", "--pin-stdin", "--force",
                       stdin="999999\n")
    assert rc == 7                                   # the last try spent: blocked
    rc, out, _ = run_cli(capsys, *sim, "pin", "status", "--json")
    assert rc == 0 and json.loads(out)["blocked"] is True
    assert stat.S_IMODE((tmp_path / "card.json").stat().st_mode) == 0o600
    # without the state file the next command starts from the persona again
    rc, out, _ = run_cli(capsys, "--sim", "demo", "pin", "status", "--json")
    assert json.loads(out)["tries_left"] == 3


def test_sim_state_chains_a_pin_change_and_keeps_files(capsys, tmp_path):
    state = str(tmp_path / "card.json")
    rc, _, err = run_cli(capsys, "--sim", "--sim-state", state, "pin", "change", "--pin-stdin",
                         stdin="123456\n741852\n741852\n")
    assert rc == 0, err
    rc, _, _ = run_cli(capsys, "verify", "pin", "--pin-stdin", "--sim", "--sim-state", state,
                       stdin="741852\n")
    assert rc == 0                                   # the new PIN, from the saved memory
    rc, _, err = run_cli(capsys, "--sim", "v3", "--sim-state", state, "read")
    assert rc == 3 and "persona 'demo'" in err
    rc, _, err = run_cli(capsys, "--sim-state", state, "atr")
    assert rc == 2 and "goes with --sim" in err


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_shell_completion_as_documented(shell):
    import os
    import subprocess
    import sys

    env = {**os.environ, "_SBCARD_COMPLETE": f"{shell}_source"}
    source = subprocess.run([sys.executable, "-m", "sbcard"], env=env, capture_output=True,
                            text=True, timeout=60)
    assert source.returncode == 0 and "_sbcard_completion" in source.stdout
    if shell == "bash":
        env.update(_SBCARD_COMPLETE="bash_complete", COMP_WORDS="sbcard re", COMP_CWORD="1")
        words = subprocess.run([sys.executable, "-m", "sbcard"], env=env, capture_output=True,
                               text=True, timeout=60).stdout.split()
        assert "plain,read" in words and "plain,readers" in words


def test_persona_names_without_importing_the_simulator():
    from sbcard.cli.argv import persona_names
    from sbcard.sim.persona import builtin_personas

    assert persona_names() == builtin_personas()
