"""Fault injection as persona data and as `sbcard sim serve` options."""

from __future__ import annotations

import pytest

from sbcard.errors import BadInputError, CardRemovedError
from sbcard.sim.persona import persona_from_mapping
from sbcard.transport.simulated import SimulatedTransport

SELECT = bytes.fromhex("00A404000F7378312E73682EC9E7BBE1B1A3D5CF00")


def link(faults: dict) -> SimulatedTransport:
    p = persona_from_mapping({"extends": "demo", "name": "f", "faults": faults})
    t = SimulatedTransport(p.build_card())
    t.connect()
    return t


def test_tear_at_nth_command():
    t = link({"tear_at": 2})
    assert t.transmit(SELECT)[-2:] == b"\x90\x00"
    with pytest.raises(CardRemovedError):
        t.transmit(SELECT)


def test_tear_on_command_prefix():
    t = link({"tear_on": "00B2"})
    t.transmit(SELECT)
    with pytest.raises(CardRemovedError):
        t.transmit(bytes.fromhex("00B2072C00"))


def test_chosen_sw_and_delay():
    import time

    t = link({"answer": [{"match": "00B2", "sw": "6A83", "times": 1}], "delay_ms": 30})
    t.transmit(SELECT)
    start = time.perf_counter()
    assert t.transmit(bytes.fromhex("00B2072C00")) == bytes.fromhex("6A83")
    assert time.perf_counter() - start >= 0.03
    assert t.transmit(bytes.fromhex("00B2072C0B"))[-2:] == b"\x90\x00"   # times = 1, exact Le


def test_fault_answer_data_is_hex_checked():
    t = link({"answer": [{"match": "00B2", "sw": "9000", "data": "0x01 02"}]})
    t.transmit(SELECT)
    assert t.transmit(bytes.fromhex("00B2072C00")) == bytes.fromhex("01029000")
    with pytest.raises(BadInputError,
                       match=r"\[faults\.answer\.1\] data: 'x' at position 4 is not a hex"):
        link({"answer": [{"match": "00B2", "sw": "9000", "data": "0x1x"}]})


def test_unknown_fault_key_is_an_error():
    with pytest.raises(BadInputError, match="unknown key"):
        link({"tear_sometimes": 1})


def test_sim_serve_fault_options_are_validated():
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "sbcard", "sim", "serve", "--fail", "00B2-6A83",
                        "--wait", "0.1", "--port", "1"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 2 and "HEX=SW" in r.stderr
