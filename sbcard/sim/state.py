"""A simulated card's memory kept between commands (``sbcard --sim PERSONA --sim-state FILE``).

Without it each ``sbcard --sim`` command starts from the persona: a fresh card. With it, what a
real card keeps across power-offs is saved after the command and put back before the next:
the PIN (value, tries left), blocked application and card flags, the contents of every
elementary file, and the try counters of the card keys. What a card loses at power-off
(selected file, verified PIN, challenge, session keys) is not kept, as on a real card. The
PKI application's generated SM2 key and certificate are not kept either (a 3.0 card's
key pair starts from the persona again).

The file is JSON, written mode 0600: it holds the simulated card's PIN, like a persona file.
It names the persona it came from; a state file is refused for another persona.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from sbcard.errors import BadInputError

FORMAT = "sbcard-sim-state 1"


def _dfs(card: Any) -> dict[str, Any]:
    out = {"MF": card.mf}
    for name, df in card.apps.items():
        if df is not card.mf:
            out[bytes(name).hex().upper()] = df
    return out


def capture(card: Any, persona: str) -> dict[str, Any]:
    """The card's durable memory as a JSON-able mapping."""
    dfs = {}
    for key, df in _dfs(card).items():
        dfs[key] = {"blocked": df.blocked, "efs": {
            f"{fid:04X}": {"records": [bytes(r).hex().upper() for r in ef.records],
                           "data": bytes(ef.data).hex().upper()}
            for fid, ef in df.efs.items()}}
    state: dict[str, Any] = {
        "format": FORMAT, "persona": persona, "atr": card.atr.hex().upper(),
        "card_blocked": card.card_blocked,
        "pin": {"value": card.pin.value, "tries": card.pin.tries,
                "max_tries": card.pin.max_tries},
        "dfs": dfs,
    }
    if card.auth is not None:
        state["key_tries"] = {f"{kid:02X}": k.tries for kid, k in card.auth.keys.items()}
    return state


def restore(card: Any, state: dict[str, Any]) -> None:
    """Put a captured memory back into a card freshly built from the same persona."""
    try:
        card.card_blocked = bool(state["card_blocked"])
        card.pin.value = state["pin"]["value"]
        card.pin.tries = int(state["pin"]["tries"])
        card.pin.max_tries = int(state["pin"]["max_tries"])
        dfs = _dfs(card)
        for key, saved in state["dfs"].items():
            df = dfs.get(key)
            if df is None:
                continue
            df.blocked = bool(saved["blocked"])
            for fid_hex, content in saved["efs"].items():
                ef = df.efs.get(int(fid_hex, 16))
                if ef is None:
                    continue
                ef.records = [bytearray.fromhex(r) for r in content["records"]]
                ef.data = bytearray.fromhex(content["data"])
        if card.auth is not None:
            for kid_hex, tries in state.get("key_tries", {}).items():
                key = card.auth.keys.get(int(kid_hex, 16))
                if key is not None:
                    key.tries = int(tries)
    except (KeyError, TypeError, ValueError) as exc:
        raise BadInputError(f"simulated card state: malformed ({exc})") from None


def load(path: Path, persona: str) -> dict[str, Any] | None:
    """The saved state, or None when the file does not exist yet (first command)."""
    if not path.exists():
        return None
    try:
        state = json.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadInputError(f"--sim-state {path}: not a state file ({exc})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise BadInputError(f"--sim-state {path}: not an sbcard simulated-card state file")
    if state.get("persona") != persona:
        raise BadInputError(f"--sim-state {path} holds a card of persona "
                            f"{state.get('persona')!r}, not {persona!r}: use another file")
    return state


def save(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(state, f, ensure_ascii=False, indent=1)
    os.replace(tmp, path)
