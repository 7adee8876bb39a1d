"""Which readers are there and what is in them."""

from __future__ import annotations

from dataclasses import dataclass

from sbcard.errors import BadInputError
from sbcard.ops.identify import identify_atr


@dataclass(frozen=True)
class ReaderReport:
    index: int
    name: str
    card_present: bool
    atr: str
    card_type: str

    def to_json(self) -> dict:
        return {"index": self.index, "name": self.name, "card_present": self.card_present,
                "atr": self.atr or None, "card_type": self.card_type or None}


def reader_reports() -> list[ReaderReport]:
    from sbcard.transport.pcsc import list_readers

    out = []
    for r in list_readers():
        card_type = ""
        if r.card_present:
            try:
                card_type = identify_atr(r.atr).card_type
            except BadInputError as exc:
                card_type = f"unparsable ATR ({exc})"
        out.append(ReaderReport(r.index, r.name, r.card_present, r.atr.hex().upper(), card_type))
    return out
