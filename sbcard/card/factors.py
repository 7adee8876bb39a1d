"""The key-diversification factors of a card, in one place (spec part 9 §7.3, part 4 §8.1).

Three levels sit above a user card's key: province (省级), city (地市) and the card itself.
Their factors are card facts, so the simulated card, the key file, the PSAM, the HSM request
and ``sbcard crypto diversify`` all take them from here:

* card factor: "用户卡复位应答历史字节的第6~13个字节" (part 9 §7.3.3) — historical bytes
  T6…TD of the parsed ATR. Not "the last 8 ATR bytes": a class B / clock-stop card
  (TD1=80 TD2=1F, part 2 §8.3.3) or a contactless card (PC/SC synthesised ``3B 8x 80 01 …``)
  ends its ATR with TCK, and a factor taken from the tail would be shifted by one byte.
* city factor: the 6-digit region code ‖ ``"sx"``; Zhejiang (33…) uses the first 4 digits
  ‖ ``"00sx"`` (sscard-spec §5.4, from issuance code [S12][S15]).
* province factor: the province's 2 digits ‖ ``"0000sh"``.

``chain`` lists them in the order a PSAM receives them in ``BF DE`` (card first); roots are
diversified last to first.
"""

from __future__ import annotations

from sbcard.apdu.atr import Atr
from sbcard.errors import BadInputError
from sbcard.hexutil import as_bytes

FACTOR_SIZE = 8
#: Historical bytes 6..13 (1-based, part 9 §7.3.3) as a Python slice.
CARD_FACTOR_SLICE = slice(5, 13)
HISTORICAL_MIN = 13

LEVELS = ("card", "city", "province")


def card_factor_from_historical(historical: bytes) -> bytes:
    """Historical bytes 6..13; refuses fewer than 13 (no social security card has fewer)."""
    historical = as_bytes(historical, "historical bytes")
    if len(historical) < HISTORICAL_MIN:
        raise BadInputError(
            f"the card factor is historical bytes 6-13, but the card has only "
            f"{len(historical)} historical byte(s)")
    return historical[CARD_FACTOR_SLICE]


def card_factor(atr_or_historical: bytes) -> bytes:
    """The card factor from a full ATR (parsed: TCK and interface bytes skipped), or from
    the 13 historical bytes alone (what the national reader API calls 卡复位信息)."""
    data = as_bytes(atr_or_historical, "ATR")
    if len(data) == HISTORICAL_MIN and data[0] not in (0x3B, 0x3F):
        return card_factor_from_historical(data)
    return card_factor_from_historical(Atr.parse(data).historical)


def _region(region: str) -> str:
    ok = isinstance(region, str) and len(region) == 6 and region.isascii() and region.isdigit()
    if not ok:
        shown = region if isinstance(region, str) and len(region) <= 12 else "value"
        raise BadInputError(f"region code must be 6 ASCII digits, got {shown!r}")
    return region


def province_factor(region: str) -> bytes:
    """Province level: the province's 2 digits ‖ ``"0000sh"`` (650100 → ``"650000sh"``)."""
    return (_region(region)[:2] + "0000sh").encode("ascii")


def city_factor(region: str) -> bytes:
    """City level: the 6 digits ‖ ``"sx"``; in Zhejiang (33…) the first 4 ‖ ``"00sx"``."""
    region = _region(region)
    if region.startswith("33"):
        return (region[:4] + "00sx").encode("ascii")
    return (region + "sx").encode("ascii")


def chain(card: bytes | None, region: str | None, levels: int = 3) -> list[bytes]:
    """Factors in PSAM order (card, city, province) for a root ``levels`` above the card key.

    ``card`` is the card factor (``None`` when unknown: only levels above the card can be
    given, and a list starting with ``b""`` holds its place); ``region`` gives the others.
    """
    if not 1 <= levels <= 3:
        raise BadInputError(f"diversification levels must be 1..3, got {levels}")
    out = [b"" if card is None else as_bytes(card, "card factor")]
    if levels >= 2:
        if region is None:
            raise BadInputError(f"{levels} diversification levels need the region code")
        out.append(city_factor(region))
    if levels >= 3:
        out.append(province_factor(region or ""))
    return out
