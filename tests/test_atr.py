import pytest

from sbcard.apdu.atr import Atr
from sbcard.card.factors import card_factor
from sbcard.card.historical import SsHistorical
from sbcard.errors import BadInputError
from sbcard.ops.identify import identify_atr

# Sample ATRs from the spec reference §1.2 (public traces; no personal data).
SICHUAN = bytes.fromhex("3B6D000000814A444686605199000001AC")


def test_t0_social_security_atr():
    atr = Atr.parse(SICHUAN)
    assert atr.protocols == (0,)
    assert atr.groups[0].tb == 0 and atr.groups[0].tc == 0
    assert atr.historical.hex().upper() == "00814A444686605199000001AC"
    assert atr.tck is None and not atr.warnings


def test_historical_bytes_meaning_and_factor():
    ss = SsHistorical.parse(Atr.parse(SICHUAN).historical)
    assert ss.chip_provider == "0081"
    assert ss.card_maker == "8660"
    assert ss.region_prefix == "5199"
    assert ss.serial == "000001AC"
    factor = bytes.fromhex("86605199000001AC")
    assert ss.diversification_factor == card_factor(SICHUAN) == factor


def test_t1_atr_with_tck():
    # T0=80: TD1 only; TD1=80: TD2 follows, T=0; TD2=01: T=1. TCK = XOR of T0..TD2 = 01.
    atr = Atr.parse(bytes.fromhex("3B80800101"))
    assert atr.protocols == (0, 1)
    assert atr.tck == 0x01 and not atr.warnings


def test_wrong_or_missing_tck_warns():
    assert any("TCK 00 is wrong" in w for w in Atr.parse(bytes.fromhex("3B80800100")).warnings)
    assert any("TCK missing" in w for w in Atr.parse(bytes.fromhex("3B808001")).warnings)


@pytest.mark.parametrize(
    ("hexatr", "message"),
    [("3B", "at least TS and T0"), ("3A00", "TS byte is 3A"), ("3B6D0000008148", "historical")],
)
def test_bad_atrs(hexatr, message):
    with pytest.raises(BadInputError, match=message):
        Atr.parse(bytes.fromhex(hexatr))


def test_identify():
    assert "社会保障卡" in identify_atr(SICHUAN).card_type
    assert identify_atr(bytes.fromhex("3B00")).ss is None


@pytest.mark.parametrize("hexatr", [
    "3B6D000000814A444686605199000001AC",            # the 社保卡 sample above (T=0)
    "3B80800101",                                    # T=0 and T=1, with TCK
    "3B8F8001804F0CA000000306030001000000006A",      # PC/SC part 3 contactless storage card
    "3BF81300008131FE454A434F5076323431B7",          # TA1..TD2, TA3/TB3
])
def test_interface_and_historical_bytes_agree_with_pyscard(hexatr):
    """pyscard's ``smartcard.ATR`` is the second opinion on well-formed ATRs (we keep our own
    parser: docs/architecture.md says why)."""
    from smartcard.ATR import ATR

    ours, theirs = Atr.parse(bytes.fromhex(hexatr)), ATR(list(bytes.fromhex(hexatr)))
    assert [(g.ta, g.tb, g.tc, g.td) for g in ours.groups] == list(
        zip(theirs.TA, theirs.TB, theirs.TC, theirs.TD, strict=True))
    assert list(ours.historical) == theirs.getHistoricalBytes()
    assert ours.tck == theirs.TCK
    assert set(ours.protocols) == {int(p[2:]) for p in theirs.getSupportedProtocols()}
