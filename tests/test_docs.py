"""The docs and the commands agree: the CLI reference is the commands' own --help, and every
command is explained in a guide."""

from __future__ import annotations

from pathlib import Path

import pytest

from sbcard.cli.docgen import command_paths, render

DOCS = Path(__file__).resolve().parents[1] / "docs"
GUIDES = ("technicians.md", "card-bureau.md", "test-engineers.md", "crypto-cli.md",
          "apdu-scripts.md", "keys.md", "simulator.md", "sm2-authentication.md",
          "local-service.md")


def test_cli_reference_is_current():
    committed = (DOCS / "cli-reference.md").read_text("utf-8")
    assert committed == render(), (
        "docs/cli-reference.md is stale: run `python -m sbcard.cli.docgen > "
        "docs/cli-reference.md`")


def test_every_command_is_in_a_guide():
    text = "\n".join((DOCS / g).read_text("utf-8") for g in GUIDES)
    missing = []
    for path in command_paths():
        words = path.split()
        if len(words) == 1:
            continue
        top = " ".join(words[:2])
        if f"sbcard {words[1]}" not in text and words[1] not in ("crypto",):
            missing.append(top)
        if words[1] == "crypto" and len(words) > 2 and f"crypto {words[2]}" not in text:
            missing.append(path)
    assert not missing, f"commands no guide mentions: {sorted(set(missing))}"


def test_exit_codes_doc_matches_code():
    from sbcard.errors import ExitCode

    text = (DOCS / "exit-codes.md").read_text("utf-8")
    for code in ExitCode:
        assert f"| {code.value} | {code.name} |" in text


@pytest.mark.filterwarnings("ignore::DeprecationWarning")    # click-man on click 8.2
def test_man_pages_are_generated_from_the_cli(tmp_path):
    from sbcard.cli.manpages import write

    pages = {p.name: p.read_text("utf-8") for p in write(tmp_path)}
    expected = {f"{'-'.join(path.split())}.1" for path in command_paths()}
    assert expected <= set(pages)
    assert pages["sbcard.1"].startswith(".TH") and "\\-\\-sim\\-state" in pages["sbcard.1"]
    assert "\\-\\-redact" in pages["sbcard-read.1"]
