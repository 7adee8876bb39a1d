"""PIN commands and activation through the real pcscd: each command, each failure path.

The served card keeps its state between commands (it is one card in one reader), so a
sequence of `sbcard` processes walks a PIN down to blocked and back, as at a counter.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest

from sbcard.keys.builtin import builtin_key_file
from tests.hil.conftest import READER

pytestmark = pytest.mark.pcscd

ID = "519900199001010015"


def sbcard(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sbcard", "-r", READER, *args], input=stdin,
                          capture_output=True, text=True, timeout=60)


def no_secrets(text: str, *pins: str) -> None:
    for p in pins:
        assert p not in text, f"PIN {p} appears in output"
    for root in builtin_key_file().roots:
        assert root.value.hex().upper() not in text.upper()


def test_pin_down_to_blocked_then_unblock_and_reload(serve):
    served = serve("demo")
    r = sbcard("--trace", "verify", "pin", "--pin-stdin", stdin="999999\n")
    assert r.returncode == 6 and "2 tries left" in r.stderr
    no_secrets(r.stdout + r.stderr, "999999")
    assert sbcard("verify", "pin", "--pin-stdin", stdin="999998\n").returncode == 6
    r = sbcard("verify", "pin", "--pin-stdin", stdin="123456\n")
    assert r.returncode == 8 and "only 1 PIN try left" in r.stderr
    assert served.card.pin.tries == 1                       # the refusal spent nothing
    r = sbcard("verify", "pin", "--pin-stdin", "--force", stdin="999997\n")
    assert r.returncode == 7
    r = sbcard("pin", "status", "--json")
    assert '"blocked": true' in r.stdout
    r = sbcard("--keys", "test", "--trace", "pin", "unblock")
    assert r.returncode == 0, r.stderr
    no_secrets(r.stdout + r.stderr)
    assert sbcard("verify", "pin", "--pin-stdin", stdin="123456\n").returncode == 0
    r = sbcard("--keys", "test", "--trace", "pin", "reload", "--pin-stdin",
               stdin="739164\n739164\n")
    assert r.returncode == 0, r.stderr
    no_secrets(r.stdout + r.stderr, "739164")
    assert sbcard("verify", "pin", "--pin-stdin", stdin="739164\n").returncode == 0
    r = sbcard("--trace", "pin", "change", "--pin-stdin", stdin="739164\n402718\n402718\n")
    assert r.returncode == 0, r.stderr
    no_secrets(r.stdout + r.stderr, "739164", "402718")
    assert served.card.pin.value == "402718"


def test_verify_card_genuine_and_not(serve, tmp_path):
    serve("v3")
    r = sbcard("--keys", "test", "--trace", "verify", "card")
    assert r.returncode == 0, r.stderr
    no_secrets(r.stdout + r.stderr)
    other = tmp_path / "other.toml"
    other.write_text('[[key]]\ncard_key_id = "00"\nalgorithm = "SM4"\n'
                     'value = "00112233445566778899AABBCCDDEEFF"\n', encoding="utf-8")
    other.chmod(0o600)
    r = sbcard("--keys", str(other), "verify", "card")
    assert r.returncode == 9 and "does not match" in r.stderr


def test_activation_then_already_activated(serve, tmp_path):
    served = serve("demo")
    db = tmp_path / "audit.sqlite"
    args = ("activate", "--id", ID, "--operator", "op7", "--pin-stdin", "--audit-db", str(db))
    r = sbcard("--trace", *args, stdin="123456\n739164\n739164\n")
    assert r.returncode == 0, r.stderr
    no_secrets(r.stdout + r.stderr, "123456", "739164")
    assert served.card.pin.value == "739164"
    r = sbcard(*args, stdin="123456\n402718\n402718\n")
    assert r.returncode == 6 and "no second try" in r.stderr
    assert served.card.pin.tries == 2                       # exactly one try spent
    r = sbcard("activate", "--id", "519900199001010023", "--operator", "op7", "--pin-stdin",
               "--audit-db", str(db), stdin="123456\n402718\n402718\n")
    assert r.returncode == 9
    outcomes = [row[0] for row in sqlite3.connect(db).execute(
        "SELECT outcome FROM activation ORDER BY id")]
    assert outcomes == ["activated", "initial PIN rejected", "identity mismatch"]


def test_activation_card_pulled_midway_is_recorded(serve, tmp_path):
    from sbcard.transport.base import CardTornError

    served = serve("demo")

    def pull_at_change_pin(card, cmd):
        if cmd.ins == 0x5E:
            raise CardTornError()
        return None

    served.card.command_hooks.append(pull_at_change_pin)
    db = tmp_path / "audit.sqlite"
    r = sbcard("activate", "--id", ID, "--operator", "op7", "--pin-stdin", "--audit-db",
               str(db), stdin="123456\n739164\n739164\n")
    assert r.returncode == 4 and "effect on the card is unknown" in r.stderr
    step, outcome, detail = sqlite3.connect(db).execute(
        "SELECT step, outcome, detail FROM activation").fetchone()
    assert (step, outcome) == ("change-pin", "card removed")
    assert "during change-pin" in detail


def test_application_blocked_through_pcscd(serve, tmp_path):
    serve("appblocked")
    db = tmp_path / "audit.sqlite"
    r = sbcard("activate", "--id", ID, "--operator", "op", "--pin-stdin", "--audit-db", str(db),
               stdin="123456\n739164\n739164\n")
    assert r.returncode == 7 and "9303" in r.stderr


@pytest.mark.parametrize(
    ("persona", "code", "message"),
    [
        ("expired", 8, "the card expired on 2020-06-01"),
        ("lasttry", 8, "only 1 PIN try left"),
        ("pinblocked", 7, "6983"),
    ],
)
def test_activation_refusals_spend_nothing(serve, tmp_path, persona, code, message):
    served = serve(persona)
    tries_before = served.card.pin.tries
    db = tmp_path / "audit.sqlite"
    r = sbcard("activate", "--id", ID, "--operator", "op", "--pin-stdin", "--audit-db", str(db),
               stdin="123456\n739164\n739164\n")
    assert r.returncode == code, r.stderr
    assert message in r.stderr
    assert served.card.pin.tries == tries_before            # no PIN try was spent
    assert served.card.pin.value != "739164"
    (outcome,) = sqlite3.connect(db).execute("SELECT outcome FROM activation").fetchone()
    assert outcome != "activated"
