"""Personas from keyword arguments, on top of a built-in persona (the ``persona_factory``).

``make_persona("demo", generation="3.0", pin="741852", pin_tries=1, name="张三")`` is the demo
card as a third-generation card with another PIN, one try left and another holder name. Every
keyword maps onto a section of the persona file format (docs/simulator.md), so anything a
factory builds can also be written as a file — ``persona_file(...)`` does that, for
``sbcard --sim FILE``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sbcard.card.elements import BY_KEY
from sbcard.card.profiles import profile_for
from sbcard.sim.persona import Persona, _load_mapping, persona_from_mapping

#: generation → the 规范版本 field written when the base persona's does not fit (and the card
#: profile, ``profile_for`` of it)
SPEC_VERSIONS = {"1": "1.00", "2": "2.00", "3": "3.00"}
#: keyword → ``[behaviour]`` field
BEHAVIOUR_KEYWORDS = {"t0": "t0_get_response", "t0_get_response": "t0_get_response",
                      "le_zero_6c": "le_zero_6c", "multi_record": "multi_record",
                      "fci_algorithm": "fci_algorithm"}
#: keyword → ``[card]`` field (not data elements, but shaping the card)
CARD_KEYWORDS = {"region", "serial", "auth_code", "algorithm", "application_blocked",
                 "card_blocked"}

_UNSET: Any = object()


def _generation_key(generation: str | int | float) -> str:
    text = str(generation).strip()
    key = text.split(".")[0]
    if key not in SPEC_VERSIONS or text not in (key, f"{key}.0", f"{key}.00"):
        raise ValueError(f"generation {generation!r}: use 1.0, 2.0 or 3.0")
    return key


def persona_mapping(base: str = "demo", *, persona_name: str | None = None,
                    description: str | None = None, generation: str | float | None = None,
                    profile: str | None = None, algorithm: str | None = None,
                    pin: str | None = _UNSET, pin_tries: int | None = None,
                    max_tries: int | None = None, pin_blocked: bool = False,
                    application_blocked: bool | None = None, card_blocked: bool | None = None,
                    holder: dict[str, Any] | None = None, card: dict[str, Any] | None = None,
                    behaviour: dict[str, Any] | None = None,
                    records: dict[str, str] | None = None, files: dict[str, str] | None = None,
                    keys: dict[str, Any] | None = None, bank: dict[str, Any] | None = _UNSET,
                    atr: str | None = None, **fields: Any) -> dict[str, Any]:
    """The persona mapping (what a TOML/JSON persona file holds) for these keywords.

    ``fields`` are data elements by key (``name``, ``ssn``, ``card_no``, ``birth_date`` …,
    see ``sbcard.card.elements``), card facts (``region``, ``serial``, ``auth_code``) or
    behaviour flags (``t0``, ``le_zero_6c``, ``multi_record``, ``fci_algorithm``).
    ``pin=None`` means a card with no PIN set; ``bank=None`` removes the debit application.
    """
    data, _origin = _load_mapping(base)
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    card_s: dict[str, Any] = data.setdefault("card", {})
    holder_s: dict[str, Any] = data.setdefault("holder", {})
    pin_s: dict[str, Any] = data.setdefault("pin", {"value": "123456", "tries": 3,
                                                   "max_tries": 3})
    behaviour_s: dict[str, Any] = data.setdefault("behaviour", {})

    for key, value in fields.items():
        if key in BEHAVIOUR_KEYWORDS:
            behaviour_s[BEHAVIOUR_KEYWORDS[key]] = bool(value)
        elif key in CARD_KEYWORDS:
            card_s[key] = value
        elif key in BY_KEY:
            (card_s if BY_KEY[key].ef == "EF05" else holder_s)[key] = value
        else:
            known = sorted({*BY_KEY, *CARD_KEYWORDS, *BEHAVIOUR_KEYWORDS})
            raise TypeError(f"persona_factory: unknown keyword {key!r}; data and card fields "
                            f"are {', '.join(known)}")
    data["name"] = persona_name or str(data.get("name", base))
    if description is not None:
        data["description"] = description
    if generation is not None:
        gen = _generation_key(generation)
        data["profile"] = profile_for(SPEC_VERSIONS[gen]).name
        current = str(card_s.get("spec_version", ""))
        if "spec_version" not in fields and not current.startswith(gen):
            card_s["spec_version"] = SPEC_VERSIONS[gen]
    if profile is not None:
        data["profile"] = profile
    if algorithm is not None:
        card_s["algorithm"] = algorithm
    if application_blocked is not None:
        card_s["application_blocked"] = application_blocked
    if card_blocked is not None:
        card_s["card_blocked"] = card_blocked
    card_s.update(card or {})
    holder_s.update(holder or {})
    behaviour_s.update(behaviour or {})
    if pin is not _UNSET:
        pin_s["value"] = pin
    if max_tries is not None:
        pin_s["max_tries"] = max_tries
        pin_s.setdefault("tries", max_tries)
    if pin_tries is not None:
        pin_s["tries"] = pin_tries
    if pin_blocked:
        pin_s["tries"] = 0
    for section, extra in (("records", records), ("files", files), ("keys", keys)):
        if extra:
            data[section] = {**data.get(section, {}), **extra}
    if bank is None:
        data.pop("bank", None)
    elif bank is not _UNSET:
        data["bank"] = dict(bank)
    if atr is not None:
        data["atr"] = atr
        data.pop("atr_parts", None)
    if not behaviour_s:
        data.pop("behaviour")
    return data


def make_persona(base: str = "demo", **kwargs: Any) -> Persona:
    """A ``Persona`` built by ``persona_mapping`` (same keywords); validated like a file."""
    data = persona_mapping(base, **kwargs)
    return persona_from_mapping(data, f"persona_factory({base})")


def persona_file(directory: str | Path, base: str = "demo", **kwargs: Any) -> Path:
    """Write the persona as a JSON file in ``directory`` (for ``sbcard --sim FILE``)."""
    data = persona_mapping(base, **kwargs)
    persona_from_mapping(data, f"persona_factory({base})")      # fail here, not in the CLI
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    stem = str(data["name"])
    path = folder / f"{stem}.json"
    n = 1
    while path.exists():
        n += 1
        path = folder / f"{stem}-{n}.json"
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2, default=str), "utf-8")
    return path


class PersonaFactory:
    """The ``persona_factory`` fixture: ``persona_factory(base="demo", **keywords)``.

    Also ``.mapping(...)`` (the dict) and ``.file(...)`` (a JSON persona file in the test's
    temporary directory, for ``sbcard --sim FILE`` in a subprocess or ``main([...])``).
    """

    def __init__(self, directory: str | Path | Callable[[], Path] | None = None) -> None:
        self._directory = directory

    @property
    def directory(self) -> Path | None:
        """Where ``file()`` writes (made on first use when given as a callable)."""
        if callable(self._directory):
            self._directory = Path(self._directory())
        return None if self._directory is None else Path(self._directory)

    def __call__(self, base: str = "demo", **kwargs: Any) -> Persona:
        return make_persona(base, **kwargs)

    def mapping(self, base: str = "demo", **kwargs: Any) -> dict[str, Any]:
        return persona_mapping(base, **kwargs)

    def file(self, base: str = "demo", **kwargs: Any) -> Path:
        if self.directory is None:
            raise RuntimeError("this PersonaFactory has no directory for files")
        return persona_file(self.directory, base, **kwargs)
