"""Meaning of a social security card's 13 historical bytes (spec §1.1, part 2 table 16).

T1–T2 chip provider ID, T3–T5 chip/COS provider defined, T6–T7 card manufacturer ID,
T8–T9 first 4 digits of the issuing region code (BCD), TA–TD card serial within the region.
The card-level key-diversification factor is historical bytes 6..13 (``sbcard.card.factors``;
not the ATR's tail, which ends in TCK on class B and contactless cards). No public registry
maps provider IDs to companies, so they stay hex.
"""

from __future__ import annotations

from dataclasses import dataclass

from sbcard.apdu.atr import Atr
from sbcard.card.factors import card_factor_from_historical
from sbcard.hexutil import is_ascii_digits

HISTORICAL_LEN = 13


@dataclass(frozen=True)
class SsHistorical:
    chip_provider: str        # T1–T2, hex
    cos_info: str             # T3–T5, hex
    card_maker: str           # T6–T7, hex
    region_prefix: str        # T8–T9 as 4 digits ('' if not BCD)
    serial: str               # TA–TD, hex
    diversification_factor: bytes   # historical bytes 6..13

    @classmethod
    def parse(cls, historical: bytes) -> SsHistorical | None:
        """None when the bytes cannot be a social security card's (wrong length)."""
        if len(historical) != HISTORICAL_LEN:
            return None
        h = historical
        region = h[7:9].hex().upper()
        return cls(
            chip_provider=h[0:2].hex().upper(),
            cos_info=h[2:5].hex().upper(),
            card_maker=h[5:7].hex().upper(),
            region_prefix=region if is_ascii_digits(region) else "",
            serial=h[9:13].hex().upper(),
            diversification_factor=card_factor_from_historical(h),
        )


def looks_like_sscard(atr: Atr) -> bool:
    """A guess for ``sbcard readers``: 13 historical bytes whose T8–T9 are BCD digits."""
    info = SsHistorical.parse(atr.historical)
    return info is not None and bool(info.region_prefix)
