"""The national functions a page may call, their parameters and how request values coerce.

Names and parameters follow the national interface (docs: national-interface reference §2;
``sbcard.national.driver.SSCardDriver`` has one method per name). A function is offered only
when the driver has it. Integers may come as JSON numbers or decimal strings (the Decard
style sends every argument as a string); anything else is a wrong type and gets an error
object, never an exception.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sbcard.national import codes


@dataclass(frozen=True)
class Param:
    name: str
    kind: type          # int or str
    max_len: int = 4096  # a str longer than this is refused (no function needs more)


@dataclass(frozen=True)
class Call:
    function: str
    args: tuple[Any, ...]


class BadRequest(Exception):
    """The request cannot become a call: ``code`` is the national return code to answer."""

    def __init__(self, code: int, detail: str, function: str = "") -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.function = function

    @property
    def text(self) -> str:
        """The national message with the reason in English: "命令参数错 (iType: …)"."""
        return f"{codes.message(self.code)} ({self.detail})"


I_TYPE = Param("iType", int)
P_KEY = Param("pKey", str)
CARD_INFO = Param("pCardInfo", str)

#: National function → its parameters, in the order of the C prototype (reference §2).
FUNCTIONS: dict[str, tuple[Param, ...]] = {
    "iReadCardBas": (I_TYPE,),
    "iReadCardBas_HSM_Step1": (I_TYPE,),
    "iReadCardBas_HSM_Step2": (P_KEY,),
    "iReadCard": (I_TYPE, Param("iAuthType", int), CARD_INFO, Param("pFileAddr", str)),
    "iReadCard_HSM_Step1": (I_TYPE, CARD_INFO, Param("pFileAddr", str)),
    "iReadCard_HSM_Step2": (P_KEY,),
    "iVerifyPIN": (I_TYPE,),
    "iChangePIN": (I_TYPE,),
    "iReloadPIN": (I_TYPE, CARD_INFO),
    "iReloadPIN_HSM_Step1": (I_TYPE, CARD_INFO),
    "iReloadPIN_HSM_Step2": (P_KEY,),
    "iReloadPIN_HSM_Step3": (P_KEY,),
    "iUnblockPIN": (I_TYPE, CARD_INFO),
    "iUnblockPIN_HSM_Step1": (I_TYPE, CARD_INFO),
    "iUnblockPIN_HSM_Step2": (P_KEY,),
    "iUnblockPIN_HSM_Step3": (P_KEY,),
    "iGetCardType": (),
    "iGetReaderInfo": (),
    "iGetDeviceInfo": (),
}

#: Functions that change the card: a caller that leaves while queued never starts them.
CARD_CHANGING = frozenset({"iChangePIN", "iReloadPIN", "iUnblockPIN", "iReloadPIN_HSM_Step3",
                           "iUnblockPIN_HSM_Step3"})

#: Parameter names as pages spell them (public page code writes both pKey and pkey).
ALIASES = {"pkey": "pKey", "itype": "iType"}

# The national codes a request itself can earn (−13 unsupported, −14 bad parameter).
UNSUPPORTED = codes.UNSUPPORTED
BAD_PARAMETER = codes.BAD_PARAMETER


def coerce(param: Param, value: Any, function: str) -> Any:
    if param.kind is int:
        if isinstance(value, bool):
            raise BadRequest(BAD_PARAMETER, f"{param.name}: a number, not true/false", function)
        if isinstance(value, int):
            return value
        digits = value.strip().lstrip("-") if isinstance(value, str) else ""
        if digits.isascii() and digits.isdigit() and len(value.strip()) <= 10:   # not "３"
            return int(value)
        raise BadRequest(BAD_PARAMETER, f"{param.name}: a whole number expected", function)
    if not isinstance(value, str):
        raise BadRequest(BAD_PARAMETER, f"{param.name}: a string expected", function)
    if len(value) > param.max_len:
        raise BadRequest(BAD_PARAMETER, f"{param.name}: longer than {param.max_len}", function)
    return value


def check_function(name: Any, offered: frozenset[str]) -> str:
    if not isinstance(name, str) or not name:
        raise BadRequest(BAD_PARAMETER, "no function name")
    if name not in offered:
        raise BadRequest(UNSUPPORTED, f"unknown function {name[:64]!r}", name[:64])
    return name


def call_by_name(name: Any, values: Mapping[str, Any], offered: frozenset[str]) -> Call:
    """A call from named parameters (function style, own API)."""
    function = check_function(name, offered)
    named = {ALIASES.get(k, k): v for k, v in values.items()}
    args = []
    for param in FUNCTIONS[function]:
        if param.name not in named:
            raise BadRequest(BAD_PARAMETER, f"{param.name} missing", function)
        args.append(coerce(param, named[param.name], function))
    return Call(function, tuple(args))


def call_by_position(name: Any, values: Any, offered: frozenset[str]) -> Call:
    """A call from positional arguments (Decard style ``"in": [...]``)."""
    function = check_function(name, offered)
    if values is None:
        values = []
    if not isinstance(values, Sequence) or isinstance(values, str):
        raise BadRequest(BAD_PARAMETER, "\"in\" must be a list", function)
    params = FUNCTIONS[function]
    if len(values) != len(params):
        raise BadRequest(BAD_PARAMETER, f"{function} takes {len(params)} argument(s), "
                                        f"got {len(values)}", function)
    return Call(function, tuple(coerce(p, v, function) for p, v in zip(params, values,
                                                                        strict=True)))


def offered_by(driver: object) -> frozenset[str]:
    return frozenset(name for name in FUNCTIONS if callable(getattr(driver, name, None)))
