"""Issue 11 items 1-3 through the real pcscd: cards shaped like the public evidence.

Each test serves a persona into vpcd and runs sbcard as a separate process, as at a counter.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.hil.conftest import READER

pytestmark = pytest.mark.pcscd


def sbcard(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sbcard", "-r", READER, *args], input=stdin,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("persona", ["classb", "contactless"])
def test_tck_atr_card_authenticates_reads_and_reloads(serve, persona: str) -> None:
    served = serve(persona)
    r = sbcard("atr", "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["atr"].replace(" ", "").upper() == served.card.atr.hex().upper()
    assert info["social_security"]["diversification_factor"] == "86845199C0666779"
    r = sbcard("--keys", "test", "read", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["name"] == "买买提·测试"
    r = sbcard("--keys", "test", "pin", "reload", "--pin-stdin", stdin="739164\n739164\n")
    assert r.returncode == 0, r.stderr
    assert served.card.pin.value == "739164"
    r = sbcard("--keys", "test", "pin", "unblock")
    assert r.returncode == 0, r.stderr


def test_cos_refusing_sfi_reads_through_pcscd(serve) -> None:
    """Item 3: SFI-referenced reads refused (6A86): sbcard selects the EF and reads it."""
    serve("selectef", multi_record=False)
    r = sbcard("--keys", "test", "--trace", "read", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["card_no"] == "C0000018X" and data["ssn"] == "51990020010228001X"
    trace = r.stderr.replace(" ", "").upper()
    for command in ("00A4020002EF05", "00B2010012", "00A4020002EF06", "00B2080014"):
        assert command in trace, command
    r = sbcard("script", "run", "apdu_scripts/read-basic-info-select-ef.apdu")
    assert r.returncode == 0, r.stderr


def test_bank_number_with_the_cards_pdol_through_pcscd(serve) -> None:
    """Item 2: GPO carries the PDOL data (the public 80A800000B8309… command)."""
    serve("pdol")
    r = sbcard("--trace", "read", "--bank", "--json")
    assert r.returncode == 0, r.stderr
    bank = json.loads(r.stdout)["bank"]
    assert bank["pan"] == "621700*********0016" and not bank["warnings"]
    assert "80A800000B830900000000000000015600" in r.stderr.replace(" ", "").upper()
    assert "6217009999000000016" not in r.stdout + r.stderr        # the PAN stays masked
