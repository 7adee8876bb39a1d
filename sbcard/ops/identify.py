"""What is this card? ATR decoding for ``sbcard atr`` and ``sbcard readers``."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sbcard.apdu.atr import Atr
from sbcard.card.historical import SsHistorical, looks_like_sscard


@dataclass(frozen=True)
class AtrReport:
    atr: Atr
    ss: SsHistorical | None
    card_type: str

    def to_json(self) -> dict:
        a = self.atr
        fi, di = a.fi_di
        return {
            "atr": a.raw.hex().upper(),
            "ts": f"{a.ts:02X}",
            "convention": a.convention,
            "t0": f"{a.t0:02X}",
            "interface_bytes": [
                {k: (f"{v:02X}" if isinstance(v, int) and k != "index" else v)
                 for k, v in asdict(g).items() if v is not None}
                for g in a.groups
            ],
            "protocols": [f"T={p}" for p in a.protocols],
            "fi": fi,
            "di": di,
            "extra_guard_time": a.guard_time_extra,
            "historical": a.historical.hex().upper(),
            "tck": None if a.tck is None else f"{a.tck:02X}",
            "card_type": self.card_type,
            "social_security": None if self.ss is None else {
                "chip_provider": self.ss.chip_provider,
                "cos_info": self.ss.cos_info,
                "card_maker": self.ss.card_maker,
                "region_prefix": self.ss.region_prefix,
                "serial": self.ss.serial,
                "diversification_factor": self.ss.diversification_factor.hex().upper(),
            },
            "warnings": list(a.warnings),
        }


def identify_atr(raw: bytes) -> AtrReport:
    atr = Atr.parse(raw)
    ss = SsHistorical.parse(atr.historical)
    if ss is not None and looks_like_sscard(atr):     # the guess parses the same bytes
        card_type = f"social security card 社会保障卡 (region {ss.region_prefix}..)"
    else:
        card_type = "unknown card 未知卡片"
    return AtrReport(atr, ss, card_type)
