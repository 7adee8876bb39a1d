"""What a simulated card's PKI key pair and certificate are made from, without making them.

Shared by the PKI application (:mod:`sbcard.sim.pki_app`, light, installed on every 3.0
card) and the SM2 material (:mod:`sbcard.sim.pki`, loaded at the first need): the persona's
``[extra.pki]`` choices, the certificate's subject fields, serial and validity. Nothing here
needs SM2, X.509 or asn1crypto.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sbcard.crypto.symmetric import sm3
from sbcard.errors import BadInputError
from sbcard.sim.extras import PkiPersona

if TYPE_CHECKING:
    from sbcard.sim.persona import Persona

__all__ = ["CardPlan", "persona_seed", "pki_conf"]


def persona_seed(persona: Persona) -> bytes:
    card = persona.card
    parts = [persona.atr.hex(), str(card.get("card_no", "")), str(card.get("region", "")),
             str(card.get("serial", "")), str(persona.holder.get("ssn", ""))]
    return "|".join(parts).encode("utf-8")


def _date(value: Any, what: str, persona: Persona) -> date | datetime:
    if isinstance(value, datetime | date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise BadInputError(f"persona {persona.name}: {what} {value!r} is not YYYY-MM-DD") \
            from None


def pki_conf(persona: Persona) -> PkiPersona:
    """``[extra.pki]`` as the persona loader validated it (all defaults when absent)."""
    return persona.pki or PkiPersona()


@dataclass(frozen=True)
class CardPlan:
    """What the card's key pair and certificate will be made from (no SM2 needed yet)."""

    persona: Persona
    key_pair: bool
    issued: bool

    @classmethod
    def of(cls, persona: Persona) -> CardPlan:
        conf = pki_conf(persona)
        return cls(persona, conf.key_pair, conf.issued)

    @property
    def card_no(self) -> str:
        return str(self.persona.card.get("card_no", self.persona.card.get("serial", "")))

    @property
    def region(self) -> str:
        return str(self.persona.card.get("region", ""))

    @property
    def serial(self) -> int:
        return int.from_bytes(sm3(b"serial|" + persona_seed(self.persona))[:10], "big") >> 1 | 1

    @property
    def not_before(self) -> date | datetime:
        return pki_conf(self.persona).not_before or _date(
            self.persona.card.get("issue_date", "2020-01-01"), "certificate not_before",
            self.persona)

    @property
    def not_after(self) -> date | datetime:
        return pki_conf(self.persona).not_after or _date(
            self.persona.card.get("expiry_date", "2049-12-31"), "certificate not_after",
            self.persona)
