"""The one interface operations use to authenticate: "compute what card key N would".

A key source never talks to the user's card: operations drive the card (GET CHALLENGE,
EXTERNAL AUTHENTICATE…) and ask the key source for the cryptograms. Three sources implement
it: a key file (software diversification, development and test), a PSAM card in a second
reader, and an HSM in step mode (factors out, cryptograms in).

Card keys are named by the ID the card uses in EXTERNAL AUTHENTICATE P2 (``KEY_*`` in
``sbcard.card.filesystem``). Everything card-specific that a key source needs is in
``CardContext``: the ATR (card-level factor: historical bytes 6-13), the issuing region
(city and province factors) and the algorithm environment.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sbcard.card import factors as card_factors
from sbcard.crypto.symmetric import Algorithm

if TYPE_CHECKING:
    from sbcard.card.profiles import CardProfile


@dataclass(frozen=True)
class CardContext:
    """What a key source needs to know about one card.

    ``factor`` is given instead of an ATR by a party that only receives the card factor (an
    HSM answering a request); otherwise the card factor comes from the ATR's historical bytes.
    """

    atr: bytes
    region: str                # 6-digit issuing region code (卡的识别码 bytes 1-3)
    algorithm: Algorithm
    factor: bytes | None = None

    @property
    def card_factor(self) -> bytes:
        return self.factor if self.factor is not None else card_factors.card_factor(self.atr)

    @property
    def city_factor(self) -> bytes:
        return card_factors.city_factor(self.region)

    @property
    def province_factor(self) -> bytes:
        return card_factors.province_factor(self.region)

    def factors(self, levels: int) -> list[bytes]:
        """Factors in PSAM order (card, city, province) for a root ``levels`` above the card."""
        return card_factors.chain(self.card_factor, self.region, levels)


class KeySource(ABC):
    """Cryptograms for one card; ``name`` says where the keys come from (for messages)."""

    name: str = "key source"
    #: The card key version to use (the optional 17th byte of INTERNAL/EXTERNAL AUTHENTICATE,
    #: part 5 §6.4.3 and §6.7.3); None = the card's default key, Lc 10 without a version byte.
    #: Chosen by the profile's ``key_version`` or ``--key-version``; it also picks the root in
    #: a key file, the PSAM key ID and the HSM address.
    key_version: int | None = None

    @abstractmethod
    def auth_data(self, ctx: CardContext, key_id: int, challenge: bytes,
                  original: bytes) -> bytes:
        """``A`` for EXTERNAL AUTHENTICATE with card key ``key_id`` (spec §5.5)."""

    @abstractmethod
    def internal_auth_expected(self, ctx: CardContext, r1: bytes, r2: bytes) -> bytes:
        """What a genuine card answers to INTERNAL AUTHENTICATE ``R1 ‖ R2`` (IRK, key 00)."""

    @abstractmethod
    def mac(self, ctx: CardContext, key_id: int, challenge: bytes, data: bytes) -> bytes:
        """4-byte secure-messaging MAC over ``data`` with ``key_id``'s session key."""

    @abstractmethod
    def encrypt(self, ctx: CardContext, key_id: int, challenge: bytes, data: bytes) -> bytes:
        """``LD ‖ data ‖ 80…`` enciphered under ``key_id``'s session key (PIN reload)."""

    def enciphered_command(self, ctx: CardContext, key_id: int, challenge: bytes,
                           header: bytes, plain: bytes) -> bytes:
        """``enc(LD ‖ plain ‖ 80…) ‖ MAC`` for a secure-messaging command whose ``header`` is
        ``CLA INS P1 P2 Lc`` (Lc counting the MAC). A national HSM answers this in one step
        (PIN reload, spec §5.7); other sources compose ``encrypt`` and ``mac``."""
        body = self.encrypt(ctx, key_id, challenge, plain)
        if header[-1] != len(body) + 4:
            header = header[:-1] + bytes((len(body) + 4,))
        return body + self.mac(ctx, key_id, challenge, header + body)

    def has_key(self, key_id: int) -> bool:
        """Whether this source can compute with ``key_id`` (checked before touching a card)."""
        return True

    def for_profile(self, profile: CardProfile) -> KeySource:
        """This source as it answers for a card of ``profile``: the same keys over the same
        open PSAM or HSM, with ``profile``'s card key → PSAM key / HSM address map (a region's
        overlay adds keys: Jiangsu's EF0D key 0D at PSAM 48/13). ``self`` is left as it was:
        other readers' calls may be using it at the same time. A source whose keys do not
        depend on the profile (a key file: roots by card key ID) is its own answer. Closing
        the answer releases nothing; closing ``self`` releases what both use."""
        return self

    def close(self) -> None:  # noqa: B027 - optional hook, most sources hold nothing
        """Release readers, sessions; safe to call twice."""
