"""HSM (加密机) step mode: export the factors, import the cryptogram (spec §5.8, §7.2).

This is the shape of the national reader interface's ``*_HSM_Step1/Step2`` functions: sbcard
drives the card and hands each computation to the HSM as a JSON request; the HSM (or the
back-office service in front of it) answers with JSON. Key material never enters sbcard.

Request (one JSON object)::

    {"step": "external_auth" | "internal_auth" | "mac" | "encrypt",
     "algorithm": "01" | "03",            # 算法标识 (DES / SM4)
     "key_id": "0A",                      # card key ID
     "key_address": "004C",               # HSM logical address (profile [hsm_addresses])
     "region": "519900",                  # 区划码
     "atr": "3B6D…",                      # the card's ATR, as the national HSM request has it
     "card_factor": "…16 hex…",           # historical bytes 6-13 (part 9 §7.3.3), not ATR[-8:]
     "city_factor": "…", "province_factor": "…",
     "challenge": "…",                    # 过程因子 (card challenge / R1)
     "original": "…",                     # 原始信息 X (external_auth), R2 (internal_auth)
     "data": "…"}                         # mac / encrypt input

Response: ``{"result": "<hex>"}`` (A, the MAC or the cipher text) or ``{"error": "text"}``.

Two ways to reach the HSM: ``command_exchange`` (``sbcard.keys.hsm_command``) runs a program
per request (JSON on its stdin, JSON on its stdout), ``stdio_exchange`` prints
``HSM-REQUEST {json}`` on stderr and reads the response line from stdin (an operator or a pipe
answers).
"""

from __future__ import annotations

import copy
import json
import sys
import threading
from collections.abc import Callable, Mapping
from typing import Any

from sbcard.card.dfs import DF_KEYS
from sbcard.card.profiles import CardProfile
from sbcard.card.profiles.sections import HsmAddress
from sbcard.errors import BadInputError, SbcardError
from sbcard.hexutil import parse_hex
from sbcard.keys.base import CardContext, KeySource

Exchange = Callable[[dict[str, Any]], dict[str, Any]]


class HsmError(SbcardError):
    """The HSM refused or answered something unusable."""


def hsm_address(addresses: Mapping[int, HsmAddress], key_id: int, version: int | None,
                name: str = "HSM") -> str | None:
    """The HSM logical address of card key ``key_id`` at key ``version``. A profile gives one
    address, or one per version from 1 (``"04" = ["0094", "0095", "0096"]``: UKSSSE v1-v3;
    sscard-spec §5.2/§5.8 after [S9] appendix B, where 0094 is v1 and 0096 v3)."""
    entry = addresses.get(key_id)
    if isinstance(entry, list | tuple):
        index = (version or 1) - 1
        if not 0 <= index < len(entry):
            raise HsmError(f"{name}: no HSM address for card key {key_id:02X} version {version}")
        return str(entry[index])
    if entry is not None and version not in (None, 1):
        raise HsmError(f"{name}: the profile gives card key {key_id:02X} one HSM address "
                       f"(version 1); none for version {version}")
    return entry


def hsm_address_map(profile: CardProfile) -> dict[int, HsmAddress]:
    """The profile's ``[hsm_addresses]`` plus the keys of its DFs (DF01–DF07) at the
    logical addresses of the reader-interface spec's appendix B tables B.1/B.2 (``DfKey.hsm``:
    three consecutive addresses = key versions 1–3, RK1DF01 004F–0051). A profile entry wins;
    keys appendix B does not list (DF06's) have an address only where a profile gives one
    (``"RK1DF06" = ["…", …]``)."""
    out: dict[int, HsmAddress] = dict(profile.hsm_addresses)
    for key in DF_KEYS:
        if key.hsm is not None and key.df in profile.dfs:
            out.setdefault(key.ref, tuple(f"{key.hsm + v:04X}" for v in range(3)))
    return out


def _for_profile(source: HsmStepSource | NationalHsmSource, profile: CardProfile) -> KeySource:
    """``source`` with ``profile``'s address map (``hsm_address_map``): a copy sharing its
    exchange, or ``source`` itself when the map is the same (``KeySource.for_profile``)."""
    addresses = hsm_address_map(profile)
    if addresses == dict(source.addresses):
        return source
    view = copy.copy(source)
    view.addresses = addresses
    return view


class HsmStepSource(KeySource):
    def __init__(self, exchange: Exchange, addresses: Mapping[int, HsmAddress] | None = None,
                 name: str = "HSM") -> None:
        self.exchange = exchange
        self.addresses = addresses or {}
        self.name = name

    def address(self, key_id: int) -> str | None:
        return hsm_address(self.addresses, key_id, self.key_version, self.name)

    def _ask(self, step: str, ctx: CardContext, key_id: int, result_len: int | None,
             **fields: bytes) -> bytes:
        request: dict[str, Any] = {
            "step": step,
            "algorithm": f"{ctx.algorithm.algorithm_id:02X}",
            "key_id": f"{key_id:02X}",
            "key_address": self.address(key_id),
            "key_version": self.key_version,
            "region": ctx.region,
            "atr": ctx.atr.hex().upper(),
            "card_factor": ctx.card_factor.hex().upper(),
            "city_factor": ctx.city_factor.hex().upper(),
            "province_factor": ctx.province_factor.hex().upper(),
        }
        request.update({k: v.hex().upper() for k, v in fields.items()})
        answer = self.exchange(request)
        if not isinstance(answer, dict):
            raise HsmError(f"{self.name}: answer to {step} is not a JSON object")
        if answer.get("error"):
            raise HsmError(f"{self.name} refused {step} for key {key_id:02X}: {answer['error']}")
        try:
            result = parse_hex(str(answer["result"]), f"{self.name} result")
        except KeyError:
            raise HsmError(f"{self.name}: answer to {step} has no 'result'") from None
        except BadInputError as exc:
            raise HsmError(str(exc)) from None
        if result_len is not None and len(result) != result_len:
            raise HsmError(f"{self.name}: {step} result is {len(result)} bytes, "
                           f"expected {result_len}")
        return result

    def auth_data(self, ctx: CardContext, key_id: int, challenge: bytes,
                  original: bytes) -> bytes:
        return self._ask("external_auth", ctx, key_id, 8, challenge=challenge, original=original)

    def internal_auth_expected(self, ctx: CardContext, r1: bytes, r2: bytes) -> bytes:
        return self._ask("internal_auth", ctx, 0x00, 8, challenge=r1, original=r2)

    def mac(self, ctx: CardContext, key_id: int, challenge: bytes, data: bytes) -> bytes:
        return self._ask("mac", ctx, key_id, 4, challenge=challenge, data=data)

    def encrypt(self, ctx: CardContext, key_id: int, challenge: bytes, data: bytes) -> bytes:
        return self._ask("encrypt", ctx, key_id, None, challenge=challenge, data=data)

    def has_key(self, key_id: int) -> bool:
        if not self.addresses:
            return True
        try:
            return self.address(key_id) is not None
        except HsmError:
            return False

    def for_profile(self, profile: CardProfile) -> KeySource:
        # No address map at all means "the HSM knows every key" (has_key): kept as it is.
        return _for_profile(self, profile) if self.addresses else self


def stdio_exchange(read_line: Callable[[], str] = sys.stdin.readline,
                   write: Callable[[str], None] | None = None) -> Exchange:
    """Step mode by hand: request on stderr, the answer line read from stdin.

    Several reader workers may ask at once; each request and its answer line are one
    exchange, so the next request is written only after the answer was read.
    """
    turn = threading.Lock()

    def emit(text: str) -> None:
        if write is None:
            print(text, file=sys.stderr, flush=True)
        else:
            write(text)

    def exchange(request: dict[str, Any]) -> dict[str, Any]:
        with turn:
            emit("HSM-REQUEST " + json.dumps(request))
            line = read_line()
        if not line:
            raise HsmError("no HSM answer on stdin (end of input)")
        return parse_answer(line)

    return exchange


def parse_answer(text: str) -> dict[str, Any]:
    try:
        answer = json.loads(text)
    except json.JSONDecodeError as exc:
        raise HsmError(f"HSM answer is not JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(answer, dict):
        raise HsmError("HSM answer is not a JSON object")
    return answer


# -- the national HSM step protocol -----------------------------------------------------------
#
# Real HSMs (加密机) behind the national reader interface take '|'-separated strings keyed by
# a logical address and answer hex, e.g. PUK external authentication
# ``03|0090|<过程因子>|<原始信息>|`` → ``<A 16 hex><原始信息 16 hex>`` and PIN reload
# ``03|0173|<过程因子>|8424000114|<新PIN>`` → enciphered PIN ‖ MAC in one answer (public trace
# ``gdgly/SI_3rdCard`` ``docs/加密机方式指令流.txt``; spec §5.7, §5.8). The card itself is not in
# those strings: the back office knows it from the earlier Step1 line. A program plugged in as
# ``hsm_command`` therefore gets two lines on stdin — the card line ``区划|复位信息|算法标识|``
# (the first fields of iReadCardBas_HSM_Step1) and the national request — and prints the hex.


class NationalHsmSource(KeySource):
    """Key source speaking the national HSM strings to a program (one run per request).

    Requests (``A`` = 算法标识 ``01``/``03``, ``ADDR`` = the profile's HSM address):

    - external authentication: ``A|ADDR|R|X|`` → ``A_data‖X`` (32 hex) or ``A_data`` (16 hex)
    - internal authentication (IRK, address 0170): ``A|0170|R1|R2|`` → expected answer (16 hex)
    - PIN reload (STK, 0173): ``A|0173|R|84240001Lc|PIN|`` → enciphered PIN ‖ MAC
    - any other MAC: ``A|ADDR|R|<header and data hex>||`` → MAC (8 hex), or the APDU ending
      in it. The empty last field is the PIN's: the shape of iUnblockPIN_HSM_Step2's output
      ``算法|密钥地址|过程因子|8424000004||`` (Sichuan reader spec v2.0 §7.2, restating
      人社信息函〔2016〕38号), so an HSM bridge sees the same string either way.

    Beyond the public trace: the internal authentication string (the trace authenticates
    through the whole Step1 line instead) and MACs over other commands; they follow the same
    pattern and are sbcard's assumption (docs/keys.md, docs/spec-uncertainties.md).
    """

    def __init__(self, run: Callable[[str], str],
                 addresses: Mapping[int, HsmAddress] | None = None,
                 name: str = "HSM (national)") -> None:
        self.run = run
        self.addresses = addresses or {}
        self.name = name

    def _address(self, key_id: int) -> str:
        address = hsm_address(self.addresses, key_id, self.key_version, self.name)
        if address is None:
            raise HsmError(f"{self.name}: no HSM address for card key {key_id:02X}")
        return address

    def _ask(self, ctx: CardContext, request: str) -> bytes:
        card = f"{ctx.region}|{ctx.atr.hex().upper()}|{ctx.algorithm.algorithm_id:02X}|"
        text = self.run(card + "\n" + request + "\n").strip()
        if not text:
            raise HsmError(f"{self.name}: empty answer")
        if text.upper().startswith("ERR"):
            raise HsmError(f"{self.name} refused: {text[:80]}")
        try:
            return parse_hex(text.split("|")[0], f"{self.name} answer")
        except BadInputError as exc:
            raise HsmError(str(exc)) from None

    def _line(self, ctx: CardContext, key_id: int, *fields: bytes | str) -> str:
        parts = [f"{ctx.algorithm.algorithm_id:02X}", self._address(key_id)]
        parts += [f.hex().upper() if isinstance(f, bytes) else f for f in fields]
        return "".join(p + "|" for p in parts)

    def auth_data(self, ctx: CardContext, key_id: int, challenge: bytes,
                  original: bytes) -> bytes:
        answer = self._ask(ctx, self._line(ctx, key_id, challenge, original))
        if len(answer) == 16 and answer[8:] != original:
            raise HsmError(f"{self.name}: answer does not end with the 原始信息 it was given")
        if len(answer) not in (8, 16):
            raise HsmError(f"{self.name}: external authentication answer is {len(answer)} "
                           "bytes, expected 8 or 16")
        return answer[:8]

    def internal_auth_expected(self, ctx: CardContext, r1: bytes, r2: bytes) -> bytes:
        answer = self._ask(ctx, self._line(ctx, 0x00, r1, r2))
        if len(answer) not in (8, 16):
            raise HsmError(f"{self.name}: internal authentication answer is {len(answer)} "
                           "bytes, expected 8")
        return answer[:8]

    def mac(self, ctx: CardContext, key_id: int, challenge: bytes, data: bytes) -> bytes:
        answer = self._ask(ctx, self._line(ctx, key_id, challenge, data, ""))
        if len(answer) < 4:
            raise HsmError(f"{self.name}: MAC answer is {len(answer)} bytes")
        return answer[-4:]

    def encrypt(self, ctx: CardContext, key_id: int, challenge: bytes, data: bytes) -> bytes:
        raise HsmError(f"{self.name}: the national HSM enciphers only together with the MAC "
                       "(PIN reload)")

    def enciphered_command(self, ctx: CardContext, key_id: int, challenge: bytes,
                           header: bytes, plain: bytes) -> bytes:
        """PIN reload in one step: the HSM gets the PIN digits, answers enc ‖ MAC."""
        digits = plain.hex().upper().rstrip("F")
        answer = self._ask(ctx, self._line(ctx, key_id, challenge, header.hex().upper(),
                                           digits))
        if len(answer) == header[-1] + len(header):      # the whole APDU: keep its data
            answer = answer[len(header):]
        if len(answer) != header[-1]:
            raise HsmError(f"{self.name}: PIN reload answer is {len(answer)} bytes, "
                           f"expected {header[-1]}")
        return answer

    def has_key(self, key_id: int) -> bool:
        try:
            return hsm_address(self.addresses, key_id, self.key_version, self.name) is not None
        except HsmError:
            return False

    def for_profile(self, profile: CardProfile) -> KeySource:
        return _for_profile(self, profile)
