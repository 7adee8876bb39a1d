"""A simulated HSM (加密机) for tests, speaking both protocols sbcard offers (docs/keys.md):

- the national step strings (public trace ``gdgly/SI_3rdCard`` ``docs/加密机方式指令流.txt``):
  stdin line 1 the card ``区划|复位信息|算法标识|``, line 2 the request, e.g.
  ``03|0090|<过程因子>|<原始信息>|`` → ``A‖原始信息``; ``03|0173|<R>|8424000114|<PIN>`` →
  enc ‖ MAC; or one line, the whole ``iReadCardBas_HSM_Step1`` output → the Step2 pKey;
  the DF-file steps ``算法标识|0052|<过程因子>|<原始信息>|`` (UK6DF01 …) → ``A‖原始信息``;
- sbcard's JSON requests (delegated to ``tests.fake_hsm``).

Keys: the repository's public test keys (the simulated cards are derived from them).
Run as ``python -m tests.national_hsm``. Addresses a region's profile adds (``[hsm_addresses]``,
e.g. an overlay's ``RK1DF06``): ``national_answer(…, profile=…)``, or the environment variable
``NATIONAL_HSM_PROFILE`` (a profile name or ``BASE+overlay.toml``) for the program.
"""

from __future__ import annotations

import json
import os
import sys

from sbcard.card.dfs import DF_KEYS
from sbcard.card.filesystem import KEY_IRK, KEY_RKSSSE, KEY_STK
from sbcard.card.profiles import CardProfile, load_profile
from sbcard.crypto.symmetric import Algorithm
from sbcard.keys.base import CardContext
from sbcard.keys.builtin import builtin_key_file

ADDRESSES = {v: k for k, v in load_profile("mohrss-2.0").hsm_addresses.items()}
# DF keys (iReadCard/iWriteCard HSM steps) at their version-1 logical address, Sichuan reader
# spec appendix B tables B.1/B.2 (sbcard.card.dfs.DF_KEYS); key source reference as value.
ADDRESSES.update({f"{k.hsm:04X}": k.ref for k in DF_KEYS if k.hsm is not None})


def _fields(line: str) -> list[str]:
    parts = line.strip().split("|")
    return parts[:-1] if parts and parts[-1] == "" else parts


def _ctx(region: str, atr: str, alg: str) -> CardContext:
    return CardContext(bytes.fromhex(atr), region, Algorithm.from_id(int(alg, 16)))


def read_step_key(step1: str) -> str:
    """pKey for iReadCardBas_HSM_Step2 from the Step1 line (SSCARDCtrl.cpp field order)."""
    region, atr, alg, _card_id, factor, original, ext_factor, ext_original, _sn = \
        _fields(step1)[:9]
    keys, ctx = builtin_key_file(), _ctx(region, atr, alg)
    internal = keys.internal_auth_expected(ctx, bytes.fromhex(factor), bytes.fromhex(original))
    out = internal.hex().upper() + original + "|"
    if ext_factor:
        a = keys.auth_data(ctx, KEY_RKSSSE, bytes.fromhex(ext_factor),
                           bytes.fromhex(ext_original))
        out += a.hex().upper() + ext_original
    return out + "|"


def addresses_of(profile: CardProfile) -> dict[str, int]:
    """HSM address → key source reference, every version, as sbcard's own map gives them
    (``keys.hsm.hsm_address_map``: appendix B's DF keys and the profile's [hsm_addresses])."""
    from sbcard.keys.hsm import hsm_address_map

    out = dict(ADDRESSES)
    for ref, entry in hsm_address_map(profile).items():
        for address in (entry,) if isinstance(entry, str) else entry:
            out.setdefault(str(address).upper(), ref)
    return out


def national_answer(card: str, request: str, profile: CardProfile | None = None) -> str:
    region, atr, alg = _fields(card)[:3]
    keys, ctx = builtin_key_file(), _ctx(region, atr, alg)
    f = _fields(request)
    named = os.environ.get("NATIONAL_HSM_PROFILE")
    if profile is None and named:
        profile = load_profile(named)
    key_id = (ADDRESSES if profile is None else addresses_of(profile))[f[1]]
    challenge = bytes.fromhex(f[2])
    if key_id == KEY_STK:
        header = bytes.fromhex(f[3])
        if len(f) > 4 and f[4]:                      # PIN reload: enc ‖ MAC in one answer
            digits = f[4]
            block = bytes.fromhex(digits + ("F" if len(digits) % 2 else ""))
            return keys.enciphered_command(ctx, key_id, challenge, header, block).hex().upper()
        return keys.mac(ctx, key_id, challenge, header).hex().upper()
    if key_id == KEY_IRK:
        return keys.internal_auth_expected(ctx, challenge, bytes.fromhex(f[3])).hex().upper()
    a = keys.auth_data(ctx, key_id, challenge, bytes.fromhex(f[3]))
    return a.hex().upper() + f[3].upper()


def main() -> None:
    text = sys.stdin.read()
    if text.lstrip().startswith("{"):
        from tests.fake_hsm import answer

        print(json.dumps(answer(json.loads(text))))
        return
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) == 1 and len(_fields(lines[0])) >= 9:
        print(read_step_key(lines[0]))
    else:
        print(national_answer(lines[0], lines[1]))


if __name__ == "__main__":
    main()
