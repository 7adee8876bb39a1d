"""From a root key down to a card key, level by level, keeping every intermediate key.

``card_algos.diversify_levels`` gives the final key; debugging a key ceremony needs each
factor and each key on the way (province → city → card, spec §5.4), and the choice of which
levels apply from what is known (region code, ATR, how high the root sits). The factors
themselves come from :mod:`sbcard.card.factors`, the one place that knows them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sbcard.card import factors as card_factors
from sbcard.crypto import card_algos
from sbcard.crypto.symmetric import Algorithm
from sbcard.errors import BadInputError

#: Levels above a card key, root side first (the order keys are derived in).
TOP_DOWN = ("province", "city", "card")
DEFAULT_LEVELS = 2


class FactorChoiceError(BadInputError):
    """The factors asked for do not fit together (a usage error at the command line)."""


@dataclass(frozen=True)
class Step:
    """One level: the factor applied and the key it gave."""

    level: str          # "province", "city", "card", or "factor N" for explicit factors
    factor: bytes
    key: bytes

    @property
    def factor_ascii(self) -> str | None:
        """``"650100sx"`` for the region factors; None for binary ones."""
        text = self.factor.decode("latin-1")
        return text if self.factor.isascii() and text.isprintable() else None


@dataclass(frozen=True)
class Diversification:
    """The whole path; ``complete`` is False when it stopped above the card level."""

    algorithm: Algorithm
    root: bytes
    levels: int
    steps: tuple[Step, ...]
    complete: bool

    @property
    def key(self) -> bytes:
        return self.steps[-1].key if self.steps else self.root

    @property
    def note(self) -> str | None:
        if self.complete:
            return None
        return "no --atr: stopped above the card level, so the last key is not the card key"


def level_factors(levels: int, region: str | None,
                  atr: bytes | None) -> tuple[list[tuple[str, bytes]], bool]:
    """(level, factor) pairs in the order applied for a root ``levels`` above the card key,
    and whether the card level is included (it needs the ATR or historical bytes)."""
    chain = list(TOP_DOWN[3 - levels:]) if 1 <= levels <= 3 else []
    if not chain:
        raise FactorChoiceError(f"diversification levels must be 1..3, got {levels}")
    if chain != ["card"] and region is None:
        raise FactorChoiceError(f"--levels {levels} needs --region (or give --factor)")
    complete = atr is not None
    if atr is None:
        chain = chain[:-1]
        if not chain:
            raise FactorChoiceError("--levels 1 uses the card factor only: give --atr")
    card = card_factors.card_factor(atr) if atr is not None else None
    by_level = dict(zip(card_factors.LEVELS,
                        card_factors.chain(card, region, 3 if region else 1), strict=False))
    return [(level, by_level[level]) for level in chain], complete


def explicit_factors(factors: Sequence[bytes]) -> list[tuple[str, bytes]]:
    """Factors given in PSAM order (card first), named ``factor N``, in the order applied."""
    return [(f"factor {i}", factors[i - 1]) for i in range(len(factors), 0, -1)]


def diversify_root(algorithm: Algorithm, root: bytes, *, region: str | None = None,
                   atr: bytes | None = None, levels: int | None = None,
                   factors: Sequence[bytes] = ()) -> Diversification:
    """Diversify ``root`` through the region/ATR levels (``levels`` defaults to 2: city,
    card) or through explicit ``factors`` (PSAM order), which replace all three."""
    root = algorithm.check_key(root, "root key")
    if factors:
        if region is not None or atr is not None or levels is not None:
            raise FactorChoiceError("--factor replaces --region, --atr and --levels")
        pairs, complete, depth = explicit_factors(factors), True, len(factors)
    else:
        depth = DEFAULT_LEVELS if levels is None else levels
        pairs, complete = level_factors(depth, region, atr)
    key = root
    steps: list[Step] = []
    for level, factor in pairs:
        key = card_algos.diversify(algorithm, key, factor)
        steps.append(Step(level, factor, key))
    return Diversification(algorithm, root, depth, tuple(steps), complete)
