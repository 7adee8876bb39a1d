"""Issue 11 item 3: reading by SELECT EF + current EF when a COS refuses SFI addressing.

The command bytes compared here are those of the public traces (SI_3rdCard
docs/加密机方式指令流.txt and docs/EgAPP-20180611.log): ``00A4020002EF05``, ``00B2010012``,
``00B2030006``, ``00B207000B``, ``00A4020002EF06``, ``00B2080014``, ``00B2090020``,
``00B24E0016``. The answers are the persona's (synthetic) records.
"""

from __future__ import annotations

import pytest

from sbcard.apdu.channel import ApduChannel
from sbcard.apdu.sw import CardError
from sbcard.apdu.t0 import T0Layer
from sbcard.card.profiles import load_profile
from sbcard.keys.builtin import builtin_key_file
from sbcard.ops.read import Addressing, read_card, read_context, read_photo
from sbcard.sim.card_os import SimCard
from sbcard.sim.persona import load_persona
from sbcard.transport.simulated import SimulatedTransport
from tests.cli_runner import run_cli

TRACE_COMMANDS = ["00A4020002EF05", "00B2010012", "00B2030006", "00B207000B",
                  "00A4020002EF06", "00B2080014", "00B2090020", "00B24E0016"]


def _card(persona: str = "selectef", **behaviour: object) -> tuple[SimCard, ApduChannel,
                                                                      list[str]]:
    p = load_persona(persona)
    for key, value in behaviour.items():
        setattr(p.behaviour, key, value)
    card = p.build_card()
    sent: list[str] = []

    def record(_card: SimCard, cmd) -> None:
        sent.append(cmd.to_bytes().hex().upper())
        return None

    card.command_hooks.append(record)
    t = T0Layer(SimulatedTransport(card))   # as sessions build it (ops/session.stack)
    t.connect()
    return card, ApduChannel(t), sent


def _subsequence(needles: list[str], haystack: list[str]) -> bool:
    it = iter(haystack)
    return all(any(n == h for h in it) for n in needles)


@pytest.mark.parametrize("first", list(Addressing))
def test_cos_refusing_sfi_reads_is_read_like_the_traces(first: Addressing) -> None:
    _, ch, sent = _card(multi_record=False)
    report = read_card(ch, keys=builtin_key_file(), addressing=first)
    data = report.to_json()
    assert data["name"] == "买买提·测试" and data["card_no"] == "C0000018X"
    assert not data["warnings"]
    assert _subsequence(TRACE_COMMANDS, sent), sent
    assert "0082000A10" in "".join(sent)           # RKSSSE before EF06, as in the trace


def test_select_ef_first_sends_no_sfi_read() -> None:
    _, ch, sent = _card(multi_record=False)
    read_card(ch, keys=builtin_key_file(), addressing=Addressing.SELECT_EF)
    reads = [c for c in sent if c.startswith("00B2")]
    assert reads and all(int(c[6:8], 16) >> 3 == 0 for c in reads)


@pytest.mark.parametrize("sw", [0x6A81, 0x6A82, 0x6A83, 0x6A86])
def test_every_refusal_sw_of_the_issue_falls_back(sw: int) -> None:
    _, ch, _ = _card(sfi_refused_sw=sw)
    data = read_card(ch, keys=builtin_key_file()).to_json()
    assert data["ssn"] == "51990020010228001X" and not data["warnings"]


def test_trace_replies_have_the_trace_lengths() -> None:
    """Each READ RECORD of the trace gets exactly Le bytes and 9000 (no 6Cxx, no 61xx)."""
    _, ch, _ = _card()
    from sbcard.apdu import commands as cmds
    from sbcard.card.filesystem import SSSE_NAME
    from sbcard.ops.auth import external_authenticate

    ch.check(cmds.select_by_name(SSSE_NAME))
    ctx = read_context(ch, addressing=Addressing.SELECT_EF)
    external_authenticate(ch, builtin_key_file(), ctx, 0x0A)
    for raw in TRACE_COMMANDS:
        answer = ch.transport.transmit(bytes.fromhex(raw))
        assert answer[-2:] == b"\x90\x00", raw
        if raw.startswith("00B2"):
            assert len(answer) - 2 == int(raw[8:10], 16), raw


def test_sfi_card_still_reads_with_sfi_only() -> None:
    _, ch, sent = _card("v3")
    read_card(ch, keys=builtin_key_file())
    assert not any(c.startswith("00A402") for c in sent)


def test_read_context_and_photo_fall_back() -> None:
    _, ch, _ = _card()
    assert read_context(ch).region == "519900"
    photo = read_photo(ch, keys=builtin_key_file())
    assert photo.startswith(b"\xff\xd8") and photo.endswith(b"\xff\xd9")


def test_a_real_refusal_is_not_hidden() -> None:
    _, ch, _ = _card()
    with pytest.raises(CardError):                # 6982 for EF06 without keys: no fallback loop
        read_photo(ch)


def test_profile_chooses_the_first_addressing(tmp_path) -> None:
    assert Addressing.of(load_profile("mohrss-3.0")) is Addressing.SFI
    src = tmp_path / "region.toml"
    src.write_text('name = "region"\ngeneration = "2.0"\nef06_tags = ["08", "09"]\n'
                   '[read]\naddressing = "select-ef"\n', encoding="utf-8")
    assert Addressing.of(load_profile(str(src))) is Addressing.SELECT_EF


def test_cli_addressing_option(capsys) -> None:
    code, out, err = run_cli(capsys, "--sim", "selectef", "--keys", "test", "read",
                             "--addressing", "select-ef", "--json")
    assert code == 0, err
    assert '"C0000018X"' in out
