"""What the service writes to its log: masked like ``--trace`` (no PIN, key or PAN).

Requests are logged as the function name plus masked arguments; answers as the return
code and time only (an answer carries the holder's name and number: not log material).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sbcard.national.fields import mask_pan_digits

#: Argument names whose value is secret whatever it looks like.
SECRET_NAMES = frozenset({"pin", "oldpin", "newpin", "pkey", "key", "puk", "password"})
_LONG_DIGITS = re.compile(r"\d{12,}")
_LONG_HEX = re.compile(r"\b[0-9A-Fa-f]{32,}\b")


def mask_value(name: str, value: Any) -> str:
    if name.lower() in SECRET_NAMES:
        return "***"
    text = str(value)
    text = _LONG_HEX.sub(lambda m: m.group(0)[:4] + "…", text)
    return _LONG_DIGITS.sub(lambda m: mask_pan_digits(m.group(0)), text)


def masked_args(names: tuple[str, ...], args: tuple[Any, ...]) -> str:
    return ", ".join(f"{n}={mask_value(n, a)}" for n, a in zip(names, args, strict=False))


def masked_mapping(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={mask_value(k, v)}" for k, v in values.items())
