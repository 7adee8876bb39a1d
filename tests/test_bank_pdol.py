"""Issue 11 item 2: the bank card number through GPO with the card's PDOL, and the fallbacks.

The GPO bytes compared here are public: ``80A800000B830900000000000000015600`` is what
issuance code sends to a card whose PDOL is ``9F7A01 9F0206 5F2A02``
(leithergit/Z390Kylin Evolis_Z390_printer.cpp, ReadBankCard1); ``00B2011400`` is its
shortcut read of SFI 2 record 1. Card numbers are the personas' synthetic ones.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from sbcard.apdu import commands as cmds
from sbcard.apdu import tlv
from sbcard.apdu.channel import ApduChannel
from sbcard.apdu.t0 import T0Layer
from sbcard.card.filesystem import PBOC_DEBIT_AID
from sbcard.ops.bank import pdol_data, read_bank
from sbcard.sim.card_os import SimCard
from sbcard.sim.persona import persona_from_mapping
from sbcard.transport.simulated import SimulatedTransport
from tests.cli_runner import run_cli

PDOL = "9F7A019F02065F2A02"
PUBLIC_GPO = "80A800000B830900000000000000015600"
BANK = {"pan": "6217009999000000016", "expiry": "310630"}
QPBOC_PDOL = "9F66049F02069F03069F1A0295055F2A029A039C019F3704"


def _channel(**bank: object) -> tuple[ApduChannel, list[str]]:
    card = persona_from_mapping({"extends": "demo", "bank": {**BANK, **bank}}).build_card()
    sent: list[str] = []

    def record(_card: SimCard, cmd: object) -> None:
        sent.append(cmd.to_bytes().hex().upper())  # type: ignore[attr-defined]

    card.command_hooks.append(record)
    t = T0Layer(SimulatedTransport(card))   # as sessions build it (ops/session.stack)
    t.connect()
    return ApduChannel(t), sent


def test_gpo_with_the_cards_pdol_is_the_public_command() -> None:
    ch, sent = _channel(pdol=PDOL)
    info = read_bank(ch)
    assert info.pan == "6217009999000000016" and info.expiry == "2031-06"
    assert PUBLIC_GPO in sent and not info.warnings


def test_pdol_card_refuses_gpo_data_that_does_not_match() -> None:
    ch, _ = _channel(pdol=PDOL)
    ch.check(cmds.select_by_name(PBOC_DEBIT_AID))
    assert ch.send(cmds.get_processing_options()).sw == 0x6700            # 83 00
    assert ch.send(cmds.get_processing_options(bytes(8))).sw == 0x6700     # one byte short
    assert ch.send(cmds.get_processing_options(bytes(10))).sw == 0x6700    # one too many
    assert ch.send(cmds.get_processing_options(bytes(9))).ok               # 1 + 6 + 2


def test_qpboc_pdol_gets_documented_terminal_data() -> None:
    data = pdol_data(bytes.fromhex(QPBOC_PDOL))
    assert len(data) == 4 + 6 + 6 + 2 + 5 + 2 + 3 + 1 + 4
    fields = dict(zip([t for t, _ in tlv.parse_dol(bytes.fromhex(QPBOC_PDOL))],
                      _split(data, [4, 6, 6, 2, 5, 2, 3, 1, 4]), strict=True))
    assert fields[0x9F1A].hex() == "0156" and fields[0x5F2A].hex() == "0156"  # China, CNY
    assert fields[0x9F02] == bytes(6) and fields[0x95] == bytes(5)
    assert fields[0x9A].hex() == dt.date.today().strftime("%y%m%d")
    assert pdol_data(bytes.fromhex(QPBOC_PDOL))[-4:] != data[-4:]           # fresh UN
    ch, _ = _channel(pdol=QPBOC_PDOL)
    assert read_bank(ch).pan == "6217009999000000016"


def test_unknown_tag_is_zero_filled_and_lengths_follow_the_card() -> None:
    # DF60 (unknown to the terminal) 2 bytes; 5F2A asked with 3 bytes: numeric, left-padded.
    assert pdol_data(bytes.fromhex("DF60025F2A03")).hex().upper() == "0000000156"


def _split(data: bytes, sizes: list[int]) -> list[bytes]:
    out, pos = [], 0
    for size in sizes:
        out.append(data[pos:pos + size])
        pos += size
    return out


@pytest.mark.parametrize("sw", ["6985", "6700"])
def test_gpo_refused_falls_back_to_read_record(sw: str) -> None:
    ch, sent = _channel(gpo_sw=sw, record_sfi=2)
    info = read_bank(ch)
    assert info.pan == "6217009999000000016"
    assert "00B2011400" in sent                                          # SFI 2 record 1
    assert any("GET PROCESSING OPTIONS refused" in w for w in info.warnings)


def test_aid_found_through_the_pse() -> None:
    ch, sent = _channel(aid="A000000333010106", pse=True)
    info = read_bank(ch)
    assert info.aid == "A000000333010106" and info.pan == "6217009999000000016"
    assert "00A404000E315041592E5359532E444446303100" in sent           # 1PAY.SYS.DDF01


def test_aid_found_through_the_ppse() -> None:
    ch, sent = _channel(aid="A000000333010106", ppse=True)
    info = read_bank(ch)
    assert info.aid == "A000000333010106" and info.pan == "6217009999000000016"
    assert "00A404000E325041592E5359532E444446303100" in sent           # 2PAY.SYS.DDF01


def test_no_application_anywhere() -> None:
    card = persona_from_mapping({"extends": "v1"}).build_card()
    t = T0Layer(SimulatedTransport(card))   # as sessions build it (ops/session.stack)
    t.connect()
    info = read_bank(ApduChannel(t))
    assert info.pan is None and "PSE" in info.warnings[0]


def test_cli_bank_with_pdol_persona(capsys) -> None:
    code, out, err = run_cli(capsys, "--sim", "pdol", "read", "--bank", "--json")
    assert code == 0, err
    assert json.loads(out)["bank"]["pan"] == "621700*********0016"
