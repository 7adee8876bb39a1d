"""The aiohttp applications: one per configured port, all sharing one ``CardService``.

The own-API port serves the counter page, ``/v1/...``, the card events, and the three
dialects under paths (``/ws/function``, ``/ws/decard``, ``/readcard/entry``) so one port is
enough for tests; each dialect also gets its vendor's port, answering on any path, so a
page written for that vendor's service works unchanged.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from sbcard.errors import SbcardError
from sbcard.service import api
from sbcard.service.api import SERVICE_KEY, open_websocket, service_of
from sbcard.service.core import CardService
from sbcard.service.dialects import DecardStyle, FunctionStyle, rest_answer
from sbcard.service.functions import BadRequest, Call
from sbcard.service.security import security_middleware

log = logging.getLogger("sbcard.service")

def new_app(service: CardService) -> web.Application:
    app = web.Application(client_max_size=service.config.max_message_bytes,
                          middlewares=[security_middleware(service.config, service.limits)])
    app[SERVICE_KEY] = service
    return app


# -- WebSocket dialects ------------------------------------------------------------------

Dialect = FunctionStyle | DecardStyle


def dialect_handler(dialect: Dialect) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        ws = await open_websocket(request)
        if not isinstance(ws, web.WebSocketResponse):
            return ws
        service = service_of(request)
        service.limits.open_websockets += 1
        try:
            await serve_messages(ws, service, dialect)
        finally:
            service.limits.open_websockets -= 1
        return ws

    return handle


#: Messages a client may send ahead while its previous one is still at the card.
INBOX_LIMIT = 8


async def serve_messages(ws: web.WebSocketResponse, service: CardService,
                         dialect: Dialect) -> None:
    """Answer messages in order, one at a time. A reader task keeps listening meanwhile, so
    a page that closes while its request waits for the reader is seen as gone, and its
    request never starts (``CardService.call(abandoned=…)``).

    Idle: ``idle_timeout_s`` with nothing from the page and nothing owed to it, counted from
    the page's last message or the last answer, whichever is later; a request waiting for
    the card (or queued behind one) is never idleness."""
    inbox: asyncio.Queue[str | bytes] = asyncio.Queue()
    gone = asyncio.Event()
    loop = asyncio.get_running_loop()
    idle_s = service.config.idle_timeout_s
    state = {"busy": False, "last": loop.time()}

    async def listen() -> None:
        try:
            while True:
                wait = idle_s
                if not state["busy"] and inbox.empty():
                    wait = state["last"] + idle_s - loop.time()
                    if wait <= 0:
                        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"idle")
                        return
                try:
                    msg = await ws.receive(timeout=wait)
                except TimeoutError:
                    continue                  # idle, or still at the card: the loop decides
                state["last"] = loop.time()
                if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    return  # CLOSE, or ERROR (aiohttp closed with 1009 for an oversized one)
                if inbox.qsize() >= INBOX_LIMIT:
                    await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"too many")
                    return
                inbox.put_nowait(msg.data)
        finally:
            gone.set()

    listener = asyncio.create_task(listen())
    try:
        while True:
            if inbox.empty():
                getter = asyncio.create_task(inbox.get())
                waiter = asyncio.create_task(gone.wait())
                await asyncio.wait({getter, waiter}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                if not getter.done():
                    getter.cancel()
                    return
                data = getter.result()
            else:
                data = inbox.get_nowait()
            if gone.is_set():
                return                         # the page left: what it queued never starts
            state["busy"] = True
            try:
                answer = await answer_message(data, service, dialect, gone.is_set)
            finally:
                state["busy"] = False
                state["last"] = loop.time()   # the idle time starts again at the answer
            if ws.closed:
                return
            await ws.send_str(json.dumps(answer, ensure_ascii=False))
    finally:
        listener.cancel()


async def answer_message(data: str | bytes, service: CardService, dialect: Dialect,
                         abandoned: Callable[[], bool]) -> dict[str, Any]:
    try:
        call = dialect.parse(data, service.offered)
    except BadRequest as exc:
        return dialect.answer(exc.function, exc.code, exc.text)
    outcome = await service.call(call, abandoned, via=dialect.name)
    return dialect.answer(call.function, outcome.code, str(outcome.value))


# -- REST dialect --------------------------------------------------------------------------

#: param= values of the REST style; only the social security card is read here.
REST_PARAMS = {"sicard": Call("iReadCardBas", (3,))}


async def rest_entry(request: web.Request) -> web.Response:
    service = service_of(request)
    param = request.query.get("param", "")
    call = REST_PARAMS.get(param)
    if call is None or call.function not in service.offered:
        return web.json_response(rest_answer(
            -13, f"param={param[:32]} 不支持 (not supported: only param=sicard)"))
    outcome = await service.call(call, via="rest")
    return web.json_response(rest_answer(outcome.code, str(outcome.value)),
                             dumps=lambda o: json.dumps(o, ensure_ascii=False))


# -- the counter page ------------------------------------------------------------------------

STATIC_FILES = {"index.html": "text/html", "counter.js": "text/javascript",
                "counter.css": "text/css"}


async def static_file(request: web.Request) -> web.Response:
    name = request.match_info.get("name") or "index.html"
    if name not in STATIC_FILES:
        raise web.HTTPNotFound()
    body = resources.files("sbcard.service").joinpath("static", name).read_bytes()
    return web.Response(body=body, content_type=STATIC_FILES[name], charset="utf-8",
                        headers={"Cache-Control": "no-cache",
                                 "Content-Security-Policy": "default-src 'self'; "
                                 "img-src 'self' data:; connect-src 'self'"})


# -- assembling ----------------------------------------------------------------------------

def api_app(service: CardService) -> web.Application:
    app = new_app(service)
    app.router.add_get("/", static_file)
    app.router.add_get("/static/{name}", static_file)
    app.router.add_get("/ws/function", dialect_handler(FunctionStyle()))
    app.router.add_get("/ws/decard", dialect_handler(DecardStyle()))
    app.router.add_get("/readcard/entry", rest_entry)
    api.add_routes(app, service)
    return app


def dialect_app(service: CardService, dialect: Dialect) -> web.Application:
    app = new_app(service)
    app.router.add_get("/{tail:.*}", dialect_handler(dialect))
    return app


def rest_app(service: CardService) -> web.Application:
    app = new_app(service)
    app.router.add_get("/readcard/entry", rest_entry)
    return app


@dataclass
class RunningService:
    """A started service: ``urls`` maps "api"/"function"/"decard"/"rest" to base URLs."""

    service: CardService
    runners: list[web.AppRunner] = field(default_factory=list)
    urls: dict[str, str] = field(default_factory=dict)

    async def stop(self) -> None:
        for runner in self.runners:
            await runner.cleanup()
        await self.service.stop()


async def start_service(service: CardService) -> RunningService:
    """Bind every configured port on loopback and start the card-event poller."""
    config = service.config
    running = RunningService(service)
    plan: list[tuple[str, int, web.Application]] = [("api", config.api_port, api_app(service))]
    if config.function_port:
        plan.append(("function", config.function_port, dialect_app(service, FunctionStyle())))
    if config.decard_port:
        plan.append(("decard", config.decard_port, dialect_app(service, DecardStyle())))
    if config.rest_port:
        plan.append(("rest", config.rest_port, rest_app(service)))
    try:
        for name, port, app in plan:
            runner = web.AppRunner(app, access_log=None, handle_signals=False,
                                   keepalive_timeout=config.idle_timeout_s)
            await runner.setup()
            running.runners.append(runner)
            bound = port
            for host in config.bind:
                site = web.TCPSite(runner, host, bound, backlog=128, reuse_address=True)
                try:
                    await site.start()
                except OSError as exc:
                    raise SbcardError(
                        f"cannot listen on {host} port {bound} ({name}): {exc.strerror}; "
                        f"another service there? choose another port, or 0 to turn "
                        f"{name} off") from None
                if bound == 0:  # the first bind chose a free port; ::1 takes the same
                    sockets = getattr(site._server, "sockets", None)
                    assert sockets
                    bound = int(sockets[0].getsockname()[1])
            host0 = config.bind[0]
            shown = f"[{host0}]" if ":" in host0 else host0
            scheme = "http" if name in ("api", "rest") else "ws"
            running.urls[name] = f"{scheme}://{shown}:{bound}"
    except BaseException:
        await running.stop()
        raise
    await service.start()
    return running
