"""Blocking a card or its SSSE application for good, only after the operator named the card.

CARD BLOCK (``84 16 00 00`` ‖ MAC) makes every application of the card unusable: afterwards
the card answers ``6A81`` to every command and does nothing else (part 5 §6.2).
APPLICATION BLOCK (``84 1E 00 01`` ‖ MAC) does so for the SSSE: SELECT then answers ``9303``
(part 5 §6.1). Neither can be undone, so the card number (卡号, EF05) read from the card in the
reader must equal the one the operator confirms before anything is sent — a card swapped in
the reader, or a typing slip, stops here with no command sent.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from sbcard.apdu.channel import ApduChannel
from sbcard.apdu.sw import CardError
from sbcard.card.elements import element
from sbcard.card.filesystem import EF05, KEY_BK, KEY_STK
from sbcard.errors import MismatchError, RefusedError
from sbcard.keys.base import KeySource
from sbcard.ops.pin import block_application, block_card
from sbcard.ops.read import read_context, read_record_by_tag

Target = Literal["card", "application"]
CARD_NO_TAG = 0x07


@dataclass(frozen=True)
class BlockResult:
    target: Target
    card_no: str

    def to_json(self) -> dict[str, object]:
        return {"blocked": self.target, "card_no": self.card_no}


def read_card_number(channel: ApduChannel) -> str:
    """卡号 from EF05 of the selected SSSE (free read on every generation)."""
    r = read_record_by_tag(channel, EF05, CARD_NO_TAG)
    if not r.ok:
        raise CardError.for_sw(r.sw, "READ RECORD EF05 卡号")
    el = element("EF05", CARD_NO_TAG)
    return str(el.decode_value(r.data[2:2 + el.length]).value).strip()


def block(channel: ApduChannel, keys: KeySource, target: Target,
          confirm: Callable[[str], str]) -> BlockResult:
    """Read the card number, ask ``confirm(card_no)`` for the operator's entry, and block only
    when both are equal. BK and STK are checked before the card is touched."""
    for key_id, name in ((KEY_BK, "BK, the lock control key"), (KEY_STK, "STK, the MAC key")):
        if not keys.has_key(key_id):
            raise RefusedError(f"{keys.name} lacks card key {key_id:02X} ({name}) of "
                               f"{'CARD' if target == 'card' else 'APPLICATION'} BLOCK: "
                               "nothing sent")
    with channel.exclusive():
        ctx = read_context(channel)
        card_no = read_card_number(channel)
        typed = confirm(card_no).strip().upper()
        if not secrets.compare_digest(typed.encode(), card_no.upper().encode()):
            raise MismatchError(f"the card in the reader is 卡号 {card_no}, not the confirmed "
                                f"{typed or '(nothing)'}: nothing was blocked")
        (block_card if target == "card" else block_application)(channel, keys, ctx)
    return BlockResult(target, card_no)
