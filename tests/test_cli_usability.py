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
    assert code == 2 and "No such command 'redd'. Did you mean 'read'?" in err
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
