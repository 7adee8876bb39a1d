"""What a batch needs, checked before the first card: the key source and the certificate
authority each recipe uses. A bureau finds a missing ``--keys`` on the command line, not on
three spoiled cards.
"""

from __future__ import annotations

from dataclasses import dataclass

from sbcard.errors import BadInputError
from sbcard.ops.script import Script

_NEEDS_KEYS = ("authenticate", "reload-pin", "sm2-issue")


@dataclass(frozen=True)
class RecipeNeeds:
    keys: str | None = None        # where the recipe first needs a key source
    ca: str | None = None          # where it first needs a certificate authority

    def missing(self, *, has_keys: bool, has_ca: bool) -> list[str]:
        out = []
        if self.keys and not has_keys:
            out.append(f"a key source ({self.keys}): give --keys FILE, --psam READER or "
                       "--hsm-command CMD")
        if self.ca and not has_ca:
            out.append(f"a certificate authority ({self.ca}): give --ca CERT.pem,KEY.pem")
        return out


def recipe_needs(script: Script) -> RecipeNeeds:
    keys = ca = None
    for st in script.statements:
        mac = st.verb == "write-element" and "mac" in st.args[2:]
        if keys is None and (st.verb in _NEEDS_KEYS or mac):
            keys = f"{st.where} {st.verb}"
        if ca is None and st.verb == "sm2-issue":
            ca = f"{st.where} {st.verb}"
    return RecipeNeeds(keys, ca)


def usable_recipes(recipes: dict[str, Script], *, has_keys: bool, has_ca: bool,
                   generation: str | None = None) -> tuple[dict[str, Script], list[str]]:
    """The recipes this batch can run, and why the others cannot (one line each).

    ``generation`` ("2.0"/"3.0") when the cards are known (simulated blanks): then that
    recipe must be usable. Otherwise at least one must be; a card whose recipe is unusable
    is refused before anything is written to it.
    """
    usable: dict[str, Script] = {}
    why: list[str] = []
    for key, script in recipes.items():
        if generation is not None and key != generation:
            continue
        missing = recipe_needs(script).missing(has_keys=has_keys, has_ca=has_ca)
        if missing:
            why.append(f"the {key} recipe needs {' and '.join(missing)}")
        else:
            usable[key] = script
    if not usable:
        raise BadInputError("; ".join(why) + "; no card was touched")
    return usable, why
