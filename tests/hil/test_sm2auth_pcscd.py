"""SM2 card authentication through the real pcscd: the v3 card served into vpcd, checked by
separate ``sbcard`` processes as an operator would run them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from sbcard.crypto import sm2
from tests.hil.conftest import READER

pytestmark = pytest.mark.pcscd


def sbcard(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sbcard", "-r", READER, *args],
                          capture_output=True, text=True, timeout=60)


def test_verify_card_sm2_genuine_then_forged(serve):
    served = serve("v3")
    r = sbcard("verify", "card", "--sm2", "--trust", "test")
    assert r.returncode == 0, r.stderr
    assert "SM2 signature" in r.stdout and "TEST card C0000018X" in r.stdout
    r = sbcard("--trace", "verify", "card", "--sm2", "--trust", "test", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["method"] == "sm2"
    assert ">> 0088000020" in r.stderr                       # the profile's command on the wire
    assert served.card.pki.signatures == 2
    served.card.pki.key = sm2.PrivateKey(4242)  # certificate without its key
    r = sbcard("verify", "card", "--sm2", "--trust", "test")
    assert r.returncode == 9 and "does not verify" in r.stderr


def test_verify_card_sm2_on_a_t0_reader_answering_61xx(serve):
    serve("v3", t0_get_response=True, le_zero_6c=True)
    r = sbcard("verify", "card", "--sm2", "--trust", "test")
    assert r.returncode == 0, r.stderr


def test_verify_card_sm2_needs_a_third_generation_card(serve):
    serve("demo")
    r = sbcard("verify", "card", "--sm2", "--trust", "test")
    assert r.returncode == 9 and "no PKI application" in r.stderr
