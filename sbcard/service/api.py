"""sbcard's own JSON API (``/v1``): the card as parsed fields, PIN, HSM steps, events.

Every answer is UTF-8 JSON with ``code`` (0, a national return code, or a service code of
``sbcard.service.core``) and ``message``. Card outcomes are HTTP 200 (the code says what
happened at the card); a malformed request is 400, a refused one 403, a busy reader 503.
PINs never travel in a request unless ``kiosk_pin_from_page`` is set (docs/local-service.md).
The OpenAPI document is ``GET /v1/openapi.json``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from sbcard.national.fields import PIN_MAX_DIGITS, PIN_MIN_DIGITS, is_ascii_digits, is_pin_digits
from sbcard.service.core import BUSY, CardService, Outcome
from sbcard.service.dialects import parse_json
from sbcard.service.functions import BAD_PARAMETER, UNSUPPORTED, BadRequest, call_by_name
from sbcard.service.openapi import document
from sbcard.service.security import refusal

PIN_FIELDS = ("pin", "oldPin", "newPin")


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)


def answer(outcome: Outcome, key: str = "result") -> web.Response:
    if outcome.ok:
        body: dict[str, Any] = {"code": 0, "message": "成功 (ok)", key: outcome.value}
    else:
        body = {"code": outcome.code, "message": str(outcome.value)}
    status = 503 if outcome.code == BUSY else 200
    return web.json_response(body, status=status, dumps=dumps)


def bad_request(exc: BadRequest, status: int = 400) -> web.Response:
    return web.json_response({"code": exc.code, "error": "bad_request", "message": exc.text},
                             status=status, dumps=dumps)


async def json_body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw:
        return {}
    obj = parse_json(raw)
    if not isinstance(obj, dict):
        raise BadRequest(BAD_PARAMETER, "the body must be a JSON object")
    return obj


SERVICE_KEY = web.AppKey("card_service", CardService)


def service_of(request: web.Request) -> CardService:
    return request.app[SERVICE_KEY]


async def open_websocket(request: web.Request) -> web.WebSocketResponse | web.Response:
    service = service_of(request)
    config = service.config
    if service.limits.open_websockets >= config.max_connections:
        service.limits.count_refusal("connections")
        return refusal(503, "too_many_connections",
                       f"more than {config.max_connections} open connections; close some")
    ws = web.WebSocketResponse(max_msg_size=config.max_message_bytes,
                               receive_timeout=config.idle_timeout_s, heartbeat=None)
    await ws.prepare(request)
    return ws


def i_type(values: dict[str, Any]) -> int:
    value = values.get("iType", 3)
    if isinstance(value, bool) or not isinstance(value, int) or value not in (1, 2, 3, 4):
        raise BadRequest(BAD_PARAMETER, "iType: 1, 2, 3 or 4")
    return value


def query_i_type(request: web.Request) -> int:
    """``?iType=`` of a GET (3, automatic contact first, when absent), checked as ``i_type``."""
    raw = request.query.get("iType", "3")
    return i_type({"iType": int(raw) if is_ascii_digits(raw) else raw})


def pins_in(values: dict[str, Any], service: CardService) -> dict[str, str]:
    """The PINs a request carries: refused unless kiosk mode accepts them."""
    pins = {k: values[k] for k in PIN_FIELDS if k in values}
    if pins and not service.config.kiosk_pin_from_page:
        raise BadRequest(BAD_PARAMETER, "PINs are not accepted from the page (the PIN comes "
                                        "from the configured PIN source; kiosk mode is off)")
    for name, value in pins.items():
        if not is_pin_digits(value):
            raise BadRequest(BAD_PARAMETER,
                             f"{name}: {PIN_MIN_DIGITS} to {PIN_MAX_DIGITS} digits (0-9)")
    return pins


# -- handlers ------------------------------------------------------------------------------

async def get_card(request: web.Request) -> web.Response:
    """The parsed fields (``read --json`` keys) beside the national iReadCardBas line."""
    service = service_of(request)
    try:
        kind = query_i_type(request)
    except BadRequest as exc:
        return bad_request(exc)
    outcome = await service.run(service.adapter.card_with_line, kind, label="GET /v1/card",
                                via="api")
    return answer(outcome, "card")


def image_type(data: bytes) -> str:
    """The photo's media type from its first bytes (EF08 holds a JPEG or a BMP)."""
    if data[:2] == b"\xff\xd8":
        return "image/jpeg"
    if data[:2] == b"BM":
        return "image/bmp"
    return "application/octet-stream"


async def get_photo(request: web.Request) -> web.Response:
    """The holder's photo (EF08) as an image; a JSON error object when there is none
    (−2201 no key source for RKSSSE, −27266 no photo on the card, −2 no card…)."""
    service = service_of(request)
    try:
        kind = query_i_type(request)
    except BadRequest as exc:
        return bad_request(exc)
    outcome = await service.run(service.adapter.photo, kind, label="GET /v1/card/photo",
                                via="api")
    if outcome.ok and isinstance(outcome.value, bytes) and outcome.value:
        return web.Response(body=outcome.value, content_type=image_type(outcome.value),
                            headers={"Cache-Control": "no-store"})
    return answer(outcome)


async def post_call(request: web.Request) -> web.Response:
    """Any offered national function by name: ``{"function": …, <its parameters>}``."""
    service = service_of(request)
    try:
        values = await json_body(request)
        call = call_by_name(values.get("function"),
                            {k: v for k, v in values.items() if k != "function"},
                            service.offered)
    except BadRequest as exc:
        return bad_request(exc, 404 if exc.code == UNSUPPORTED else 400)
    return answer(await service.call(call, via="api"), "pOutInfo")


def pin_handler(kind: str) -> Callable[[web.Request], Any]:
    async def handle(request: web.Request) -> web.Response:
        service = service_of(request)
        try:
            values = await json_body(request)
            card_type = i_type(values)
            pins = pins_in(values, service)
            operation = service.adapter.pin_operation(kind, pins)
        except BadRequest as exc:
            return bad_request(exc)
        transport = request.transport
        outcome = await service.run(operation, card_type, label=f"PIN {kind}", via="api",
                                    abandoned=lambda: transport is None
                                    or transport.is_closing())
        return answer(outcome)

    return handle


async def hsm_step1(request: web.Request) -> web.Response:
    service = service_of(request)
    try:
        card_type = i_type(await json_body(request))
        call = call_by_name("iReadCardBas_HSM_Step1", {"iType": card_type}, service.offered)
    except BadRequest as exc:
        return bad_request(exc)
    return answer(await service.call(call, via="api"), "pOutInfo")


async def hsm_step2(request: web.Request) -> web.Response:
    service = service_of(request)
    try:
        values = await json_body(request)
        call = call_by_name("iReadCardBas_HSM_Step2", {"pKey": values.get("pKey")},
                            service.offered)
    except BadRequest as exc:
        return bad_request(exc)
    return answer(await service.call(call, via="api"), "pOutInfo")


async def hsm_read(request: web.Request) -> web.Response:
    """Both HSM steps by the service, through the driver's configured HSM bridge."""
    service = service_of(request)
    if service.config.hsm_mode != "bridge":
        return bad_request(BadRequest(UNSUPPORTED, "hsm_mode is 'page': the page runs "
                                                   "Step1 → its server → Step2"), 409)
    try:
        card_type = i_type(await json_body(request))
    except BadRequest as exc:
        return bad_request(exc)
    outcome = await service.run(service.adapter.hsm_read, card_type, label="HSM read",
                                via="api")
    return answer(outcome, "pOutInfo")


async def health(request: web.Request) -> web.Response:
    service = service_of(request)
    stats = service.queue.stats
    return web.json_response({
        "code": 0, "service": "sbcard", "reader": service.reader_name,
        "functions": sorted(service.offered), "present": service.events.present,
        "hsm_mode": service.config.hsm_mode, "kiosk_pin_from_page":
        service.config.kiosk_pin_from_page,
        "queue": {"started": stats.started, "finished": stats.finished, "busy": stats.busy,
                  "abandoned": stats.abandoned, "running": stats.running,
                  "waiting": stats.waiting},
        "open_websockets": service.limits.open_websockets,
        "refused": service.limits.refused}, dumps=dumps)


async def events(request: web.Request) -> web.StreamResponse:
    """Card inserted/removed as JSON messages; the first message is the current state."""
    ws = await open_websocket(request)
    if not isinstance(ws, web.WebSocketResponse):
        return ws
    service = service_of(request)
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    service.limits.open_websockets += 1
    service.events.subscribers.add(queue)
    try:
        await ws.send_str(dumps(service.event("state")))
        reader = asyncio.create_task(_drain(ws))
        while not reader.done():
            getter = asyncio.create_task(queue.get())
            done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
            if getter in done:
                await ws.send_str(dumps(getter.result()))
            else:
                getter.cancel()
        if not ws.closed:
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"idle")
    finally:
        service.events.subscribers.discard(queue)
        service.limits.open_websockets -= 1
    return ws


async def _drain(ws: web.WebSocketResponse) -> None:
    """Read (and ignore) what the client sends, until it closes or stays silent too long.

    Idle here means no message from the client: pages keep the socket by sending "ping"."""
    while True:
        try:
            msg = await ws.receive()
        except TimeoutError:
            return
        if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED,
                        WSMsgType.ERROR):
            return


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(document(service_of(request)), dumps=dumps)


def add_routes(app: web.Application, service: CardService) -> None:
    app.router.add_get("/v1/health", health)
    app.router.add_get("/v1/openapi.json", openapi)
    app.router.add_get("/v1/card", get_card)
    app.router.add_get("/v1/card/photo", get_photo)
    app.router.add_post("/v1/call", post_call)
    app.router.add_post("/v1/pin/verify", pin_handler("verify"))
    app.router.add_post("/v1/pin/change", pin_handler("change"))
    app.router.add_post("/v1/hsm/step1", hsm_step1)
    app.router.add_post("/v1/hsm/step2", hsm_step2)
    app.router.add_post("/v1/hsm/read", hsm_read)
    app.router.add_get("/v1/events", events)
