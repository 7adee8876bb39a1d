"""The three request/answer shapes that pages written for vendor card services expect.

Each dialect turns a message into a ``Call`` and a driver result ``(code, text)`` into the
answer the page parses. Field names come from public page code:

* Function style, ``ws://127.0.0.1:12342``: requests ``{"function": "iReadCardBas",
  "iType": 3}``; the page reads ``functionName``, ``success`` (``== "1"`` on success, else
  the national code: ``dataStr.success == -2`` means no card, ``-2201``/``-2203``/… send it
  to the HSM steps) and ``pOutInfo`` (the national output line). Seen in the shared reader
  script "读卡器公用js" (``readCardBasProMsg``, ``isErrorJM``) found by code search for
  ``ws://127.0.0.1:12342``, and in a uni-app registration page using the same socket.
* Decard style, ``ws://127.0.0.1:50150``: requests ``{"func": "iReadCardBas", "in":
  ["3"]}`` (every argument a string); the page does ``parseInt(obj.result)`` (0 = success)
  and takes ``obj.out[0]``. Seen in ``jlmay/dcrf32_html`` ``dcrf32_client.js`` (socket
  ``ws://127.0.0.1:50150``, ``callDcrf32``) and a TypeScript port of it whose
  ``dc_read_thirdCard`` sends ``{"func":"iReadCardBas","in":["3"]}``.
* REST style: ``GET /readcard/entry?param=sicard`` → ``{code, message, data, sign}``, code
  200 on success and 1001 on failure (a public analysis of the ThCardReader service,
  ``EntryController`` and ``ReadCardResult``, project mhCardReader, localhost:8321).
"""

from __future__ import annotations

import json
from typing import Any

from sbcard.service.functions import (
    BAD_PARAMETER,
    BadRequest,
    Call,
    call_by_name,
    call_by_position,
)


def parse_json(message: str | bytes) -> Any:
    try:
        return json.loads(message)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest(BAD_PARAMETER, "the message is not valid JSON") from None


def parse_json_object(message: str | bytes) -> dict[str, Any]:
    """A request message that must be one JSON object (both WebSocket dialects)."""
    obj = parse_json(message)
    if not isinstance(obj, dict):
        raise BadRequest(BAD_PARAMETER, "the message must be a JSON object")
    return obj


class FunctionStyle:
    name = "function"

    def parse(self, message: str | bytes, offered: frozenset[str]) -> Call:
        obj = parse_json_object(message)
        values = {k: v for k, v in obj.items() if k != "function"}
        return call_by_name(obj.get("function"), values, offered)

    def answer(self, function: str, code: int, text: str) -> dict[str, Any]:
        # success: 1 on success (pages test == "1"), else the national code as a number.
        return {"functionName": function, "success": 1 if code == 0 else code,
                "pOutInfo": text}


class DecardStyle:
    name = "decard"

    def parse(self, message: str | bytes, offered: frozenset[str]) -> Call:
        obj = parse_json_object(message)
        return call_by_position(obj.get("func"), obj.get("in"), offered)

    def answer(self, function: str, code: int, text: str) -> dict[str, Any]:
        # Strings throughout, like the "in" arguments; pages parseInt the result.
        return {"func": function, "result": str(code), "out": [text]}


REST_OK = 200
REST_FAILED = 1001


def rest_answer(code: int, text: str) -> dict[str, Any]:
    """The REST body: ``data`` is the national line on success, ``message`` the reason."""
    if code == 0:
        return {"code": REST_OK, "message": "成功 (ok)", "data": text, "sign": ""}
    return {"code": REST_FAILED, "message": f"{code}:{text}", "data": "", "sign": ""}
