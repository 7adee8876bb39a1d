"""A stand-in HSM for tests: answers sbcard's step-mode JSON with the public test keys.

Run as ``python -m tests.fake_hsm`` (one request on stdin, one answer on stdout), the way a
real HSM bridge would be plugged in with ``--hsm-command``.
"""

from __future__ import annotations

import json
import sys

from sbcard.crypto.symmetric import Algorithm
from sbcard.keys.base import CardContext
from sbcard.keys.builtin import builtin_key_file


def answer(request: dict) -> dict:
    keys = builtin_key_file()
    # The HSM is given the card factor (and the ATR it came from): it uses the factor.
    ctx = CardContext(bytes.fromhex(request.get("atr", "")), request["region"],
                      Algorithm.from_id(int(request["algorithm"], 16)),
                      factor=bytes.fromhex(request["card_factor"]))
    key_id = int(request["key_id"], 16)
    challenge = bytes.fromhex(request["challenge"])
    step = request["step"]
    if key_id == 0x0D:
        return {"error": "no such key address"}
    if step == "external_auth":
        result = keys.auth_data(ctx, key_id, challenge, bytes.fromhex(request["original"]))
    elif step == "internal_auth":
        result = keys.internal_auth_expected(ctx, challenge, bytes.fromhex(request["original"]))
    elif step == "mac":
        result = keys.mac(ctx, key_id, challenge, bytes.fromhex(request["data"]))
    elif step == "encrypt":
        result = keys.encrypt(ctx, key_id, challenge, bytes.fromhex(request["data"]))
    else:
        return {"error": f"unknown step {step}"}
    return {"result": result.hex().upper()}


if __name__ == "__main__":
    print(json.dumps(answer(json.loads(sys.stdin.read()))))
