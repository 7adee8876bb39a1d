"""Issue 11 item 5: issuing a 3.0 card's SM2 key pair in the order and with the bytes of public
issuance code.

Source of the expected commands: leithergit/Z390Kylin Evolis_Z390_printer/evolis_z390_printer.cpp
— ReadCard: ``00A404000C504B492EC9E7BBE1B1A3D5CF``, ``00A404000C53532E434552542E41444631``,
``00A40000020012``, ``00B0000042``; only when that answer is all zeros: ``0084000010``,
``0020018110 <proof>``, ``8040000008C0020012C2020013``, ``80C9820008C0020012C2020013``,
``80C9828000``. WriteCard7: user PIN, then ``0084000010`` + ``0020010010 <proof>`` (admin),
``00A40000020018``, ``00D6000070 …`` in 0x70-byte chunks.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from importlib import resources

import pytest

from sbcard.apdu.sw import SW, AuthFailedError
from sbcard.card.profiles import load_profile, profile_from_mapping
from sbcard.ops.pki_issue import CertificateAuthority, IssueConfig, issue_sm2
from sbcard.ops.sm2auth import load_trust_roots, sm2_authenticate
from tests.cli_runner import run_cli
from tests.fakes import recorded_sim_card

# sbcard adds Le 00 to SELECT by name (the FCI); the public code sends the same APDUs without it
DDF = "00A404000C504B492EC9E7BBE1B1A3D5CF00"
ADF = "00A404000C53532E434552542E4144463100"


def _issue(channel, profile=None, **kw):
    return issue_sm2(channel, profile or load_profile("mohrss-3.0"),
                     CertificateAuthority.load("test"), admin_pin=kw.pop("admin_pin", None),
                     card_no="C0000018X", region="519900", not_before=dt.date(2024, 1, 1),
                     not_after=dt.date(2034, 1, 1), **kw)


def _profile(**changes):
    """The 3.0 profile with ``[sm2_issue]`` keys changed as a region's file would."""
    text = (resources.files("sbcard.card.profiles") / "mohrss-3.0.toml").read_text("utf-8")
    data = tomllib.loads(text)
    data["sm2_issue"].update(changes)
    return profile_from_mapping(data, "card profile region.toml")


def _in_order(sent: list[str], expected: list[str]) -> None:
    """Every expected command (exact hex, or a prefix ending in '…') appears in this order."""
    at = 0
    for want in expected:
        prefix = want.endswith("…")
        text = want.rstrip("…")
        for i in range(at, len(sent)):
            if sent[i] == text or (prefix and sent[i].startswith(text)):
                at = i + 1
                break
        else:
            pytest.fail(f"{want} not sent after position {at}: {sent}")


def test_blank_card_generates_after_the_user_pin_as_public_code_does() -> None:
    card, ch, sent = recorded_sim_card("blank3")
    assert card.pki.key is None
    issued = _issue(ch)
    _in_order(sent, [DDF, ADF, "00A40000020012", "00B0000042", "0084000010",
                     "0020018110…", "8040000008C0020012C2020013",
                     "80C9820008C0020012C2020013", "80C9828000", "0084000010",
                     "0020010010…", "00A40000020018", "00D6000070…", "00D6007070…"])
    # the user PIN proof comes right before the key generation, as in ReadCard
    gen = sent.index("8040000008C0020012C2020013")
    assert sent[gen - 1].startswith("0020018110") and sent[gen - 2] == "0084000010"
    assert issued.generated and card.pki.key is not None
    assert issued.certificate.public_key == card.pki.key.public_key
    # EF 0012 now shows the new public key, as the next issuance would read it
    assert bytes(card.pki.key_ef.data[2:]) == card.pki.key.public_key.to_bytes(prefix=False)


def test_card_that_holds_a_key_pair_is_certified_without_generating() -> None:
    card, ch, sent = recorded_sim_card("keyed3")
    before = card.pki.key
    assert before is not None and card.pki.certificate is None
    issued = _issue(ch)
    assert not issued.generated
    assert not any(c.startswith(("8040", "80C9")) for c in sent), sent
    _in_order(sent, [DDF, ADF, "00A40000020012", "00B0000042", "0020018110…",
                     "0020010010…", "00A40000020018", "00D6000070…"])
    assert card.pki.key is before
    assert issued.certificate.public_key == before.public_key
    result = sm2_authenticate(ch, load_profile("mohrss-3.0"), load_trust_roots("test"),
                              user_pin="123456")
    assert "C0000018X" in result.subject


def test_key_fid_empty_always_generates() -> None:
    card, ch, sent = recorded_sim_card("keyed3")
    before = card.pki.key
    issued = _issue(ch, _profile(key_fid=""))
    assert "00B0000042" not in sent and "8040000008C0020012C2020013" in sent
    assert issued.generated and card.pki.key != before


def test_wrong_user_pin_stops_before_key_generation() -> None:
    card, ch, sent = recorded_sim_card("blank3")
    with pytest.raises(AuthFailedError) as err:
        _issue(ch, user_pin="654321")
    assert err.value.tries_left == 2
    assert not any(c.startswith("8040") for c in sent) and card.pki.key is None


def test_simulated_card_generates_only_after_the_user_pin() -> None:
    from sbcard.apdu.command import CommandApdu
    from sbcard.ops.sm2auth import Sm2AuthConfig, select_pki, verify_pki_pin

    _, ch, _ = recorded_sim_card("blank3")
    auth = Sm2AuthConfig.from_profile(load_profile("mohrss-3.0"))
    select_pki(ch, auth)
    generate = CommandApdu.parse(bytes.fromhex("8040000008C0020012C2020013"))
    assert ch.send(generate).sw == SW.SECURITY_NOT_SATISFIED
    # the admin PIN is not what public code verifies before 80 40
    verify_pki_pin(ch, bytes.fromhex("00200100"), "12345678", 16, "VERIFY admin", "admin PIN")
    assert ch.send(generate).sw == SW.SECURITY_NOT_SATISFIED
    export = CommandApdu.parse(bytes.fromhex("80C9828000"))
    assert ch.send(export).sw == SW.KEY_NOT_FOUND              # no key pair yet
    verify_pki_pin(ch, bytes.fromhex("00200181"), "123456", 16, "VERIFY user", "user PIN")
    assert ch.send(generate).sw == SW.OK


def test_ef_0012_of_a_blank_card_reads_all_zeros() -> None:
    from sbcard.apdu.command import CommandApdu

    _, ch, _ = recorded_sim_card("blank3")
    for apdu in (DDF, ADF, "00A40000020012"):
        assert ch.send(CommandApdu.parse(bytes.fromhex(apdu))).ok
    r = ch.send(CommandApdu.parse(bytes.fromhex("00B0000042")))
    assert r.ok and r.data == bytes(66)


def test_issue_config_rejects_a_key_read_too_short_for_a_key() -> None:
    from sbcard.errors import BadInputError

    with pytest.raises(BadInputError, match="key_read_le"):
        IssueConfig.from_profile(_profile(key_read_le=40))


def test_cli_personalise_keyed_card_keeps_its_key(capsys, tmp_path) -> None:
    from tests.holders_factory import holder_rows, write_csv

    csv = write_csv(tmp_path / "h.csv", holder_rows(1))
    code, out, err = run_cli(capsys, "--sim", "keyed3", "--keys", "test", "personalise",
                             str(csv), "--no-progress", "--ca", "test")
    assert code == 0, err
    assert "done 完成 1/1" in out
